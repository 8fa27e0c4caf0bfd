//! A full, faithful tree copy (what a vfs layer starts from, and how a container's upper dir
//! becomes a committed layer): every file type but sockets, hard links kept as hard links, owners, modes (setuid included), xattrs (trusted.* and
//! security.* included), atime/mtime, and sparse files kept sparse (reflinked where the
//! filesystem can). All fd-relative; no symlink is ever followed.
//!
//! Unprivileged (see [`Privileges`]) the copy is as faithful as an owner can make it: the
//! current user owns everything, device nodes and `trusted.*`/`security.*` xattrs are left
//! out (with one warning), and directories are made read-only only once their entries exist.
//!
//! A [`CopyObserver`] sees each entry as it is copied, in an order it chooses, and reads each
//! regular file's content as it is copied (see [`copy_tree_observed`]): committing a layer
//! archives and hashes it in the same pass, reading every byte once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, SeekFrom, Stat, Timespec};
use rustix::io::Errno;

use crate::error::{IoContext, Result};
use crate::fs::{self, Entry, EntryMeta, Node, Privileges, Skipped};

mod tee;

/// Sees a tree copy entry by entry ([`copy_tree_observed`]).
pub trait CopyObserver {
    /// The key by which each directory's entries are copied (and observed), ascending.
    fn order(&self, entry: &Entry) -> Vec<u8>;
    /// `node` (relative to the root; its xattrs are those the copy gets) has just been
    /// created in the copy: a directory before its contents, a regular file before its data,
    /// which `data` streams (each byte read is also written to the copy; whatever is left
    /// unread is copied afterwards). A later path of a hard-linked file comes with no data.
    fn entry(&mut self, node: &EntryMeta, data: Option<&mut dyn Read>) -> io::Result<()>;
}

/// What a copy keeps beyond the faithful default.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// The source is an overlay upper dir becoming a lower layer: keep its whiteouts and
    /// `trusted.overlay.opaque`, but drop overlayfs' bookkeeping (`trusted.overlay.origin`,
    /// `impure`, ...), which describes the upper's relation to its old mount, not content.
    pub overlay_upper: bool,
}

/// Copies the contents and metadata of the directory `src` into the existing, empty
/// directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    copy_tree_with(src, dst, CopyOptions::default())
}

/// [`copy_tree`] with `options`.
pub fn copy_tree_with(src: &Path, dst: &Path, options: CopyOptions) -> Result<()> {
    copy(src, dst, options, None)
}

/// [`copy_tree_with`], showing each entry to `observer` as it is copied. A regular file's
/// data is then read once and written by hand rather than reflinked or copied in the kernel,
/// unless the filesystem can reflink: the observer then reads the copy.
pub fn copy_tree_observed(
    src: &Path,
    dst: &Path,
    options: CopyOptions,
    observer: &mut dyn CopyObserver,
) -> Result<()> {
    copy(src, dst, options, Some(observer))
}

fn copy(
    src: &Path,
    dst: &Path,
    options: CopyOptions,
    observer: Option<&mut dyn CopyObserver>,
) -> Result<()> {
    let src_fd = fs::open_dir_path(src)?;
    let dst_fd = fs::open_dir_path(dst)?;
    let mut c = Copier {
        links: HashMap::new(),
        src,
        dst_root: dst_fd.try_clone().ctx_path("dup", dst)?,
        privileges: Privileges::current(),
        skipped: Skipped::default(),
        options,
        observer,
    };
    c.dir(src_fd.as_fd(), dst_fd.as_fd(), Path::new(""))?;
    let root_stat = rfs::fstat(&src_fd).ctx_path("stat", src)?;
    let node = Node::Open(dst_fd.as_fd());
    let xattrs = c.xattrs(src_fd.as_fd(), OsStr::new("."));
    xattrs
        .and_then(|x| c.copy_meta(node, &root_stat, &x))
        .ctx_path("copying the root's metadata to", dst)?;
    c.skipped.warn(&format!("copying {}", src.display()));
    Ok(())
}

