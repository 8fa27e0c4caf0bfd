//! The builder's errors: a parse error or a failed step names the Dockerfile line.

use strata_sys::error::{ErrorKind, Kind};

use crate::dockerfile;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] dockerfile::Error),
    /// A step that could not be carried out (a missing source, a failed RUN, ...).
    #[error("Dockerfile line {line}: {message}")]
    Step { line: usize, message: String },
    /// A bad option or context, before any step.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Engine(#[from] strata_engine::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn step(line: usize, message: impl Into<String>) -> Error {
        Error::Step {
            line,
            message: message.into(),
        }
    }
}

impl From<strata_sys::Error> for Error {
    fn from(e: strata_sys::Error) -> Error {
        Error::Engine(e.into())
    }
}

impl From<strata_storage::Error> for Error {
    fn from(e: strata_storage::Error) -> Error {
        Error::Engine(e.into())
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse(_) | Error::Step { .. } | Error::Invalid(_) => ErrorKind::Invalid,
            Error::Engine(e) => e.kind(),
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}
