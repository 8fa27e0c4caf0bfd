//! The storage error type. Messages name the object concerned and, where there is one, the
//! remedy; the errno alone is never enough.

use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on a named object.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A layer archive is malformed, truncated or hostile.
    #[error("invalid layer archive: {0}")]
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
    Db(#[from] rusqlite::Error),
    /// The store is inconsistent in a way the caller cannot fix by retrying.
    #[error("{0}")]
    Corrupt(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The errno behind this error, if it came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
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
