//! Telling, in a full-copy layer, what came from the parent copy from what this apply
//! put there, without remembering every path: by the target filesystem's own timestamps.
//!
//! At the start we read the filesystem clock from a marker inode and wait until it has moved
//! on, so that everything the parent copy made is strictly older than the boundary and
//! everything this apply makes or changes is at or after it (the kernel hands out file
//! timestamps that never go backwards, across inodes too). A non-directory is this layer's
//! when it was born (`btime`; `ctime` where the filesystem keeps no birth time) at or after
//! the boundary: apply never rewrites a file in place, it always makes a new inode. A
//! directory is this layer's when its `ctime` is (an entry of this layer set its metadata, or
//! something was created or removed in it) or when it still holds something of this layer.
//!
//! The one thing timestamps cannot tell is a hard link this apply made to a parent's inode:
//! its birth time is the parent's. Those few names are remembered ([`Epoch::linked`]).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, StatxFlags, StatxTimestamp};
use rustix::io::Errno;

use crate::error::{Error, IoContext, Result};
use crate::fs::{self, Root};

/// The moment an apply began, on the target filesystem's clock.
pub(super) struct Epoch {
    boundary: (i64, u32),
    /// Names this apply hard-linked to inodes older than the boundary.
    linked: HashSet<PathBuf>,
}

fn key(t: StatxTimestamp) -> (i64, u32) {
    (t.tv_sec, t.tv_nsec)
}

const MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::CTIME)
    .union(StatxFlags::BTIME);

fn statx(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<rfs::Statx> {
    rfs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, MASK)
}

impl Epoch {
    /// Reads the clock of the filesystem of `root` from an unnamed temporary file (which
    /// changes nothing in the layer), then waits until a new change of that file gets a later
    /// time: anything made before this call is then strictly older than the boundary.
    pub(super) fn start(root: &Root) -> Result<Epoch> {
        let ctx = || format!("reading the clock of {}", root.path().display());
        let dir = root.open_dir(Path::new(""))?;
        let marker = marker(dir.as_fd()).ctx(ctx)?;
        let ctime = |fd: &OwnedFd| -> rustix::io::Result<(i64, u32)> {
            let st = rfs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::CTIME)?;
            Ok(key(st.stx_ctime))
        };
        let first = ctime(&marker).ctx(ctx)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // chmod always sets ctime to now; the clock may be coarse (a few ms per tick).
            rfs::fchmod(&marker, Mode::from_raw_mode(0o600)).ctx(ctx)?;
            let now = ctime(&marker).ctx(ctx)?;
            if now > first {
                return Ok(Epoch {
                    boundary: now,
                    linked: HashSet::new(),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::io(
                    ctx(),
                    std::io::Error::other("the file timestamps do not advance; check the clock"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn older(&self, t: StatxTimestamp) -> bool {
        key(t) < self.boundary
    }

    /// Notes that this apply is about to hard-link `rel` to `target_name` in `target_dir`.
    pub(super) fn linking(&mut self, target_dir: BorrowedFd<'_>, target_name: &OsStr, rel: &Path) {
        if let Ok(st) = statx(target_dir, target_name) {
            if self.older(born(&st)) {
                self.linked.insert(rel.to_path_buf());
            }
        }
    }

    /// Removes from the directory `dir` (at `rel`), recursively, everything older than the
    /// boundary (see the module doc). Returns whether anything was kept.
    pub(super) fn prune(&self, dir: BorrowedFd<'_>, rel: &mut PathBuf) -> rustix::io::Result<bool> {
        let mut kept = false;
        // Collect first: deleting while reading may make getdents skip entries.
        for name in fs::names(dir)? {
            rel.push(&name);
            let result = self.prune_child(dir, &name, rel);
            rel.pop();
            kept |= result?;
        }
        Ok(kept)
    }

    fn prune_child(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &mut PathBuf,
    ) -> rustix::io::Result<bool> {
        let st = match statx(dir, name) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        if FileType::from_raw_mode(st.stx_mode.into()) != FileType::Directory {
            if !self.older(born(&st)) || self.linked.contains(rel.as_path()) {
                return Ok(true);
            }
            return match rfs::unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let touched = !self.older(st.stx_ctime);
        let child = fs::open_dir_at(dir, name)?;
        let kept = match self.prune(child.as_fd(), rel) {
            // A read-only directory (0555) we own, without CAP_DAC_OVERRIDE: open it up for
            // the pruning, and give it its mode back if it stays.
            Err(Errno::ACCESS) => {
                rfs::fchmod(&child, Mode::from_raw_mode(0o700))?;
                let kept = self.prune(child.as_fd(), rel)?;
                rfs::fchmod(&child, Mode::from_raw_mode(u32::from(st.stx_mode) & 0o7777))?;
                kept
            }
            other => other?,
        } || touched;
        if !kept {
            match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(kept)
    }
}

/// When the inode was made: its birth time, or where the filesystem keeps none its last
/// change (which, for what apply makes, is no earlier).
fn born(st: &rfs::Statx) -> StatxTimestamp {
    if st.stx_mask & StatxFlags::BTIME.bits() != 0 {
        st.stx_btime
    } else {
        st.stx_ctime
    }
}

/// An unnamed file in `dir`, or on a filesystem without `O_TMPFILE` a named one unlinked at
/// once (which does change the directory's times).
fn marker(dir: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    let mode = Mode::from_raw_mode(0o600);
    match rfs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        mode,
    ) {
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
        other => return other,
    }
    let name = format!(".strata-apply-clock-{}", std::process::id());
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, name.as_str(), flags, mode)?;
    rfs::unlinkat(dir, name.as_str(), AtFlags::empty())?;
    Ok(fd)
}
