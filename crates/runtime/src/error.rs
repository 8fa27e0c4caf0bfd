//! The runtime error type. Messages name the container, user or file concerned and, where
//! there is one, the remedy.

use strata_sys::{ErrorKind, Kind};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container spec is invalid (a bad limit, a relative mount target, ...).
    #[error("{0}")]
    Invalid(String),
    /// Something asked for does not exist (a user, a bind source, a container, the runtime).
    #[error("{0}")]
    NotFound(String),
    /// The container's command could not be executed: 127 when it was not found, 126 when it
    /// could not be run, as Docker reports them.
    #[error("{message}")]
    Exec { message: String, exit_code: i32 },
    /// The OCI runtime refused or failed; `message` is its own last error line.
    #[error("{message}")]
    Runtime { message: String },
    /// A system call failed on a named object.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// A failure of the fd-relative or mountinfo primitives, already naming its object.
    #[error(transparent)]
    Sys(#[from] strata_sys::Error),
    #[error("building the OCI runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
}

impl Error {
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause,
        }
    }

    /// The exit code a `run` front end reports for this error, as Docker does: 127 or 126 for
    /// a command that could not be executed, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Exec { .. } => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Runtime { .. } | Error::Io { .. } | Error::Spec(_) => ErrorKind::Internal,
            Error::Sys(e) => e.kind(),
        }
    }
}
