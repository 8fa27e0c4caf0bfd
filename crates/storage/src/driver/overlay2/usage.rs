//! Disk usage of a layer's diff dir, walked fd-relative without following symlinks, with
//! each hard-linked inode counted once.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{statat, AtFlags, FileType};

use crate::driver::Usage;
use crate::error::{IoContext, Result};

/// Bytes (allocated blocks) and inodes of `dir` and everything under it.
pub fn of_dir(dir: &Path) -> Result<Usage> {
    let fd = open_dir(rustix::fs::CWD, dir).ctx_path("opening", dir)?;
    let st = rustix::fs::fstat(&fd).ctx_path("inspecting", dir)?;
    let mut usage = Usage {
        bytes: st.st_blocks as u64 * 512,
        inodes: 1,
    };
    walk_usage(fd, dir, &mut usage, &mut HashSet::new())?;
    Ok(usage)
}

fn open_dir<P: rustix::path::Arg>(at: impl AsFd, path: P) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::OFlags;
    rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
}

/// Adds up a dir's entries fd-relative, never following symlinks; a hard-linked inode is
/// counted once.
fn walk_usage(
    dir_fd: OwnedFd,
    path: &Path,
    usage: &mut Usage,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<()> {
    let mut dir = rustix::fs::Dir::read_from(&dir_fd).ctx_path("reading", path)?;
    while let Some(entry) = dir.read() {
        let entry = entry.ctx_path("reading", path)?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st =
            statat(&dir_fd, name, AtFlags::SYMLINK_NOFOLLOW).ctx_path("inspecting in", path)?;
        if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        usage.bytes += st.st_blocks as u64 * 512;
        usage.inodes += 1;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let child = path.join(OsStr::from_bytes(name.to_bytes()));
            let fd = open_dir(&dir_fd, name).ctx_path("opening", &child)?;
            walk_usage(fd, &child, usage, seen)?;
        }
    }
    Ok(())
}
