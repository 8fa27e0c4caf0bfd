//! The storage error type. Messages name the object concerned and, where there is one, the
//! remedy; the errno alone is never enough.

use std::path::Path;

use strata_sys::error::remedy;
pub use strata_sys::{ErrorKind, Kind};

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
    /// A layer archive is malformed, truncated or hostile.
    #[error("invalid layer archive: {}", printable(.0))]
    Archive(String),
    /// A path from an archive or a request tried to leave its root.
    #[error("path {0:?} escapes the layer root; refusing it")]
    PathEscape(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the store's state (in use, exists, ...).
    #[error("{0}")]
    Conflict(String),
    /// The kernel or backing filesystem cannot do what the driver needs.
    #[error("{0}")]
    Unsupported(String),
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Db(rusqlite::Error),
    /// The store is inconsistent in a way the caller cannot fix by retrying.
    #[error("{0}")]
    Corrupt(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
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

/// The metadata database's errors keep their kind: not found, conflict, corrupt, or a
/// failure of the database itself.
impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        match e {
            strata_meta::Error::Db(e) => Error::Db(e),
            strata_meta::Error::Io { context, cause } => Error::Io { context, cause },
            strata_meta::Error::Corrupt(why) => Error::Corrupt(why),
        }
    }
}

/// The errors of the fd-relative primitives (moved to `strata-sys`) read as storage's own.
impl From<strata_sys::Error> for Error {
    fn from(e: strata_sys::Error) -> Self {
        match e {
            strata_sys::Error::Io { context, cause } => Error::Io { context, cause },
            strata_sys::Error::PathEscape(path) => Error::PathEscape(path),
            strata_sys::Error::Conflict(message) => Error::Conflict(message),
        }
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Archive(_) | Error::PathEscape(_) => ErrorKind::Invalid,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io { .. } | Error::Db(_) => ErrorKind::Internal,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e)
    }
}

/// Archive text can hold any bytes (a corrupt header, a hostile name): escape what a terminal
/// would misread rather than print it raw.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() || c == char::REPLACEMENT_CHARACTER => {
                c.escape_unicode().to_string()
            }
            c => c.to_string(),
        })
        .collect()
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
    fn archive_messages_escape_what_a_terminal_would_misread() {
        let e = Error::Archive("bad name \u{1b}[2J\u{fffd}x".into());
        assert_eq!(
            e.to_string(),
            "invalid layer archive: bad name \\u{1b}[2J\\u{fffd}x"
        );
    }

    #[test]
    fn io_errors_print_the_errno_once_with_a_remedy() {
        let e = Error::io("writing /x", std::io::Error::from_raw_os_error(28));
        let text = e.to_string();
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        assert!(text.contains("free space"), "{text}");
        assert!(std::error::Error::source(&e).is_none());
    }
}