struct Copier<'a, 'o> {
    /// First copied path (relative to the destination root) of each multiply-linked inode.
    links: HashMap<(u64, u64), PathBuf>,
    src: &'a Path,
    dst_root: OwnedFd,
    privileges: Privileges,
    skipped: Skipped,
    options: CopyOptions,
    observer: Option<&'o mut dyn CopyObserver>,
}

impl Copier<'_, '_> {
    fn dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let mut entries = fs::read_dir(src).ctx(|| format!("reading {}", self.at(rel)))?;
        if let Some(o) = &self.observer {
            entries.sort_by_cached_key(|e| o.order(e));
        }
        for e in &entries {
            let child = rel.join(&e.name);
            self.entry(src, dst, e, &child)
                .ctx(|| format!("copying {}", self.at(&child)))?;
        }
        Ok(())
    }

    fn at(&self, rel: &Path) -> String {
        format!("{}/{}", self.src.display(), rel.display())
    }

    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        e: &Entry,
        rel: &Path,
    ) -> io::Result<()> {
        let st = &e.stat;
        let ft = fs::file_type(st);
        if ft == FileType::Socket {
            return Ok(()); // A socket is only meaningful to the process that bound it.
        }
        let device = matches!(ft, FileType::CharacterDevice | FileType::BlockDevice);
        if device && !self.privileges.mknod {
            self.skipped.devices.insert(rel.to_path_buf());
            return Ok(());
        }
        let name = e.name.as_os_str();
        let link = match ft {
            FileType::Symlink => Some(fs::read_link_at(src, name)?),
            _ => None,
        };
        // Read once: what the copy gets is exactly what the observer sees.
        let node = node(rel, st, self.xattrs(src, name)?, link);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = fs::inode_key(st);
            if let Some(first) = self.links.get(&key) {
                rfs::linkat(&self.dst_root, first, dst, name, AtFlags::empty())?;
                return self.observe(&node, None);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        match ft {
            FileType::Directory => {
                rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
                self.observe(&node, None)?;
                let s = fs::open_dir_at(src, name)?;
                let d = fs::open_dir_at(dst, name)?;
                self.dir(s.as_fd(), d.as_fd(), rel)
                    .map_err(io::Error::other)?;
                // After the children, whose creation changed its mtime.
                self.copy_meta(Node::Open(d.as_fd()), st, &node.xattrs)
            }
            FileType::RegularFile => {
                let to = self.file(src, dst, name, &node)?;
                self.copy_meta(Node::Open(to.as_fd()), st, &node.xattrs)
            }
            FileType::Symlink => {
                rfs::symlinkat(node.link.as_deref().unwrap_or_default(), dst, name)?;
                self.observe(&node, None)?;
                self.copy_meta(Node::Symlink { dir: dst, name }, st, &node.xattrs)
            }
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                rfs::mknodat(dst, name, ft, Mode::from_raw_mode(0o600), st.st_rdev as _)?;
                self.observe(&node, None)?;
                let fd = fs::open_path_at(dst, name)?;
                self.copy_meta(Node::Path(fd.as_fd()), st, &node.xattrs)
            }
            _ => Ok(()),
        }
    }

    fn observe(&mut self, node: &EntryMeta, data: Option<&mut dyn Read>) -> io::Result<()> {
        match &mut self.observer {
            Some(o) => o.entry(node, data),
            None => Ok(()),
        }
    }

    /// Copies a regular file's data (the caller copies its metadata).
    fn file(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &OsStr,
        node: &EntryMeta,
    ) -> io::Result<OwnedFd> {
        let from = fs::open_file_at(src, name)?;
        let to = OwnedFd::from(fs::create_file_at(dst, name, 0o600)?);
        let size = node.stat.st_size as u64;
        // A reflink shares the extents (btrfs, xfs): reading the copy is the only read.
        if rfs::ioctl_ficlone(&to, &from).is_ok() {
            if self.observer.is_some() {
                let copy = std::fs::File::from(fs::open_file_at(dst, name)?);
                self.observe(node, Some(&mut copy.take(size)))?;
            }
            return Ok(to);
        }
        if self.observer.is_none() {
            copy_sparse(&from, &to, size)?;
            return Ok(to);
        }
        let mut tee = tee::Tee::new(&from, &to, size);
        self.observe(node, Some(&mut tee))?;
        tee.finish()?;
        Ok(to)
    }

    /// The xattrs of `name` in `src` that the copy gets.
    fn xattrs(
        &mut self,
        src: BorrowedFd<'_>,
        name: &OsStr,
    ) -> io::Result<Vec<(OsString, Vec<u8>)>> {
        let mut xattrs = fs::xattrs(src, name)?;
        xattrs.retain(|(key, _)| {
            let key = key.as_bytes();
            if self.options.overlay_upper && is_overlay_bookkeeping(key) {
                return false;
            }
            let allowed = self.privileges.may_set_xattr(key);
            if !allowed {
                self.skipped.xattrs += 1;
            }
            allowed
        });
        Ok(xattrs)
    }
}

