//! A registry client for the OCI distribution API (Docker registry API v2), blocking, for a
//! synchronous engine: Docker's reference normalisation, credentials from the docker CLI's
//! config and helpers, basic and bearer-token auth, TLS with `/etc/docker/certs.d`, and the
//! pull and push primitives an image store builds `pull` and `push` on. Blobs stream through
//! readers and are verified as they pass; nothing holds a blob in memory.
//!
//! Not here: layer stores, decompression, progress output, or which blobs to skip. This
//! crate depends on no other strata crate.
//!
//! ```no_run
//! use strata_distribution::{Client, Options, Reference};
//! let client = Client::new(Options::default());
//! let reference: Reference = "busybox".parse()?;
//! let resolved = client.resolve(&reference, None)?;
//! for layer in &resolved.image.layers {
//!     let mut blob = client.fetch_blob(&reference, &layer.digest, Some(layer.size), None)?;
//!     std::io::copy(&mut blob, &mut std::io::sink())?; // fails if the digest does not match
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod challenge;
mod client;
pub mod credentials;
mod digest;
mod error;
pub mod manifest;
mod pull;
mod push;
pub mod reference;
pub mod transport;

pub use client::{Client, Options};
pub use credentials::{CredentialSource, Credentials};
pub use digest::{sha256_digest, Verifier};
pub use error::{Error, Result};
pub use manifest::{Descriptor, ImageManifest, Index, Kind, Platform};
pub use pull::{BlobReader, Manifest, Resolved, Resume};
pub use push::Upload;
pub use reference::{ParseError, Reference};
pub use transport::TransportConfig;
