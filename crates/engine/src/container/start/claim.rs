//! Step 1 of a start: the monitor lock, which the monitor holds for its whole life (a free
//! lock on a `running` container means its monitor died, see [`Containers::recover_running`]),
//! and the check that the container may start.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use super::super::{Container, State};
use crate::container::Containers;
use crate::error::{Error, Result};

/// The lock of container `id` and its record, once it may start.
pub(super) fn claim(engine: &Containers<'_>, id: &str) -> Result<(File, Container)> {
    let dir = engine.dir(id);
    let lock = monitor_lock_patiently(&dir)?.ok_or_else(|| match dir.is_dir() {
        true => Error::Conflict(format!(
            "container {id} is already being started or running"
        )),
        // Removed (by a prune or rm in another process) since it was looked up.
        false => Error::NoSuchContainer(format!(
            "no such container: {id} (it was removed meanwhile)"
        )),
    })?;
    let c = engine.get(id)?;
    if c.state == State::Running || c.state == State::Dead {
        return Err(Error::Conflict(format!(
            "cannot start container {} ({}): it is {}",
            c.name,
            c.short_id(),
            c.state.as_str()
        )));
    }
    Ok((lock, c))
}

/// The monitor lock, waiting a little for it: other processes probe whether a monitor is
/// alive by taking the lock for an instant (recovery at open, `rm`, `prune`, `check`), and a
/// start or `rm` that met such a probe must not fail as if the container were running. A live monitor
/// holds it for good, so after the wait the answer is `None`.
pub(crate) fn monitor_lock_patiently(dir: &Path) -> Result<Option<File>> {
    for _ in 0..200 {
        if let Some(lock) = monitor_lock(dir, false)? {
            return Ok(Some(lock));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(None)
}

/// `containers/<id>/monitor.lock`, taken exclusively; `None` if someone holds it (or, for
/// `wait`, it was taken when `block`).
pub(crate) fn monitor_lock(dir: &Path, block: bool) -> Result<Option<File>> {
    let path = dir.join("monitor.lock");
    let file = match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        // No directory: no monitor either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let op = if block {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match flock(&file, op) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io(format!("locking {}", path.display()), e.into())),
    }
}
