//! The container's stdin FIFO and log path, and signals by name.

use std::path::{Path, PathBuf};

use super::Container;
use crate::error::{Error, Result};
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

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(text: &str) -> Result<i32> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    let n = libc_signal(name.trim_start_matches("SIG"));
    if n == 0 {
        return Err(Error::Invalid(format!(
            "invalid signal {text:?}: give a name such as TERM or KILL, or a number"
        )));
    }
    Ok(n)
}

pub(crate) fn libc_signal(name: &str) -> i32 {
    const SIGNALS: [(&str, i32); 14] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("CONT", 18),
    ];
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or(0)
}
