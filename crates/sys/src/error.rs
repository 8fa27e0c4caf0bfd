//! The error-kind vocabulary every strata crate's error reports, and this crate's own error.
//!
//! A front end decides what to tell its caller (an HTTP status, an exit code, a fallback)
//! from [`Kind::kind`], never from the message text, which is for people.

use std::path::Path;

/// What sort of failure an error is, whatever crate it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object asked for does not exist.
    NotFound,
    /// The request conflicts with the object's state (in use, exists, running...).
    Conflict,
    /// The request itself is wrong: a bad name, flag, path or archive.
    Invalid,
    /// The kernel, filesystem or configuration cannot do what was asked.
    Unsupported,
    /// Stored state contradicts itself; retrying will not help, a repair may.
    Corrupt,
    /// Anything else: a failed system call, a database error, a runtime failure.
    Internal,
}

/// An error that can say which [`ErrorKind`] it is.
pub trait Kind {
    fn kind(&self) -> ErrorKind;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on a named object. The errno is part of the message, not a
    /// separate source, so that error chains print it once.
    #[error("{context}: {cause}{}", remedy(cause))]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// A path from an archive or a request tried to leave its root.
    #[error("path {0:?} escapes the layer root; refusing it")]
    PathEscape(String),
    /// The request conflicts with what is on disk (removing a root itself...).
    #[error("{0}")]
    Conflict(String),
}

impl Error {
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause,
        }
    }

    /// The errno behind this error, if it came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { cause, .. } => cause.raw_os_error(),
            _ => None,
        }
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Internal,
            Error::PathEscape(_) => ErrorKind::Invalid,
            Error::Conflict(_) => ErrorKind::Conflict,
        }
    }
}

/// What to do about the io errors a user can fix, appended to their message.
pub fn remedy(cause: &std::io::Error) -> &'static str {
    match cause.raw_os_error() {
        Some(e) if e == rustix::io::Errno::NOSPC.raw_os_error() => {
            "; the filesystem holding the store is full: free space (or use another --root) and retry"
        }
        Some(e) if e == rustix::io::Errno::DQUOT.raw_os_error() => {
            "; the disk quota is exhausted: free space and retry"
        }
        Some(e) if e == rustix::io::Errno::ROFS.raw_os_error() => {
            "; the filesystem is read-only"
        }
        _ => "",
    }
}

/// Adds "what we were doing, on which object" to io errors.
pub trait IoContext<T> {
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
    fn io_errors_print_the_errno_once_with_a_remedy() {
        let e = Error::io("writing /x", std::io::Error::from_raw_os_error(28));
        let text = e.to_string();
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        assert!(text.contains("free space"), "{text}");
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