fn node(
    rel: &Path,
    st: &Stat,
    xattrs: Vec<(OsString, Vec<u8>)>,
    link: Option<OsString>,
) -> EntryMeta {
    EntryMeta {
        rel: rel.to_path_buf(),
        stat: *st,
        xattrs,
        link,
    }
}

/// Copies the data extents of `from` into `to` and sets its length, so holes stay holes.
fn copy_sparse(from: &OwnedFd, to: &OwnedFd, size: u64) -> io::Result<()> {
    let mut off = 0u64;
    while off < size {
        let data = match rfs::seek(from, SeekFrom::Data(off)) {
            Ok(d) => d,
            Err(Errno::NXIO) => break, // Only a hole remains.
            Err(e) => return Err(e.into()),
        };
        let end = match rfs::seek(from, SeekFrom::Hole(data)) {
            Ok(h) => h.min(size),
            Err(e) => return Err(e.into()),
        };
        copy_range(from, to, data, end)?;
        off = end;
    }
    rfs::ftruncate(to, size)?;
    Ok(())
}

fn copy_range(from: &OwnedFd, to: &OwnedFd, start: u64, end: u64) -> io::Result<()> {
    let (mut i, mut o) = (start, start);
    while i < end {
        let len = (end - i).min(1 << 30) as usize;
        match rfs::copy_file_range(from, Some(&mut i), to, Some(&mut o), len) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being copied",
                ))
            }
            Ok(_) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                return copy_range_rw(from, to, i, end);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The read/write fallback for filesystems without `copy_file_range`.
fn copy_range_rw(from: &OwnedFd, to: &OwnedFd, start: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut off = start;
    while off < end {
        let want = ((end - off) as usize).min(buf.len());
        let n = rustix::io::pread(from, &mut buf[..want], off)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being copied",
            ));
        }
        let mut done = 0;
        while done < n {
            done += rustix::io::pwrite(to, &buf[done..n], off + done as u64)?;
        }
        off += n as u64;
    }
    Ok(())
}

impl Copier<'_, '_> {
    /// Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability),
    /// then times, onto `node` from the source's `st` and `xattrs` (those [`Copier::xattrs`]
    /// kept). Unprivileged, the owner is left as the current user.
    fn copy_meta(
        &mut self,
        node: Node<'_>,
        st: &Stat,
        xattrs: &[(OsString, Vec<u8>)],
    ) -> io::Result<()> {
        if self.privileges.chown {
            node.chown(st.st_uid, st.st_gid)?;
        }
        node.chmod(st.st_mode)?;
        for (key, value) in xattrs {
            node.set_xattr(key, value).map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("setting xattr {key:?}: {e}"),
                )
            })?;
        }
        let time = |sec, nsec| Timespec {
            tv_sec: sec as _,
            tv_nsec: nsec as _,
        };
        node.set_times(
            time(st.st_mtime, st.st_mtime_nsec),
            time(st.st_atime, st.st_atime_nsec),
        )?;
        Ok(())
    }
}

/// overlayfs' own xattrs (`trusted.overlay.*`, or `user.overlay.*` when mounted with
/// `userxattr`) other than the opaque marker.
fn is_overlay_bookkeeping(key: &[u8]) -> bool {
    let name = key
        .strip_prefix(b"trusted.".as_slice())
        .or_else(|| key.strip_prefix(b"user.".as_slice()));
    matches!(name, Some(n) if n.starts_with(b"overlay.") && n != b"overlay.opaque")
}
