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
