//! The storage vocabulary: how a layer's changes are laid out on disk ([`DiffFormat`],
//! [`DiffView`]), the whiteout names and markers, mounts as data, usage and change kinds.
//!
//! A leaf: it imports nothing else from the crate, so drivers, `fs`, `walk`, `archive` and
//! `changes` can all speak it without importing each other.
//!
//! In a layer tar (OCI / AUFS form) a deleted `name` is an empty file `.wh.name`, and a
//! directory whose lower contents are hidden holds `.wh..wh..opq`. In an overlay upper dir a
//! deleted name is a 0/0 character device ([`is_whiteout`]), and an opaque directory carries
//! the xattr `<namespace>overlay.opaque=y` ([`OverlayXattrs::opaque`]).

use std::path::PathBuf;

use rustix::fs::{FileType, Stat};

/// Prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that marks its directory opaque in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// An overlay whiteout: a 0/0 character device.
pub fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::CharacterDevice && st.st_rdev == 0
}

/// The xattr namespace overlayfs keeps its markers in: `trusted.overlay.*` by default,
/// `user.overlay.*` when mounted with `userxattr` (in a user namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayXattrs {
    Trusted,
    User,
}

impl OverlayXattrs {
    /// Prefix of overlayfs' private xattrs; never taken from or written to an archive.
    pub fn prefix(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.",
            OverlayXattrs::User => "user.overlay.",
        }
    }

    /// The xattr overlayfs reads to treat a directory as opaque.
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }
}

/// How a layer's own changes are recorded on disk, which decides how whiteouts are written
/// when a tar is applied and read when one is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    /// Overlay upper-dir form: the layer dir holds only its changes; a deleted name is a 0/0
    /// char device; a directory that hides its lower contents has `xattrs.opaque()` = `y`.
    Overlay { xattrs: OverlayXattrs },
    /// Full-copy form (vfs): the layer dir is its parent's tree with the changes applied, so a
    /// deletion really deletes.
    FullCopy,
}

impl DiffFormat {
    /// The overlay form with overlayfs' default (`trusted.*`) namespace.
    pub const OVERLAY_TRUSTED: DiffFormat = DiffFormat::Overlay {
        xattrs: OverlayXattrs::Trusted,
    };

    pub fn is_overlay(self) -> bool {
        matches!(self, DiffFormat::Overlay { .. })
    }

    /// Prefix of the overlay xattrs an archive never carries in or out. A full copy has no
    /// overlay markers of its own, but overlayfs' default namespace is still refused there:
    /// such xattrs would take effect if the tree were ever used as an overlay layer.
    pub fn private_xattr_prefix(self) -> &'static str {
        match self {
            DiffFormat::Overlay { xattrs } => xattrs.prefix(),
            DiffFormat::FullCopy => OverlayXattrs::Trusted.prefix(),
        }
    }
}

/// Where a layer's changes against its parent can be read from, and in which form.
#[derive(Clone, Debug)]
pub enum DiffView {
    /// `upper`: the layer's own diff dir; `lowers`: the diff dirs below it, topmost first;
    /// `xattrs`: the namespace of their opaque markers.
    Overlay {
        upper: PathBuf,
        lowers: Vec<PathBuf>,
        xattrs: OverlayXattrs,
    },
    /// `layer`: the layer's full tree; `parent`: its parent's full tree, if any.
    FullCopy {
        layer: PathBuf,
        parent: Option<PathBuf>,
    },
}

impl DiffView {
    pub fn format(&self) -> DiffFormat {
        match self {
            DiffView::Overlay { xattrs, .. } => DiffFormat::Overlay { xattrs: *xattrs },
            DiffView::FullCopy { .. } => DiffFormat::FullCopy,
        }
    }
}

/// Where a driver keeps one layer, and in which form (what a layer's id alone tells).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDirs {
    /// The directory holding the layer's own changes.
    pub diff: PathBuf,
    /// Where the driver's `mount` presents the layer, whether mounted or not.
    pub mount_point: PathBuf,
    pub format: DiffFormat,
}

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

/// Disk used by a layer's own directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// `C`: exists in the parent and was modified (or is the parent of a change).
    Modified,
    /// `A`: did not exist in the parent.
    Added,
    /// `D`: existed in the parent and was deleted.
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}
