//! The layered copy-on-write store at the heart of strata.
//!
//! - [`layout`]: the vocabulary every module below speaks: diff formats and views, whiteouts,
//!   mounts as data, usage, change kinds.
//! - [`driver`]: the [`Driver`] trait (create a layer on a parent, return its mounts as data,
//!   mount, remove, usage) and its implementations, `overlay2` and `vfs`.
//! - [`archive`]: OCI layer tars in and out of a layer, with whiteout conversion.
//! - [`changes`]: the `docker diff` listing of a layer against its parent.
//! - [`layer_store`]: layers addressed by diffID/chainID, crash-safe publication, their rows
//!   in the shared metadata database (`strata-meta`), mount reference counts.
//! - `testsuite` (feature `testsuite`): the driver conformance suite, for any driver.
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
pub mod layout;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod walk;

/// Moved to `strata-sys` (the runtime reads it too); kept here so storage paths still work.
pub use strata_sys::mountinfo;

pub use changes::Change;
pub use digest::Digest;
pub use driver::Driver;
pub use error::{Error, Result};
pub use layout::{ChangeKind, DiffView, Mount, Usage};
