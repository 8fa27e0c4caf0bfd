//! Reading the xattrs of a directory entry without following it: the entry is named through
//! `/proc/self/fd/<dir>/<name>` to the `l*xattr` calls, so only the magic link to the already
//! open `dir` is followed, never a symlink in the tree.

use std::ffi::{OsStr, OsString};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs as rfs;
use rustix::io::{Errno, Result};

use super::node::proc_path;
use crate::layout::OverlayXattrs;

fn entry_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    proc_path(dir).join(name)
}

/// All xattrs of `name` in `dir` (`.` for `dir` itself), sorted by name. A filesystem
/// without xattrs gives none.
pub fn xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Vec<(OsString, Vec<u8>)>> {
    let path = entry_path(dir, name);
    let names = match list_names(&path) {
        Ok(n) => n,
        Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(names.len());
    for key in names {
        // Removed since it was listed: simply not there any more.
        if let Some(v) = get_value(&path, &key)? {
            out.push((key, v));
        }
    }
    out.sort();
    Ok(out)
}

/// The xattr `key` of `name` in `dir`, if set.
pub fn xattr(dir: BorrowedFd<'_>, name: &OsStr, key: &str) -> Result<Option<Vec<u8>>> {
    get_value(&entry_path(dir, name), OsStr::new(key))
}

/// Whether the directory `name` in `dir` is an overlay opaque directory, its marker in the
/// namespace `xattrs`.
pub fn is_opaque(dir: BorrowedFd<'_>, name: &OsStr, xattrs: OverlayXattrs) -> Result<bool> {
    Ok(xattr(dir, name, xattrs.opaque())?.as_deref() == Some(b"y"))
}

fn list_names(path: &Path) -> Result<Vec<OsString>> {
    loop {
        let size = rfs::llistxattr_query(path)?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match rfs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                let names = buf.split(|b| *b == 0).filter(|s| !s.is_empty());
                return Ok(names.map(|s| OsStr::from_bytes(s).to_os_string()).collect());
            }
            // The list grew between the two calls: ask again.
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn get_value(path: &Path, key: &OsStr) -> Result<Option<Vec<u8>>> {
    loop {
        let size = match rfs::lgetxattr_query(path, key) {
            Ok(n) => n,
            Err(Errno::NODATA | Errno::OPNOTSUPP) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut buf = vec![0u8; size];
        match rfs::lgetxattr(path, key, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}
