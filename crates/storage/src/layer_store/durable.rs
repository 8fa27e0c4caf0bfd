//! Making a newly applied layer durable. A big layer is flushed with one `syncfs` of the
//! driver's filesystem (far cheaper than an fsync per file); a tiny one (a container's init
//! layer: a dozen empty files and dirs, made again whenever the last container of an image
//! was removed) is flushed file by file instead, because `syncfs` also writes out every other
//! process's dirty data on that filesystem, which on a busy machine costs 100+ ms.

use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{openat, Dir, FileType, Mode, OFlags, CWD};

use super::LayerStore;
use crate::archive::ApplyReport;
use crate::error::{IoContext, Result};

/// A layer at most this big (tar entries, tar bytes) is synced file by file.
const SMALL_ENTRIES: u64 = 64;
const SMALL_BYTES: u64 = 1 << 20;
/// Entries walked at most: a driver whose diff dir holds more than the layer's own changes
/// (vfs copies its parent) falls back to `syncfs`.
const WALK_LIMIT: usize = 256;

impl LayerStore {
    /// Flushes layer `id`, just applied as `report` says, to disk.
    pub(super) fn sync_applied(&self, id: &str, report: &ApplyReport) -> Result<()> {
        if report.entries <= SMALL_ENTRIES && report.tar_size <= SMALL_BYTES {
            let dir = self.driver.dirs(id).diff;
            let mut budget = WALK_LIMIT;
            match sync_tree(&dir, &mut budget) {
                Ok(true) => return Ok(()),
                Ok(false) => {} // too many entries
                Err(e) => {
                    tracing::debug!("syncing {} file by file: {e}; using syncfs", dir.display())
                }
            }
        }
        self.sync_driver_fs()
    }
}

/// Fsyncs every regular file and directory under `dir` (fd-relative, never following a
/// link), children before their directory; `false` if more than `budget` entries. Links,
/// devices and whiteouts are metadata, written with their directory's fsync.
fn sync_tree(dir: &Path, budget: &mut usize) -> Result<bool> {
    let fd = openat(CWD, dir, dir_flags(), Mode::empty()).ctx_path("opening", dir)?;
    sync_dir_fd(&fd, dir, budget)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn sync_dir_fd(fd: &OwnedFd, path: &Path, budget: &mut usize) -> Result<bool> {
    let entries = Dir::read_from(fd).ctx_path("listing", path)?;
    for entry in entries {
        let entry = entry.ctx_path("listing", path)?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        if *budget == 0 {
            return Ok(false);
        }
        *budget -= 1;
        let kind = match entry.file_type() {
            FileType::Unknown => {
                rustix::fs::statat(fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode))
                    .ctx_path("inspecting an entry of", path)?
            }
            known => known,
        };
        match kind {
            FileType::Directory => {
                let child = openat(fd, name, dir_flags(), Mode::empty())
                    .ctx_path("opening a directory in", path)?;
                if !sync_dir_fd(&child, path, budget)? {
                    return Ok(false);
                }
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
                let file =
                    openat(fd, name, flags, Mode::empty()).ctx_path("opening a file in", path)?;
                rustix::fs::fsync(&file).ctx_path("syncing a file in", path)?;
            }
            _ => {}
        }
    }
    rustix::fs::fsync(fd).ctx_path("syncing", path)?;
    Ok(true)
}
