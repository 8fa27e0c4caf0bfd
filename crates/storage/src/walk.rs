//! fd-relative reading of layer trees, shared by the vfs copy, export and change listing.
//!
//! Every entry is named by (directory fd, single name): directories are opened with
//! `O_NOFOLLOW | O_DIRECTORY`, entries are `lstat`ed, and xattrs are read through
//! `/proc/self/fd/<dir>/<name>` with the `l*` calls, so no symlink inside a layer is ever
//! followed, whatever it points at. Only the layer roots themselves are opened by path: they
//! are store paths, not content.
//!
//! Also here: the parallel walk of a layer tree against its parent tree ([`naive_diff`]) that
//! both export and change listing of full-copy (vfs) layers use.

use std::cmp::Ordering;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};

use crate::archive::whiteout::{OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};
use crate::changes::ChangeKind;
use crate::error::{IoContext, Result};

/// One directory entry and its `lstat`.
pub struct Entry {
    pub name: OsString,
    pub stat: Stat,
}

/// An entry with everything a diff compares or an archive records about it.
pub struct Node {
    /// Path relative to the layer root, without a leading `/`.
    pub rel: PathBuf,
    pub stat: Stat,
    /// Sorted by name.
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    /// Target of a symlink.
    pub link: Option<OsString>,
}

/// Opens a layer root (a store path, trusted) as a directory, refusing a symlink.
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    rfs::open(path, dir_flags(), Mode::empty()).ctx_path("opening layer directory", path)
}

/// Opens the directory `name` inside `dir`, refusing symlinks.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(dir, name, dir_flags(), Mode::empty())?)
}

/// Opens the regular file `name` inside `dir` for reading, refusing symlinks.
pub fn open_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    Ok(rfs::openat(dir, name, flags, Mode::empty())?)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The entries of `dir` (without `.` and `..`), sorted bytewise by name, each `lstat`ed.
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for ent in rfs::Dir::read_from(dir)? {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = OsStr::from_bytes(name).to_os_string();
        // An entry removed between readdir and lstat is simply not there any more.
        if let Some(stat) = lstat(dir, &name)? {
            out.push(Entry { name, stat });
        }
    }
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode as _)
}

pub fn is_dir(st: &Stat) -> bool {
    file_type(st) == FileType::Directory
}

/// An overlay whiteout: a 0/0 character device.
pub fn is_whiteout(st: &Stat) -> bool {
    file_type(st) == FileType::CharacterDevice && st.st_rdev == 0
}

/// The path through which `name` in `dir` can be named to the `l*xattr` calls without
/// following anything but the magic link to `dir` itself.
pub fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

/// All xattrs of `name` in `dir`, sorted by name. Filesystems without xattrs give none.
pub fn xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let path = proc_path(dir, name);
    let names = match list_names(&path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc_enotsup()) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(names.len());
    for key in names {
        match get_value(&path, &key)? {
            Some(v) => out.push((key, v)),
            None => continue,
        }
    }
    out.sort();
    Ok(out)
}

/// The xattr `key` of `name` in `dir`, if set.
pub fn xattr(dir: BorrowedFd<'_>, name: &OsStr, key: &str) -> io::Result<Option<Vec<u8>>> {
    get_value(&proc_path(dir, name), OsStr::new(key))
}

/// Whether the directory `name` in `dir` is an overlay opaque directory.
pub fn is_opaque(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<bool> {
    Ok(xattr(dir, name, OVERLAY_OPAQUE_XATTR)?.as_deref() == Some(b"y"))
}

fn libc_enotsup() -> i32 {
    rustix::io::Errno::OPNOTSUPP.raw_os_error()
}

fn list_names(path: &Path) -> io::Result<Vec<OsString>> {
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
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn get_value(path: &Path, key: &OsStr) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rfs::lgetxattr_query(path, key) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) if e.raw_os_error() == libc_enotsup() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rfs::lgetxattr(path, key, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The target of the symlink `name` in `dir`.
pub fn read_link(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    let target = rfs::readlinkat(dir, name, Vec::new())?;
    Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
}

/// Reads everything about `entry` (in `dir`, at `rel`) that diffs and archives need.
pub fn node(dir: BorrowedFd<'_>, entry: &Entry, rel: PathBuf) -> io::Result<Node> {
    let link = match file_type(&entry.stat) {
        FileType::Symlink => Some(read_link(dir, &entry.name)?),
        _ => None,
    };
    let xattrs = xattrs(dir, &entry.name)?;
    Ok(Node {
        rel,
        stat: entry.stat,
        xattrs,
        link,
    })
}

/// Whether two nodes differ in anything a layer records. Directory size and mtime are not
/// compared: they change with their contents, which are compared on their own (as Docker).
pub fn same_node(a: &Node, b: &Node) -> bool {
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
        node: &Node,
        src: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> Result<()>;
    /// `rel` existed in the parent and is gone from the layer (its children are not listed).
    fn deleted(&mut self, rel: &Path) -> Result<()>;
}

/// Walks the full tree `layer` against the full tree `parent` (both roots, trusted) and
/// reports what differs to `sink`.
pub fn naive_diff(layer: &Path, parent: Option<&Path>, sink: &mut dyn DiffSink) -> Result<()> {
    let layer_fd = open_root(layer)?;
    let parent_fd = parent.map(open_root).transpose()?;
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
    pending: Vec<Node>,
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
        let node = node(dir, e, child.clone()).ctx(here)?;
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
        let sub = open_dir(dir, &e.name).ctx(here)?;
        // Compare children only with a directory of the same name in the parent.
        let old_sub = match (old, &old_node) {
            (Some((fd, oe)), Some(o)) if is_dir(&o.stat) => Some(
                open_dir(fd, &oe.name).ctx(|| format!("opening parent's {}", child.display()))?,
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

fn node_of(dir: BorrowedFd<'_>, e: &Entry, rel: PathBuf) -> Result<Node> {
    let what = rel.display().to_string();
    node(dir, e, rel).ctx(|| format!("reading the parent's {what}"))
}

/// The identity of an inode, for keeping hard links together.
#[allow(clippy::unnecessary_cast)] // The field types differ between architectures.
pub fn inode_key(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}
