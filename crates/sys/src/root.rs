//! fd-relative, no-escape path handling.
//!
//! A [`Root`] holds a directory fd. Paths inside it (from archives, API calls, containers) are
//! first [`normalize`]d (leading `/` and `.` dropped, `..` refused), then their *parent* is
//! resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlink met on the
//! way (`/`, `..`, `../../etc`) is interpreted as if the root were `/` and can never lead out.
//! The final component is then acted on with `*at` calls that never follow it
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! The `*_at` functions act on one name in an open directory and never follow it. Only
//! trusted paths (a layer dir, a mount point) are opened by path, with [`Root::open`] or
//! [`open_dir_path`].

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};

/// How `openat2` resolves paths under a root: symlinks are followed but the root acts as `/`.
const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// Flags to open a directory we will create entries in or set metadata on.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Normalises a path from an archive or a request into a relative path under a root: drops
/// leading `/` and every `.`, and refuses `..` with [`Error::PathEscape`]. `""`, `/` and `./`
/// all give the empty path, which stands for the root itself.
pub fn normalize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::PathEscape(path.display().to_string()))
            }
        }
    }
    Ok(out)
}

/// Splits a normalised relative path into its parent and its final name; `None` for the empty
/// path (the root has no name inside itself).
pub fn split_name(rel: &Path) -> Option<(&Path, &OsStr)> {
    let name = rel.file_name()?;
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

/// A directory that paths are resolved inside of, held open as an `O_PATH` fd.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Root {
    /// Opens the directory `path` as a root. `path` itself is trusted (it is ours: a layer
    /// dir, a mount point) and is resolved normally.
    pub fn open(path: &Path) -> Result<Root> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rfs::open(path, flags, Mode::empty()).ctx_path("opening directory", path)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A root on a directory already open (e.g. one resolved inside another root); `path`
    /// is only shown in messages.
    pub fn from_fd(fd: OwnedFd, path: PathBuf) -> Root {
        Root { fd, path }
    }

    /// The path the root was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` shown under the root's path, for messages.
    pub fn display(&self, rel: &Path) -> String {
        self.path.join(rel).display().to_string()
    }

    /// Opens anything at the normalised `rel` with `flags` (e.g. `RDONLY` to read a file),
    /// following symlinks only inside the root. Add `OFlags::NOFOLLOW` to refuse a final symlink.
    pub fn open_in(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd> {
        self.openat2(rel, flags | OFlags::CLOEXEC)
            .ctx(|| format!("opening {} inside its root", self.display(rel)))
    }

    /// Opens the directory at the normalised `rel` (the empty path is the root itself), read
    /// only, following symlinks only inside the root.
    pub fn open_dir(&self, rel: &Path) -> Result<OwnedFd> {
        self.openat2(rel, DIR_FLAGS)
            .ctx(|| format!("opening directory {}", self.display(rel)))
    }

    /// Like [`Root::open_dir`], creating missing directories on the way with `mode` (less the
    /// umask), as `mkdir -p` does. A non-directory in the way is an error.
    pub fn create_dir_all(&self, rel: &Path, mode: u32) -> Result<OwnedFd> {
        self.mkdir_p(rel, Mode::from_bits_truncate(mode))
            .ctx(|| format!("creating directory {}", self.display(rel)))
    }

    /// The parent directory of the normalised, non-empty `rel` (created like `mkdir -p` with
    /// mode 0755 if `create`) and the final name, on which callers use `*at` calls that do not
    /// follow it.
    pub fn parent<'p>(&self, rel: &'p Path, create: bool) -> Result<(OwnedFd, &'p OsStr)> {
        let Some((parent, name)) = split_name(rel) else {
            return Err(Error::PathEscape(format!(
                "{} (the root itself has no parent)",
                rel.display()
            )));
        };
        let dir = if create {
            self.create_dir_all(parent, 0o755)?
        } else {
            self.open_dir(parent)?
        };
        Ok((dir, name))
    }

    /// `lstat` of the normalised `rel`; `None` if it (or its parent) does not exist.
    pub fn lstat(&self, rel: &Path) -> Result<Option<Stat>> {
        let Some((parent, name)) = split_name(rel) else {
            return rfs::fstat(&self.fd)
                .map(Some)
                .ctx(|| format!("stat {}", self.path.display()));
        };
        let dir = match self.openat2(parent, DIR_FLAGS) {
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
            other => other.ctx(|| format!("opening directory {}", self.display(parent)))?,
        };
        lstat_at(dir.as_fd(), name).ctx(|| format!("stat {}", self.display(rel)))
    }

    /// Removes the normalised `rel` and everything under it, never following a symlink. A
    /// missing path is not an error. Refuses the empty path (the root itself).
    pub fn remove_all(&self, rel: &Path) -> Result<()> {
        let Some((parent, name)) = split_name(rel) else {
            return Err(Error::Conflict(format!(
                "refusing to remove the root {}",
                self.path.display()
            )));
        };
        let dir = match self.openat2(parent, DIR_FLAGS) {
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            other => other.ctx(|| format!("opening directory {}", self.display(parent)))?,
        };
        remove_all_at(dir.as_fd(), name).ctx(|| format!("removing {}", self.display(rel)))
    }

    fn openat2(&self, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        // EAGAIN: a concurrent rename somewhere in the root; the kernel asks us to retry.
        let mut tries = 0;
        loop {
            match rfs::openat2(&self.fd, rel, flags, Mode::empty(), IN_ROOT) {
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                result => return result,
            }
        }
    }

    fn mkdir_p(&self, rel: &Path, mode: Mode) -> rustix::io::Result<OwnedFd> {
        match self.openat2(rel, DIR_FLAGS) {
            Err(Errno::NOENT) => {}
            result => return result,
        }
        let (parent, name) = split_name(rel).ok_or(Errno::NOENT)?;
        let parent_fd = self.mkdir_p(parent, mode)?;
        match rfs::mkdirat(&parent_fd, name, mode) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        // Reopen through the root: if a dangling symlink was in the way, this reports it.
        self.openat2(rel, DIR_FLAGS)
    }
}

