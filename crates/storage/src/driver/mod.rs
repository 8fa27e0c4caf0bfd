//! The driver interface, in the spirit of containerd's snapshotter: a driver creates layers
//! on parents, says how to mount them (as data), mounts them, and removes them. It knows
//! nothing of tars, images or containers: archive apply/export and change listing are written
//! once (in [`crate::archive`] and [`crate::changes`]) against the [`DiffView`] a driver gives.
//!
//! Reference counting of mounts lives above the driver, in the layer store, so that it is
//! persisted and shared by every strata process; `mount`/`unmount` here are idempotent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::{self, ApplyReport};
use crate::changes::{self, Change};
use crate::error::{Error, Result};

pub mod overlay2;
pub mod vfs;

/// Names accepted by `--storage-driver`.
pub const DRIVER_NAMES: &[&str] = &["overlay2", "vfs"];

/// A mount as data (containerd's `mount.Mount`): what to mount, not the act of mounting.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// Filesystem type: `overlay`, or `bind`.
    pub fs_type: String,
    /// Source: `overlay`, or the directory to bind.
    pub source: String,
    /// Options, e.g. `lowerdir=...`, `upperdir=...`, `workdir=...`, `ro`, `rbind`.
    pub options: Vec<String>,
}

/// How a layer's own changes are recorded on disk, which decides how whiteouts are written
/// when a tar is applied and read when one is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    /// Overlay upper-dir form: the layer dir holds only its changes; a deleted name is a 0/0
    /// char device; a directory that hides its lower contents has `trusted.overlay.opaque=y`.
    Overlay,
    /// Full-copy form (vfs): the layer dir is its parent's tree with the changes applied, so a
    /// deletion really deletes.
    Naive,
}

/// Where a layer's changes against its parent can be read from.
#[derive(Clone, Debug)]
pub enum DiffView {
    /// `upper`: the layer's own diff dir; `lowers`: the diff dirs below it, topmost first.
    Overlay {
        upper: PathBuf,
        lowers: Vec<PathBuf>,
    },
    /// `layer`: the layer's full tree; `parent`: its parent's full tree, if any.
    Naive {
        layer: PathBuf,
        parent: Option<PathBuf>,
    },
}

/// Disk used by a layer's own directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

pub trait Driver: Send + Sync {
    /// `overlay2`, `vfs`, ...
    fn name(&self) -> &'static str;
    /// The driver's own directory (`<root>/overlay2`).
    fn home(&self) -> &Path;
    /// Rows for `strata info`: backing filesystem, d_type, native diff, ... as Docker names them.
    fn status(&self) -> Vec<(String, String)>;

    /// Creates an empty layer `id` on `parent`. A writable layer can be mounted read-write.
    /// `id` must pass [`check_id`]. The layer appears under its id atomically (built aside,
    /// then renamed), but its contents are not necessarily on disk yet: the caller makes the
    /// layer durable with `syncfs` before publishing it (as the layer store does), so drivers
    /// need not fsync each file they write.
    fn create(&self, id: &str, parent: Option<&str>, writable: bool) -> Result<()>;
    /// Removes layer `id` (unmounting it first if needed). Removing a missing layer is not an error.
    fn remove(&self, id: &str) -> Result<()>;
    /// Layer ids present on disk, for sweeping orphans after a crash.
    fn list(&self) -> Result<Vec<String>>;
    /// Removes driver-private leftovers that reference no layer (e.g. dangling short links,
    /// scratch dirs of interrupted creates). Creates take no lock, and a create in flight
    /// leaves the same traces as one that crashed, so the caller must call this only when no
    /// layer is being created (the layer store does so at open, when no builder is live).
    fn cleanup(&self) -> Result<()>;

    /// The mounts that present `id` with all its parents.
    fn mounts(&self, id: &str) -> Result<Vec<Mount>>;
    /// Performs [`Driver::mounts`] at the layer's mount point and returns that path.
    /// Idempotent: mounting a mounted layer returns its path.
    fn mount(&self, id: &str) -> Result<PathBuf>;
    /// [`Driver::mount`] for a writable layer that will be discarded once unmounted (a
    /// `--rm` container's): the driver may skip making its writes durable. overlay2 mounts
    /// it `volatile`, sparing the sync of the whole backing filesystem an overlay's unmount
    /// otherwise does; such a layer cannot be mounted again.
    fn mount_volatile(&self, id: &str) -> Result<PathBuf> {
        self.mount(id)
    }
    /// Where [`Driver::mount`] presents `id` (the path it returns), whether mounted or not.
    fn mount_point(&self, id: &str) -> PathBuf;
    /// Undoes [`Driver::mount`]. Idempotent.
    fn unmount(&self, id: &str) -> Result<()>;
    fn is_mounted(&self, id: &str) -> Result<bool>;

    /// The directory holding `id`'s own changes, and their form.
    fn diff_dir(&self, id: &str) -> PathBuf;
    fn diff_format(&self) -> DiffFormat;
    /// Where `id`'s changes against `parent` can be read.
    fn diff_view(&self, id: &str, parent: Option<&str>) -> Result<DiffView>;
    fn usage(&self, id: &str) -> Result<Usage>;

    /// Problems in the driver's own records of layer `id` on `parent` (overlay2: its `link`
    /// and `lower` files and its `l/` short link), one message each, for `strata check`.
    /// Drivers that keep no such records have none.
    fn check_layer(&self, id: &str, parent: Option<&str>) -> Result<Vec<String>> {
        let _ = (id, parent);
        Ok(Vec::new())
    }
    /// Rewrites those records of `id` from its parent's (the caller repairs parents first).
    fn repair_layer(&self, id: &str, parent: Option<&str>) -> Result<()> {
        let _ = (id, parent);
        Ok(())
    }
    /// What [`Driver::cleanup`] would remove, as (path relative to the home, why) pairs.
    /// Same caveat: only meaningful when no layer is being created.
    fn leftovers(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// Applies a layer tar (plain, gzip or zstd) into the freshly created layer `id`; with
    /// `tar_split`, also writes there the record that rebuilds the exact tar later (see
    /// [`archive::apply_recording`]).
    fn apply(
        &self,
        id: &str,
        input: &mut dyn Read,
        tar_split: Option<&mut dyn Write>,
    ) -> Result<ApplyReport> {
        let (dir, format) = (self.diff_dir(id), self.diff_format());
        match tar_split {
            Some(out) => archive::apply_recording(&dir, format, input, out),
            None => archive::apply(&dir, format, input),
        }
    }
    /// Writes `id`'s changes against `parent` as an uncompressed OCI layer tar.
    fn export(&self, id: &str, parent: Option<&str>, out: &mut dyn Write) -> Result<()> {
        archive::export(&self.diff_view(id, parent)?, out)
    }
    /// `id`'s changes against `parent`, as `docker diff` lists them.
    fn changes(&self, id: &str, parent: Option<&str>) -> Result<Vec<Change>> {
        changes::changes(&self.diff_view(id, parent)?)
    }
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
