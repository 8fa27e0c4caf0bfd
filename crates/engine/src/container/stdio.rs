//! The container's standard streams on disk: the stdin FIFO of `-i` and the log.

use std::path::{Path, PathBuf};

use super::logs::{LogReader, LogWaiter};
use super::Container;
use crate::container::Containers;
use crate::error::{Error, Result};

impl Containers<'_> {
    /// The FIFO `-i` containers read their stdin from, created if missing.
    pub fn stdin_fifo(&self, c: &Container) -> Result<PathBuf> {
        let path = self.dir(&c.id).join("stdin");
        make_fifo(&path)?;
        Ok(path)
    }

    /// The json-file log of a container.
    pub fn log_path(&self, c: &Container) -> PathBuf {
        super::logs::log_path(&self.dir(&c.id), &c.id)
    }

    /// The log opened for following, before the start: a reader from its first entry and a
    /// waiter woken by its growth. A container removed meanwhile (a prune in another process
    /// between `create` and `start`) is "no such container", not a missing file.
    pub fn follow_log(&self, c: &Container) -> Result<(LogReader, LogWaiter)> {
        let path = self.log_path(c);
        let opened =
            LogReader::create(path.clone()).and_then(|log| Ok((log, LogWaiter::new(&path)?)));
        match opened {
            Err(_) if self.get(&c.id).is_err() => Err(Error::NoSuchContainer(format!(
                "no such container: {} (it was removed meanwhile)",
                c.short_id()
            ))),
            other => other,
        }
    }
}

pub(crate) fn make_fifo(path: &Path) -> Result<()> {
    match rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(Error::io(
            format!("creating FIFO {}", path.display()),
            e.into(),
        )),
    }
}
