//! The parallel walk of a full-copy (vfs) layer tree against its parent tree ([`naive_diff`])
//! that both export and change listing use, reporting each difference as an
//! [`EntryMeta`].
//!
//! Every entry is reached with the fd-relative primitives of [`crate::fs`] (directories
//! opened with `O_NOFOLLOW`, entries `lstat`ed, xattrs read with the `l*` calls), so no
//! symlink inside a layer is ever followed, whatever it points at.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::fs::{self, entry_meta, is_dir, open_dir_at, read_dir, Entry, EntryMeta};
use crate::layout::{ChangeKind, WHITEOUT_PREFIX};

/// Whether two nodes differ in anything a layer records. Directory size and mtime are not
/// compared: they change with their contents, which are compared on their own (as Docker).
pub fn same_node(a: &EntryMeta, b: &EntryMeta) -> bool {
    let (sa, sb) = (&a.stat, &b.stat);
    let meta = sa.st_mode == sb.st_mode
        && sa.st_uid == sb.st_uid
        && sa.st_gid == sb.st_gid
        && sa.st_rdev == sb.st_rdev
        && a.xattrs == b.xattrs
        && a.link == b.link;
    meta && (is_dir(sa)
        || (sa.st_size == sb.st_size
            && sa.st_mtime == sb.st_mtime
            && sa.st_mtime_nsec == sb.st_mtime_nsec))
}

/// Receives the differences found by [`naive_diff`], parents before children, siblings in
/// bytewise name order.
pub trait DiffSink {
    /// `node` was added or modified, or (kind `Modified`, `src` `None`) is an unchanged
    /// directory holding changes, reported just before the first of them. `src` names the
    /// entry for reading its content.
    fn present(
        &mut self,
        kind: ChangeKind,
        node: &EntryMeta,
        src: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> Result<()>;
    /// `rel` existed in the parent and is gone from the layer (its children are not listed).
    fn deleted(&mut self, rel: &Path) -> Result<()>;
}

/// Walks the full tree `layer` against the full tree `parent` (both roots, trusted) and
/// reports what differs to `sink`.
pub fn naive_diff(layer: &Path, parent: Option<&Path>, sink: &mut dyn DiffSink) -> Result<()> {
    let layer_fd = fs::open_dir_path(layer)?;
    let parent_fd = parent.map(fs::open_dir_path).transpose()?;
    let mut w = NaiveWalk {
        sink,
        pending: Vec::new(),
        layer,
    };
    w.dir(
        layer_fd.as_fd(),
        parent_fd.as_ref().map(|f| f.as_fd()),
        Path::new(""),
    )
}

/// One name of a merged listing: only in the layer, only in the parent, or in both.
#[derive(Clone, Copy)]
enum Step {
    New(usize),
    Gone(usize),
    Both(usize, usize),
}

struct NaiveWalk<'a> {
    sink: &'a mut dyn DiffSink,
    /// Unchanged directories entered but not yet reported; reported when a change is found
    /// inside them so that a tar always has a change's parents before it.
    pending: Vec<EntryMeta>,
    layer: &'a Path,
}

impl NaiveWalk<'_> {
    fn dir(&mut self, new: BorrowedFd<'_>, old: Option<BorrowedFd<'_>>, rel: &Path) -> Result<()> {
        let ctx = || format!("reading {}/{}", self.layer.display(), rel.display());
        let new_entries = read_dir(new).ctx(ctx)?;
        let old_entries = match old {
            Some(fd) => read_dir(fd).ctx(|| format!("reading parent of {}", rel.display()))?,
            None => Vec::new(),
        };
        // Merge the two sorted listings, then order the result by the names the changes
        // have in a tar (a deletion of `x` is `.wh.x`), so that export needs no re-sorting.
        let mut steps: Vec<(Vec<u8>, Step)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < new_entries.len() || j < old_entries.len() {
            let ord = match (new_entries.get(i), old_entries.get(j)) {
                (Some(a), Some(b)) => a.name.as_bytes().cmp(b.name.as_bytes()),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            let step = match ord {
                Ordering::Less => Step::New(i),
                Ordering::Greater => Step::Gone(j),
                Ordering::Equal => Step::Both(i, j),
            };
            let key = match step {
                Step::Gone(j) => {
                    [WHITEOUT_PREFIX.as_bytes(), old_entries[j].name.as_bytes()].concat()
                }
                Step::New(i) | Step::Both(i, _) => new_entries[i].name.as_bytes().to_vec(),
            };
            i += usize::from(ord != Ordering::Greater);
            j += usize::from(ord != Ordering::Less);
            steps.push((key, step));
        }
        steps.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, step) in steps {
            match step {
                Step::New(i) => self.entry(new, &new_entries[i], None, rel)?,
                Step::Gone(j) => {
                    self.flush()?;
                    self.sink.deleted(&rel.join(&old_entries[j].name))?;
                }
                Step::Both(i, j) => {
                    let old_dir = old.expect("an old entry implies an old dir");
                    self.entry(new, &new_entries[i], Some((old_dir, &old_entries[j])), rel)?;
                }
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        e: &Entry,
        old: Option<(BorrowedFd<'_>, &Entry)>,
        rel: &Path,
    ) -> Result<()> {
        let child = rel.join(&e.name);
        let here = || format!("reading {}/{}", self.layer.display(), child.display());
        let node = entry_meta(dir, e, child.clone()).ctx(here)?;
        let old_node = match old {
            Some((fd, oe)) => Some(node_of(fd, oe, child.clone())?),
            None => None,
        };
        let kind = match &old_node {
            None => Some(ChangeKind::Added),
            Some(o) if same_node(&node, o) => None,
            Some(_) => Some(ChangeKind::Modified),
        };
        if let Some(kind) = kind {
            self.flush()?;
            self.sink.present(kind, &node, Some((dir, &e.name)))?;
        }
        if !is_dir(&e.stat) {
            return Ok(());
        }
        let sub = open_dir_at(dir, &e.name).ctx(here)?;
        // Compare children only with a directory of the same name in the parent.
        let old_sub = match (old, &old_node) {
            (Some((fd, oe)), Some(o)) if is_dir(&o.stat) => Some(
                open_dir_at(fd, &oe.name)
                    .ctx(|| format!("opening parent's {}", child.display()))?,
            ),
            _ => None,
        };
        let mark = self.pending.len();
        if kind.is_none() {
            self.pending.push(node);
        }
        self.dir(sub.as_fd(), old_sub.as_ref().map(|f| f.as_fd()), &child)?;
        self.pending.truncate(mark);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for node in std::mem::take(&mut self.pending) {
            self.sink.present(ChangeKind::Modified, &node, None)?;
        }
        Ok(())
    }
}

fn node_of(dir: BorrowedFd<'_>, e: &Entry, rel: PathBuf) -> Result<EntryMeta> {
    let what = rel.display().to_string();
    entry_meta(dir, e, rel).ctx(|| format!("reading the parent's {what}"))
}
