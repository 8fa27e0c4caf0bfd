//! The layered copy-on-write store at the heart of strata.
//!
//! - [`driver`]: the [`Driver`] trait (create a layer on a parent, return its mounts as data,
//!   mount, remove, usage) and its implementations, `overlay2` and `vfs`.
//! - [`archive`]: OCI layer tars in and out of a layer, with whiteout conversion.
//! - [`changes`]: the `docker diff` listing of a layer against its parent.
//! - [`layer_store`]: layers addressed by diffID/chainID, crash-safe publication, metadata in
//!   SQLite, mount reference counts.
//! - [`fs`]: fd-relative, no-escape path resolution that everything touching layer content uses.
//!
//! Not here: images, configs, tags (crate `strata-image`) or anything about running containers.

pub mod archive;
pub mod changes;
pub mod digest;
pub mod driver;
pub mod error;
pub mod fs;
pub mod layer_store;
pub mod walk;

/// Moved to `strata-sys` (the runtime reads it too); kept here so storage paths still work.
pub use strata_sys::mountinfo;

pub use changes::{Change, ChangeKind};
pub use digest::Digest;
pub use driver::{DiffView, Driver, Mount, Usage};
pub use error::{Error, Result};
