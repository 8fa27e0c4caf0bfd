//! Setting metadata (owner, mode, xattrs, times) on one filesystem object, with the call that
//! acts on the object itself and never on what a symlink points to.

use std::ffi::OsStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

/// A filesystem object whose metadata is to be set, in the form that lets each call act on
/// the object itself and never on what a symlink points to.
#[derive(Clone, Copy, Debug)]
pub enum Node<'a> {
    /// A regular file or directory opened (not `O_PATH`) by the caller.
    Open(BorrowedFd<'a>),
    /// The symlink `name` in directory `dir`: owner, xattrs (the `trusted.*` and `security.*`
    /// namespaces only; Linux refuses `user.*` on symlinks) and times; it has no mode.
    Symlink {
        dir: BorrowedFd<'a>,
        name: &'a OsStr,
    },
    /// A device node, FIFO or socket opened with `O_PATH | O_NOFOLLOW` (see [`open_path_at`]);
    /// mode and xattrs go through its `/proc/self/fd` link, which names exactly that inode.
    Path(BorrowedFd<'a>),
}

/// Opens `name` in `dir` as an `O_PATH | O_NOFOLLOW` handle, for use as [`Node::Path`]. Unlike
/// a real open, this has no side effect on device nodes and does not block on FIFOs.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rfs::openat(dir, name, flags, Mode::empty())
}

/// `/proc/self/fd/<fd>`: a path naming exactly the object `fd` holds, for the path-only calls
/// (`chmod`, `*xattr`) on an `O_PATH` handle. With a name pushed on, the `l*` calls act on
/// that entry of the directory `fd` without following it.
pub(crate) fn proc_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Node<'_> {
    /// Sets owner and group (`lchown` semantics).
    pub fn chown(&self, uid: u32, gid: u32) -> rustix::io::Result<()> {
        // -1 means "leave unchanged" to the kernel: never a real owner.
        if uid == u32::MAX || gid == u32::MAX {
            return Err(Errno::INVAL);
        }
        let (uid, gid) = (rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid));
        match *self {
            Node::Open(fd) => rfs::fchown(fd, Some(uid), Some(gid)),
            Node::Symlink { dir, name } => {
                rfs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            }
            Node::Path(fd) => rfs::chownat(fd, "", Some(uid), Some(gid), AtFlags::EMPTY_PATH),
        }
    }

    /// Sets the permission bits (`0o7777`, setuid included); a no-op on symlinks. Call after
    /// [`Node::chown`], which clears setuid/setgid.
    pub fn chmod(&self, mode: u32) -> rustix::io::Result<()> {
        let mode = Mode::from_bits_truncate(mode & 0o7777);
        match *self {
            Node::Open(fd) => rfs::fchmod(fd, mode),
            Node::Symlink { .. } => Ok(()),
            Node::Path(fd) => rfs::chmodat(rfs::CWD, proc_path(fd), mode, AtFlags::empty()),
        }
    }

    /// Sets the xattr `name` to `value`.
    pub fn set_xattr(&self, name: impl AsRef<OsStr>, value: &[u8]) -> rustix::io::Result<()> {
        let (name, flags) = (name.as_ref(), rfs::XattrFlags::empty());
        match *self {
            Node::Open(fd) => rfs::fsetxattr(fd, name, value, flags),
            Node::Symlink { dir, name: link } => {
                rfs::lsetxattr(proc_path(dir).join(link), name, value, flags)
            }
            Node::Path(fd) => rfs::setxattr(proc_path(fd), name, value, flags),
        }
    }

    /// Sets modification and access time.
    pub fn set_times(&self, mtime: Timespec, atime: Timespec) -> rustix::io::Result<()> {
        let times = Timestamps {
            last_access: atime,
            last_modification: mtime,
        };
        match *self {
            Node::Open(fd) => rfs::futimens(fd, &times),
            Node::Symlink { dir, name } => {
                rfs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            }
            Node::Path(fd) => rfs::utimensat(rfs::CWD, proc_path(fd), &times, AtFlags::empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Root;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    #[test]
    fn node_metadata_does_not_follow_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("target"), b"x").unwrap();
        symlink("target", tmp.path().join("link")).unwrap();
        let root = Root::open(tmp.path()).unwrap();
        let (dir, name) = root.parent(Path::new("link"), false).unwrap();
        let node = Node::Symlink {
            dir: dir.as_fd(),
            name,
        };
        node.chmod(0o777).unwrap();
        node.set_times(
            Timespec {
                tv_sec: 1000,
                tv_nsec: 0,
            },
            Timespec {
                tv_sec: 1000,
                tv_nsec: 0,
            },
        )
        .unwrap();
        let link = std::fs::symlink_metadata(tmp.path().join("link")).unwrap();
        let target = std::fs::metadata(tmp.path().join("target")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(link.mtime(), 1000);
        assert_ne!(target.mtime(), 1000);
        assert_ne!(target.mode() & 0o777, 0o777);
    }
}
