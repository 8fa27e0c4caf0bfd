//! The engine's error: whatever the layer or image store said, passed through unchanged so
//! the message keeps naming the object and the remedy.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] strata_storage::Error),
    #[error(transparent)]
    Image(#[from] strata_image::Error),
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    #[error("invalid name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    /// A flag or spec that cannot be used (the message names it and what is expected).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Engine records that contradict each other; the message gives the remedy.
    #[error("{0}")]
    Corrupt(String),
}

impl From<strata_meta::Error> for Error {
    fn from(e: strata_meta::Error) -> Self {
        Error::Storage(e.into())
    }
}

impl Error {
    /// The exit code a `run` front end reports, as Docker does: 127 for a command not found
    /// in the container, 126 for one that cannot be executed, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Runtime(e) => e.exit_code(),
            _ => 125,
        }
    }
}
