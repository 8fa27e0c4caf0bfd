//! The driver interface, in the spirit of containerd's snapshotter: a driver creates layers
//! on parents, says how to mount them (as data), mounts them, and removes them. It knows
//! nothing of tars, images or containers: archive apply/export and change listing are written
//! once (in `archive` and `changes`) against the [`DiffView`] a driver
//! gives, and the layer store calls them itself. Maintenance of a driver's private records
//! is an optional capability ([`Maintenance`]).
//!
//! Reference counting of mounts lives above the driver, in the layer store, so that it is
//! persisted and shared by every strata process; `mount`/`unmount` here are idempotent.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{DiffView, LayerDirs, Mount, Usage};

pub mod overlay2;
pub mod vfs;

/// Names accepted by `--storage-driver`.
pub const DRIVER_NAMES: &[&str] = &["overlay2", "vfs"];

/// What a new layer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// An image layer: never mounted read-write.
    ReadOnly,
    /// A container's layer, mounted read-write.
    Writable,
}

/// Whether a mounted layer's writes must survive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Durable,
    /// A writable layer that will be discarded once unmounted (a `--rm` container's): the
    /// driver may skip making its writes durable. overlay2 mounts it `volatile`, sparing the
    /// sync of the whole backing filesystem an overlay's unmount otherwise does; such a layer
    /// cannot be mounted again.
    Volatile,
}

/// A storage driver. Held as `Box<dyn Driver>` rather than an enum of the built-in drivers:
/// a driver outside this crate (or a test's) plugs in without an arm here, and a virtual call
/// costs nothing beside the syscalls each method makes.
pub trait Driver: Send + Sync {
    /// `overlay2`, `vfs`, ...
    fn name(&self) -> &'static str;
    /// The driver's own directory (`<root>/overlay2`).
    fn home(&self) -> &Path;
    /// Rows for `strata info`: backing filesystem, d_type, native diff, ... as Docker names them.
    fn status(&self) -> Vec<(String, String)>;

    /// Creates an empty layer `id` on `parent`. `id` must pass [`check_id`]. The layer
    /// appears under its id atomically (built aside, then renamed), but its contents are not
    /// necessarily on disk yet: the caller makes the layer durable with `syncfs` before
    /// publishing it (as the layer store does), so drivers need not fsync each file they write.
    fn create(&self, id: &str, parent: Option<&str>, kind: LayerKind) -> Result<()>;
    /// Removes layer `id` (unmounting it first if needed). Removing a missing layer is not an error.
    fn remove(&self, id: &str) -> Result<()>;
    /// Layer ids present on disk, for sweeping orphans after a crash.
    fn list(&self) -> Result<Vec<String>>;
    /// Where layer `id` lives and in which form, whether it exists or not.
    fn dirs(&self, id: &str) -> LayerDirs;

    /// The mounts that present `id` with all its parents.
    fn mounts(&self, id: &str) -> Result<Vec<Mount>>;
    /// Performs [`Driver::mounts`] at the layer's mount point and returns that path.
    /// Idempotent: mounting a mounted layer returns its path.
    fn mount(&self, id: &str, durability: Durability) -> Result<PathBuf>;
    /// Undoes [`Driver::mount`]. Idempotent.
    fn unmount(&self, id: &str) -> Result<()>;
    fn is_mounted(&self, id: &str) -> Result<bool>;

    /// Where `id`'s changes against `parent` can be read, and in which form: what archive
    /// export (`archive::export`) and change listing (`changes::changes`) read, written once
    /// for every driver.
    fn diff_view(&self, id: &str, parent: Option<&str>) -> Result<DiffView>;
    fn usage(&self, id: &str) -> Result<Usage>;

    /// The driver's repairs of its own records, if it keeps any (containerd's optional
    /// `Cleaner`): drivers without them return `None`.
    fn maintenance(&self) -> Option<&dyn Maintenance> {
        None
    }
}

/// What `strata check` and the layer store's open ask of a driver that keeps private records
/// beside its layers.
pub trait Maintenance {
    /// Problems in the driver's own records of layer `id` on `parent` (overlay2: its `link`
    /// and `lower` files and its `l/` short link), one message each, for `strata check`.
    fn check_layer(&self, id: &str, parent: Option<&str>) -> Result<Vec<String>>;
    /// Rewrites those records of `id` from its parent's (the caller repairs parents first).
    fn repair_layer(&self, id: &str, parent: Option<&str>) -> Result<()>;
    /// Removes driver-private leftovers that reference no layer (e.g. dangling short links,
    /// scratch dirs of interrupted creates). Creates take no lock, and a create in flight
    /// leaves the same traces as one that crashed, so the caller must call this only when no
    /// layer is being created (the layer store does so at open, when no builder is live).
    fn cleanup(&self) -> Result<()>;
    /// What [`Maintenance::cleanup`] would remove, as (path relative to the home, why) pairs.
    /// Same caveat: only meaningful when no layer is being created.
    fn leftovers(&self) -> Result<Vec<(String, String)>>;
}

/// The longest layer id a driver accepts.
pub const MAX_ID_LEN: usize = 128;

/// Checks that `id` can name a layer in every driver: 1 to [`MAX_ID_LEN`] characters of
/// `A-Z a-z 0-9 . _ -`, so it is one plain path component; not starting with `.`, which drivers
/// keep for their scratch entries; and not `l`, overlay2's short-link dir. A bad id is an
/// [`Error::Conflict`]: the request, not the store, is at fault.
pub fn check_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if id.is_empty() || id.len() > MAX_ID_LEN || !ok_chars || id.starts_with('.') || id == "l" {
        return Err(Error::Conflict(format!(
            "{id:?} is not a valid layer id: use 1-{MAX_ID_LEN} of A-Z a-z 0-9 - _ ., \
             not starting with '.', and not \"l\""
        )));
    }
    Ok(())
}

/// Opens driver `name` under the store root `root` (its home is `root/<name>`).
pub fn open(name: &str, root: &Path, options: &[String]) -> Result<Box<dyn Driver>> {
    match name {
        "overlay2" => Ok(Box::new(overlay2::Overlay2::open(
            &root.join("overlay2"),
            options,
        )?)),
        "vfs" => Ok(Box::new(vfs::Vfs::open(&root.join("vfs"), options)?)),
        other => Err(Error::Unsupported(format!(
            "unknown storage driver {other:?}; available: {}",
            DRIVER_NAMES.join(", ")
        ))),
    }
}
