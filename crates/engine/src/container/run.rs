//! The container's stdin FIFO and log path, and signals by name.

use std::path::{Path, PathBuf};

use super::Container;
use crate::error::Result;
use crate::Engine;

impl Engine {
    /// The FIFO `-i` containers read their stdin from, created if missing.
    pub fn stdin_fifo(&self, c: &Container) -> Result<PathBuf> {
        let path = self.container_dir(&c.id).join("stdin");
        make_fifo(&path)?;
        Ok(path)
    }

    /// The json-file log of a container.
    pub fn log_path(&self, c: &Container) -> PathBuf {
        super::logs::log_path(&self.container_dir(&c.id), &c.id)
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
        Err(e) => Err(strata_storage::Error::io(
            format!("creating FIFO {}", path.display()),
            e.into(),
        )
        .into()),
    }
}
