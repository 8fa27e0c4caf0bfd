//! Whiteout names and markers, in the two forms the engine converts between.
//!
//! In a layer tar (OCI / AUFS form) a deleted `name` is an empty file `.wh.name`, and a
//! directory whose lower contents are hidden holds `.wh..wh..opq`. In an overlay upper dir a
//! deleted name is a 0/0 character device, and an opaque directory carries the xattr
//! `trusted.overlay.opaque=y`.

/// Prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that marks its directory opaque in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Namespace of overlayfs' private xattrs; never taken from an archive.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
