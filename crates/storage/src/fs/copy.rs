//! A full, faithful tree copy (what a vfs layer starts from, and how a container's upper dir
//! becomes a committed layer): every file type but sockets, hard links kept as hard links, owners, modes (setuid included), xattrs (trusted.* and
//! security.* included), atime/mtime, and sparse files kept sparse (reflinked where the
//! filesystem can). All fd-relative; no symlink is ever followed.
//!
//! Unprivileged (see [`Privileges`]) the copy is as faithful as an owner can make it: the
//! current user owns everything, device nodes and `trusted.*`/`security.*` xattrs are left
//! out (with one warning), and directories are made read-only only once their entries exist.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, SeekFrom, Stat, Timespec};
use rustix::io::Errno;

use crate::error::{IoContext, Result};
use crate::fs::{self, Entry, Node, Privileges, Skipped};

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
    let src_fd = fs::open_dir_path(src)?;
    let dst_fd = fs::open_dir_path(dst)?;
    let mut c = Copier {
        links: HashMap::new(),
        src,
        dst_root: dst_fd.try_clone().ctx_path("dup", dst)?,
        privileges: Privileges::current(),
        skipped: Skipped::default(),
        options,
    };
    c.dir(src_fd.as_fd(), dst_fd.as_fd(), Path::new(""))?;
    let root_stat = rfs::fstat(&src_fd).ctx_path("stat", src)?;
    let node = Node::Open(dst_fd.as_fd());
    c.copy_meta(node, src_fd.as_fd(), OsStr::new("."), &root_stat)
        .ctx_path("copying the root's metadata to", dst)?;
    c.skipped.warn(&format!("copying {}", src.display()));
    Ok(())
}

struct Copier<'a> {
    /// First copied path (relative to the destination root) of each multiply-linked inode.
    links: HashMap<(u64, u64), PathBuf>,
    src: &'a Path,
    dst_root: OwnedFd,
    privileges: Privileges,
    skipped: Skipped,
    options: CopyOptions,
}

impl Copier<'_> {
    fn dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let entries = fs::read_dir(src).ctx(|| format!("reading {}", self.at(rel)))?;
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
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = fs::inode_key(st);
            if let Some(first) = self.links.get(&key) {
                rfs::linkat(&self.dst_root, first, dst, &e.name, AtFlags::empty())?;
                return Ok(());
            }
            self.links.insert(key, rel.to_path_buf());
        }
        let name = e.name.as_os_str();
        match ft {
            FileType::Directory => {
                rfs::mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
                let s = fs::open_dir_at(src, name)?;
                let d = fs::open_dir_at(dst, name)?;
                self.dir(s.as_fd(), d.as_fd(), rel)
                    .map_err(io::Error::other)?;
                // After the children, whose creation changed its mtime.
                self.copy_meta(Node::Open(d.as_fd()), src, name, st)
            }
            FileType::RegularFile => {
                let to = copy_file(src, dst, name, st)?;
                self.copy_meta(Node::Open(to.as_fd()), src, name, st)
            }
            FileType::Symlink => {
                rfs::symlinkat(fs::read_link_at(src, name)?, dst, name)?;
                self.copy_meta(Node::Symlink { dir: dst, name }, src, name, st)
            }
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                rfs::mknodat(dst, name, ft, Mode::from_raw_mode(0o600), st.st_rdev as _)?;
                let fd = fs::open_path_at(dst, name)?;
                self.copy_meta(Node::Path(fd.as_fd()), src, name, st)
            }
            _ => Ok(()),
        }
    }
}

/// Copies the data of a regular file; the caller copies its metadata.
fn copy_file(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
) -> io::Result<OwnedFd> {
    let from = fs::open_file_at(src, name)?;
    let to = OwnedFd::from(fs::create_file_at(dst, name, 0o600)?);
    // A reflink shares the extents (btrfs, xfs); elsewhere copy only the data extents.
    if rfs::ioctl_ficlone(&to, &from).is_err() {
        copy_sparse(&from, &to, st.st_size as u64)?;
    }
    Ok(to)
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

impl Copier<'_> {
    /// Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability),
    /// then times, onto `node` from `name` in `src` (`.` for the directory itself).
    /// Unprivileged, the owner is left as the current user and system xattrs are left out.
    fn copy_meta(
        &mut self,
        node: Node<'_>,
        src: BorrowedFd<'_>,
        name: &OsStr,
        st: &Stat,
    ) -> io::Result<()> {
        if self.privileges.chown {
            node.chown(st.st_uid, st.st_gid)?;
        }
        node.chmod(st.st_mode)?;
        for (key, value) in fs::xattrs(src, name)? {
            if self.options.overlay_upper && is_overlay_bookkeeping(key.as_bytes()) {
                continue;
            }
            if !self.privileges.may_set_xattr(key.as_bytes()) {
                self.skipped.xattrs += 1;
                continue;
            }
            node.set_xattr(&key, &value).map_err(|e| {
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
