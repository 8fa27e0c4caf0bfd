//! Errors name the object (`manifest 127.0.0.1:5000/app:1`, `blob sha256:ab… of
//! 127.0.0.1:5000/app`) and say what went wrong. Only a 401 or 403 from a registry is an
//! [`Error::Unauthorized`]: a missing blob, a refused connection or a certificate that does not
//! verify never reads as a credentials problem.

use std::io;

use crate::reference::ParseError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidReference(#[from] ParseError),
    #[error("invalid digest {digest:?}: {why}")]
    InvalidDigest { digest: String, why: String },
    #[error("{what}: {}: {message}", if *status == 403 { "access denied (403)" } else { "unauthorized (401)" })]
    Unauthorized {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: not found: {message}")]
    NotFound { what: String, message: String },
    #[error("{what}: registry answered {status}: {message}")]
    Registry {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: cannot reach the registry: {message}")]
    Connect { what: String, message: String },
    #[error("{what}: TLS failed: {message}")]
    Tls { what: String, message: String },
    #[error("{what}: more than {max} redirects (a redirect loop?)")]
    TooManyRedirects { what: String, max: u32 },
    #[error("{what}: digest mismatch: the content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: {actual} bytes, expected {expected}{}", if actual < expected { " (truncated)" } else { "" })]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: manifest is larger than the {limit} byte limit")]
    ManifestTooLarge { what: String, limit: u64 },
    #[error("{what}: unsupported manifest type {media_type:?}: {why}")]
    UnsupportedManifest {
        what: String,
        media_type: String,
        why: String,
    },
    #[error("{what}: no matching manifest for {wanted} in the manifest list entries (it has: {available})")]
    NoMatchingPlatform {
        what: String,
        wanted: String,
        available: String,
    },
    #[error("{what}: invalid platform {input:?}: {why}")]
    InvalidPlatform {
        what: String,
        input: String,
        why: String,
    },
    #[error("{what}: unexpected answer from the registry: {message}")]
    Protocol { what: String, message: String },
    #[error("credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("invalid registry mirror {mirror:?}: {why}")]
    InvalidMirror { mirror: String, why: String },
    #[error("certificates in {path}: {message}")]
    Certificates { path: String, message: String },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl Error {
    /// True only for a registry's 401 or 403: the one case where other credentials may help.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Errors raised inside a [`std::io::Read`] (a [`crate::BlobReader`]'s digest or size
    /// mismatch, say) travel as an `io::Error` wrapping this type: this unwraps them, and
    /// files any other I/O error under `what`.
    pub fn from_io(error: io::Error, what: &str) -> Error {
        error
            .downcast::<Error>()
            .unwrap_or_else(|source| Error::Io {
                what: what.to_string(),
                source,
            })
    }

    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Error::DigestMismatch { .. } | Error::SizeMismatch { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}
