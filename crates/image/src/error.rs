//! The image error type; storage errors pass through unchanged.

use strata_storage::error::{ErrorKind, Kind};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] strata_storage::Error),
    #[error("invalid reference format {input:?}: {why}")]
    InvalidReference { input: String, why: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid change {change:?}: {why}")]
    InvalidChange { change: String, why: String },
    /// An image archive (load) is malformed, incomplete or hostile; the message names the
    /// image and the blob.
    #[error("{0}")]
    Archive(String),
    #[error("image config {digest}: {why}")]
    BadConfig { digest: String, why: String },
}

impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        Error::Storage(e.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.into())
    }
}

/// The fd-relative primitives' errors read as the storage errors they were.
impl From<strata_sys::Error> for Error {
    fn from(e: strata_sys::Error) -> Self {
        Error::Storage(e.into())
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Storage(e) => e.kind(),
            Error::InvalidReference { .. } | Error::InvalidChange { .. } | Error::Archive(_) => {
                ErrorKind::Invalid
            }
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::BadConfig { .. } => ErrorKind::Corrupt,
        }
    }
}
