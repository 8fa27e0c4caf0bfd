//! The engine's error: whatever the layer or image store said, passed through unchanged so
//! the message keeps naming the object and the remedy; the engine's own failed system calls
//! as [`Error::Io`], with what it was doing.

use std::path::Path;

use strata_storage::error::{ErrorKind, Kind};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] strata_storage::Error),
    #[error(transparent)]
    Image(#[from] strata_image::Error),
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    #[error(transparent)]
    Registry(#[from] strata_distribution::Error),
    #[error("invalid name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    /// A flag or spec that cannot be used (the message names it and what is expected).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The container named does not exist: front ends then try a layer of that name.
    #[error("{0}")]
    NoSuchContainer(String),
    #[error("{0}")]
    Conflict(String),
    /// Engine records that contradict each other; the message gives the remedy.
    #[error("{0}")]
    Corrupt(String),
    /// A system call of the engine's own failed on a named object. The errno is part of the
    /// message, not a separate source, so that error chains print it once.
    #[error("{context}: {cause}{}", strata_sys::error::remedy(cause))]
    Io {
        context: String,
        cause: std::io::Error,
    },
}

impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        Error::Storage(e.into())
    }
}

impl Error {
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause,
        }
    }

    /// The exit code a `run` front end reports, as Docker does: 127 for a command not found
    /// in the container, 126 for one that cannot be executed, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// The fd-relative primitives' and random ids' errors read as the storage errors they were.
impl From<strata_sys::Error> for Error {
    fn from(e: strata_sys::Error) -> Self {
        Error::Storage(e.into())
    }
}

impl From<strata_sys::signal::InvalidSignal> for Error {
    fn from(e: strata_sys::signal::InvalidSignal) -> Self {
        Error::Invalid(e.to_string())
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Storage(e) => e.kind(),
            Error::Image(e) => e.kind(),
            // Docker answers a failed start with 500, except for a command that cannot run in
            // the container (400; its CLI then exits 126 or 127 from the message).
            Error::Runtime(e) if matches!(e.exit_code(), 126 | 127) => ErrorKind::Invalid,
            Error::Runtime(_) => ErrorKind::Internal,
            Error::InvalidName { .. } | Error::Invalid(_) => ErrorKind::Invalid,
            Error::NotFound(_) | Error::NoSuchContainer(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io { .. } => ErrorKind::Internal,
            Error::Registry(e) if e.is_not_found() => ErrorKind::NotFound,
            Error::Registry(_) => ErrorKind::Internal,
        }
    }
}

/// Adds "what we were doing, on which object" to the engine's io errors.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
    fn ctx_path(self, what: &str, path: &Path) -> Result<T>
    where
        Self: Sized,
    {
        self.ctx(|| format!("{what} {}", path.display()))
    }
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_the_statuses_docker_gives() {
        let not_found = Error::NoSuchContainer("no such container: x".into());
        assert_eq!(not_found.kind(), ErrorKind::NotFound);
        let escape = Error::Storage(strata_storage::Error::PathEscape("../x".into()));
        assert_eq!(escape.kind(), ErrorKind::Invalid);
        let missing_command = Error::Runtime(strata_runtime::Error::Exec {
            message: "not found".into(),
            exit_code: 127,
        });
        assert_eq!(missing_command.kind(), ErrorKind::Invalid);
        let refused = Error::Runtime(strata_runtime::Error::Invalid("bad limit".into()));
        assert_eq!(refused.kind(), ErrorKind::Internal);
        let signal = Error::from(strata_sys::signal::parse_signal("NOPE").unwrap_err());
        assert_eq!(signal.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn io_errors_read_as_the_storage_errors_they_were() {
        let cause = || std::io::Error::from_raw_os_error(28);
        let engine = Error::io("writing /x", cause());
        let storage = strata_storage::Error::io("writing /x", cause());
        assert_eq!(engine.to_string(), storage.to_string());
        assert_eq!(engine.kind(), storage.kind());
        assert_eq!(engine.exit_code(), 125);
    }
}
