//! fd-relative, no-escape path handling for everything that touches layer content.
//!
//! A [`Root`] holds a directory fd. Paths inside it (from archives, API calls, containers) are
//! first [`normalize`]d (leading `/` and `.` dropped, `..` refused), then their *parent* is
//! resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlink met on the
//! way (`/`, `..`, `../../etc`) is interpreted as if the root were `/` and can never lead out.
//! The final component is then acted on with `*at` calls that never follow it
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//! Metadata is set through a [`Node`], which picks the non-following call for each kind of
//! object.
//!
//! The `*_at` functions are the primitives everything that reads or writes layer content
//! uses (apply, the vfs copy, export, change listing, disk usage): each acts on one name in
//! an open directory and never follows it. Only store paths (a layer dir, a mount point) are
//! opened by path, with [`Root::open`] or [`open_dir_path`]. `Root` and the `*_at` primitives
//! live in `strata_sys::root` (the runtime uses them too) and are re-exported here.

pub mod copy;
mod entry_meta;
mod node;
mod privileges;
mod usage;
pub mod writeback;
mod xattr;

pub use entry_meta::{entry_meta, EntryMeta};
pub use node::{open_path_at, Node};
pub use privileges::{Privileges, Skipped};
pub use usage::disk_usage;
pub use xattr::{is_opaque, xattr, xattrs};

pub use strata_sys::root::{
    create_file_at, file_type, inode_key, is_dir, lstat_at, names, normalize, open_dir_at,
    open_file_at, read_dir, read_link_at, remove_all_at, remove_children_at, split_name, Entry,
    Root,
};

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::error::Result;

/// [`strata_sys::root::open_dir_path`], with storage's error.
pub fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    Ok(strata_sys::root::open_dir_path(path)?)
}

/// [`strata_sys::root::remove_tree`], with storage's error.
pub fn remove_tree(path: &Path) -> Result<()> {
    Ok(strata_sys::root::remove_tree(path)?)
}

/// [`strata_sys::root::sync_dir`], with storage's error.
pub fn sync_dir(dir: &Path) -> Result<()> {
    Ok(strata_sys::root::sync_dir(dir)?)
}
