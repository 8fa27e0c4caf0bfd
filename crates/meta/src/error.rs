//! The metadata error type. Stores wrap it in their own; its [`Kind`] says what sort of
//! failure it is without matching message text.

use strata_sys::error::{ErrorKind, Kind};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A system call on a named file failed (the lock, the database's directory).
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// The database cannot be used as it is; the message gives the remedy.
    #[error("{0}")]
    Corrupt(String),
}

impl Error {
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause,
        }
    }
}

/// A row not found, a constraint violated and a damaged database keep those kinds; the
/// rest is a failure of the database itself.
impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Db(rusqlite::Error::QueryReturnedNoRows) => ErrorKind::NotFound,
            Error::Db(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                ErrorKind::Conflict
            }
            Error::Db(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
                ErrorKind::Corrupt
            }
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Db(_) | Error::Io { .. } => ErrorKind::Internal,
        }
    }
}