/// Opens the directory at the trusted store path `path` (a layer dir, not content) for
/// reading, refusing a final symlink.
pub fn open_dir_path(path: &Path) -> Result<OwnedFd> {
    open_dir_at(rfs::CWD, path.as_os_str()).ctx_path("opening directory", path)
}

/// Removes the trusted store path `path` and everything under it, never following a symlink
/// inside it; absent is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    remove_all_at(rfs::CWD, path.as_os_str()).ctx_path("removing", path)
}

/// fsyncs the trusted store directory `dir`, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx_path("syncing directory", dir)
}

/// `lstat` of `name` in `dir`; `None` if absent.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<Option<Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the directory `name` in `dir` without following it (`ELOOP`/`ENOTDIR` if it is a
/// symlink or not a directory).
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(dir, name, DIR_FLAGS | OFlags::NOFOLLOW, Mode::empty())
}

/// Opens the regular file `name` in `dir` for reading, refusing a symlink.
pub fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    rfs::openat(dir, name, flags, Mode::empty())
}

/// The target of the symlink `name` in `dir`.
pub fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OsString> {
    let target = rfs::readlinkat(dir, name, Vec::new())?;
    Ok(OsString::from_vec(target.into_bytes()))
}

/// One directory entry and its `lstat`.
pub struct Entry {
    pub name: OsString,
    pub stat: Stat,
}

/// The names in `dir`, without `.` and `..`, in the order the filesystem gives them.
pub fn names(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(OsString::from_vec(bytes.to_vec()));
        }
    }
    Ok(names)
}

