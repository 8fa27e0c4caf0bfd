//! [`EntryMeta`]: one entry of a tree with everything a diff compares or an archive records,
//! read without following it.

use std::ffi::OsString;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use rustix::fs::{FileType, Stat};

use super::{file_type, read_link_at, xattrs, Entry};

/// An entry with everything a diff compares or an archive records about it.
pub struct EntryMeta {
    /// Path relative to the layer root, without a leading `/`.
    pub rel: PathBuf,
    pub stat: Stat,
    /// Sorted by name.
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    /// Target of a symlink.
    pub link: Option<OsString>,
}

/// Reads everything about `entry` (in `dir`, at `rel`) that diffs and archives need.
pub fn entry_meta(dir: BorrowedFd<'_>, entry: &Entry, rel: PathBuf) -> io::Result<EntryMeta> {
    let link = match file_type(&entry.stat) {
        FileType::Symlink => Some(read_link_at(dir, &entry.name)?),
        _ => None,
    };
    let xattrs = xattrs(dir, &entry.name)?;
    Ok(EntryMeta {
        rel,
        stat: entry.stat,
        xattrs,
        link,
    })
}
