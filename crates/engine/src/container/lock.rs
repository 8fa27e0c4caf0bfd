//! The creation lock: `containers/.<id>.lock`, held while a container is made, swept or
//! removed (see `create.rs`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// `containers/.<id>.lock`, `flock`ed by whoever creates or sweeps container `id`: the kernel
/// drops it when that process dies, so a lock nobody holds means the creation was abandoned.
pub(crate) struct CreationLock {
    path: PathBuf,
    _file: File,
}

impl CreationLock {
    /// For a creator: the lock of a fresh ID, taken before anything of the container exists.
    pub(super) fn acquire(dir: &Path, id: &str) -> Result<CreationLock> {
        let path = dir.join(format!(".{id}.lock"));
        // Another process's start-up sweep can take and unlink the file between our create
        // and our lock (it looks abandoned for that instant). Nothing of ours existed yet, so
        // making it again is safe; the sweep does not come back for the same name.
        for _ in 0..8 {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            let file = match file {
                Ok(file) => file,
                // The sweep still holds the name: it is about to unlink it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("creating the creation lock {}", path.display()),
                        e,
                    ))
                }
            };
            flock(&file, FlockOperation::LockExclusive).ctx_path("locking", &path)?;
            if rustix::fs::fstat(&file).ctx_path("stat", &path)?.st_nlink > 0 {
                return Ok(CreationLock { path, _file: file });
            }
        }
        Err(Error::Conflict(format!(
            "container creation lock {} kept being swept by other strata processes; retry",
            path.display()
        )))
    }

    /// For a sweep: the lock, or `None` if a live process holds it.
    pub(super) fn try_take(dir: &Path, id: &str) -> Result<Option<CreationLock>> {
        let path = dir.join(format!(".{id}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .ctx_path("opening the creation lock", &path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(CreationLock { path, _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io(format!("locking {}", path.display()), e.into())),
        }
    }
}

impl Drop for CreationLock {
    fn drop(&mut self) {
        // Unlinked before the file closes (which unlocks): never seen unlocked and linked.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a live process holds container `id`'s creation lock (it is being made now). A
/// probe only: never creates the lock file.
pub(crate) fn creation_in_progress(dir: &Path, id: &str) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(format!(".{id}.lock"))) else {
        return false;
    };
    matches!(
        flock(&file, FlockOperation::NonBlockingLockExclusive),
        Err(rustix::io::Errno::WOULDBLOCK)
    )
}
