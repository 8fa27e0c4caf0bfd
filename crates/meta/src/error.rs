//! The metadata error type. Stores wrap it in their own; [`Error::kind`] says what sort of
//! failure it is without matching message text.

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What sort of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Conflict,
    /// The database is damaged or was written by a newer strata.
    Corrupt,
    Internal,
}

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

    pub fn kind(&self) -> Kind {
        match self {
            Error::Db(rusqlite::Error::QueryReturnedNoRows) => Kind::NotFound,
            Error::Db(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                Kind::Conflict
            }
            Error::Db(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
                Kind::Corrupt
            }
            Error::Corrupt(_) => Kind::Corrupt,
            Error::Db(_) | Error::Io { .. } => Kind::Internal,
        }
    }
}
