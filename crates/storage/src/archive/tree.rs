//! A file or directory tree as a plain tar, for `cp` and `cp ... -`: unlike a layer export,
//! there is no parent to compare with and no whiteouts; the top entry may be renamed (`cp
//! a b` writes `a` as `b`) or left out (`cp dir/. dest` writes only the contents).
//!
//! The walk uses the fd-relative primitives of [`crate::fs`] (directories opened with
//! `O_NOFOLLOW`, entries `lstat`ed), so no symlink in the tree is ever followed: a symlink is
//! written as a symlink, whatever it points at.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::export::TarOut;
use crate::error::{Error, IoContext, Result};
use crate::fs::{self, Entry};
use crate::layout::DiffFormat;

/// How [`archive_tree`] records entries.
#[derive(Clone, Copy, Debug, Default)]
pub struct TreeOptions {
    /// Every entry's owner in the tar (`cp` without `-a`), instead of the owner on disk.
    pub owner: Option<(u32, u32)>,
}

/// Writes `name` in `dir` (a directory with everything under it), or with `name` `None` the
/// directory `dir` itself (opened for reading, not `O_PATH`), to `out` as an uncompressed
/// tar whose top entry is named `as_name`. An empty `as_name` leaves the top directory out
/// and writes its contents at the top of the tar. `what` names the source in messages.
pub fn archive_tree(
    dir: BorrowedFd<'_>,
    name: Option<&OsStr>,
    as_name: &Path,
    options: &TreeOptions,
    what: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tree = Tree {
        // A plain tree, not a layer: overlay's default-namespace xattrs are still left out.
        tar: TarOut::new(out, DiffFormat::FullCopy),
        options,
        what,
    };
    match name {
        Some(name) => tree.named(dir, name, as_name)?,
        None => {
            if !as_name.as_os_str().is_empty() {
                let stat = rustix::fs::fstat(dir).ctx(|| format!("stat {what}"))?;
                let entry = Entry {
                    name: ".".into(),
                    stat,
                };
                tree.write(dir, &entry, as_name)?;
            }
            tree.contents(dir, as_name)?;
        }
    }
    tree.tar
        .builder
        .finish()
        .ctx(|| format!("writing the end of the tar of {what}"))
}

struct Tree<'a, 'o> {
    tar: TarOut<'o>,
    options: &'a TreeOptions,
    what: &'a str,
}

impl Tree<'_, '_> {
    fn named(&mut self, dir: BorrowedFd<'_>, name: &OsStr, as_name: &Path) -> Result<()> {
        let stat = fs::lstat_at(dir, name)
            .ctx(|| format!("stat {}", self.what))?
            .ok_or_else(|| Error::NotFound(format!("{} does not exist", self.what)))?;
        let entry = Entry {
            name: name.to_os_string(),
            stat,
        };
        let is_dir = fs::is_dir(&stat);
        if !as_name.as_os_str().is_empty() || !is_dir {
            self.write(dir, &entry, as_name)?;
        }
        if is_dir {
            let sub = fs::open_dir_at(dir, name).ctx(|| format!("opening {}", self.what))?;
            self.contents(sub.as_fd(), as_name)?;
        }
        Ok(())
    }

    fn contents(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let what = self.what;
        let here = |p: &Path| format!("archiving {what}: {}", p.display());
        for e in fs::read_dir(dir).ctx(|| here(rel))? {
            let child = rel.join(&e.name);
            self.write(dir, &e, &child)?;
            if fs::is_dir(&e.stat) {
                let sub = fs::open_dir_at(dir, &e.name).ctx(|| here(&child))?;
                self.contents(sub.as_fd(), &child)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, dir: BorrowedFd<'_>, entry: &Entry, rel: &Path) -> Result<()> {
        let here = || format!("archiving {}: {}", self.what, rel.display());
        let mut node = fs::entry_meta(dir, entry, rel.to_path_buf()).ctx(here)?;
        if let Some((uid, gid)) = self.options.owner {
            node.stat.st_uid = uid;
            node.stat.st_gid = gid;
        }
        self.tar.entry(&node, Some((dir, &entry.name))).ctx(here)
    }
}
