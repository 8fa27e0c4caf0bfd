//! The container's standard streams on disk: the stdin FIFO of `-i` and the log.

use std::path::{Path, PathBuf};

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