/// The entries of `dir` (without `.` and `..`), sorted bytewise by name, each `lstat`ed.
pub fn read_dir(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for name in names(dir)? {
        // An entry removed between readdir and lstat is simply not there any more.
        if let Some(stat) = lstat_at(dir, &name)? {
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

/// The identity of an inode, for keeping hard links together.
#[allow(clippy::unnecessary_cast)] // The field types differ between architectures.
pub fn inode_key(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// Creates the regular file `name` in `dir` for writing with `mode`; fails with `EEXIST` if
/// anything (a symlink included) already has that name.
pub fn create_file_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> rustix::io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rfs::openat(dir, name, flags, Mode::from_bits_truncate(mode)).map(File::from)
}

/// Removes `name` in `dir` and everything under it, never following a symlink; absent is fine.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let child = match open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match remove_children_at(child.as_fd(), &mut |_| false) {
        // A read-only directory (0555) we own, without CAP_DAC_OVERRIDE: make it writable.
        Err(Errno::ACCESS) => {
            rfs::fchmod(&child, Mode::from_raw_mode(0o700))?;
            remove_children_at(child.as_fd(), &mut |_| false)?;
        }
        other => other?,
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes every entry of the directory `dir` (recursively, never following symlinks) for
/// which `keep(name)` is false.
pub fn remove_children_at(
    dir: BorrowedFd<'_>,
    keep: &mut dyn FnMut(&OsStr) -> bool,
) -> rustix::io::Result<()> {
    // Collect first: deleting while reading may make getdents skip entries on some filesystems.
    for name in names(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_strips_roots_and_dots_and_refuses_dotdot() {
        assert_eq!(normalize(Path::new("/etc/x")).unwrap(), Path::new("etc/x"));
        assert_eq!(normalize(Path::new("./a/./b/")).unwrap(), Path::new("a/b"));
        assert_eq!(normalize(Path::new("./")).unwrap(), Path::new(""));
        for bad in ["../x", "./../x", "a/../../x", "a/.."] {
            let err = normalize(Path::new(bad)).unwrap_err();
            assert!(matches!(err, Error::PathEscape(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("root");
        std::fs::create_dir_all(root_path.join("real")).unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        symlink("/", root_path.join("abs")).unwrap();
        symlink("../../real", root_path.join("up")).unwrap();
        symlink("../../outside", root_path.join("dangling")).unwrap();
        let root = Root::open(&root_path).unwrap();
        // `/` and `../..` both mean the root itself: creating under them stays inside.
        root.create_dir_all(Path::new("abs/made"), 0o755).unwrap();
        root.create_dir_all(Path::new("up/made2"), 0o755).unwrap();
        assert!(root_path.join("made").is_dir());
        assert!(root_path.join("real/made2").is_dir());
        // A dangling symlink in the way is reported, as `mkdir -p` does, never followed out.
        assert!(root.create_dir_all(Path::new("dangling/x"), 0o755).is_err());
        assert_eq!(
            std::fs::read_dir(tmp.path().join("outside"))
                .unwrap()
                .count(),
            0
        );
        let (dir, name) = root.parent(Path::new("abs/real/f"), false).unwrap();
        create_file_at(dir.as_fd(), name, 0o644).unwrap();
        assert!(root_path.join("real/f").is_file());
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("root");
        std::fs::create_dir_all(root_path.join("d/sub")).unwrap();
        std::fs::create_dir(tmp.path().join("keep")).unwrap();
        std::fs::write(tmp.path().join("keep/file"), b"x").unwrap();
        symlink(tmp.path().join("keep"), root_path.join("d/link")).unwrap();
        std::fs::write(root_path.join("d/sub/f"), b"y").unwrap();
        let root = Root::open(&root_path).unwrap();
        root.remove_all(Path::new("d")).unwrap();
        root.remove_all(Path::new("absent/x")).unwrap();
        assert!(!root_path.join("d").exists());
        assert!(tmp.path().join("keep/file").exists());
        assert!(root.remove_all(Path::new("")).is_err());
    }
}
