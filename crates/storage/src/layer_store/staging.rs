//! Staging: the in-flight markers and temporary files under `root/tmp`.
//!
//! Crash recovery removes whatever a dead process left half-made, but must not touch work a
//! live process still has in hand. Every staging entry is therefore `flock`ed by its creator
//! for its whole life: the kernel drops the lock when the process dies (kill -9 included), so
//! "unlocked" means "abandoned" and recovery may delete it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, IoContext, Result};
use crate::fs::sync_dir;

/// Suffix of the marker a process holds while it builds the driver dir of the same name.
pub(crate) const INFLIGHT: &str = ".inflight";

/// A file in `root/tmp`, created and locked by this process. Dropped unpersisted, it is
/// removed. Used both as an in-flight marker and as the staging file of a blob.
pub struct StagingFile {
    path: PathBuf,
    file: Option<File>,
}

impl StagingFile {
    /// Creates `dir/name` exclusively and locks it. `Ok(None)` if the name is taken.
    pub(crate) fn create(dir: &Path, name: &str) -> Result<Option<StagingFile>> {
        let path = dir.join(name);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
        };
        // Blocking: another process's recovery may hold the lock for the instant it takes to
        // unlink the file (it was unlocked between our create and our lock).
        flock(&file, FlockOperation::LockExclusive).ctx_path("locking staging file", &path)?;
        // A file recovery unlinked that way has no links: it is no marker at all.
        let nlink = rustix::fs::fstat(&file).ctx_path("stat", &path)?.st_nlink;
        if nlink == 0 {
            return Ok(None);
        }
        Ok(Some(StagingFile {
            path,
            file: Some(file),
        }))
    }

    /// Creates a fresh staging file under a random name in `dir` with `suffix`.
    pub(crate) fn create_random(dir: &Path, suffix: &str) -> Result<(String, StagingFile)> {
        loop {
            let id = strata_sys::id::random_hex(16, "a storage id")?;
            if let Some(f) = StagingFile::create(dir, &format!("{id}{suffix}"))? {
                return Ok((id, f));
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("staging file is open until dropped or persisted")
    }

    /// fsyncs the file, renames it to `dest` and fsyncs `dest`'s directory, so that once this
    /// returns the file is durably at `dest`.
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        let file = self.file.take().expect("persist once");
        file.sync_all().ctx_path("syncing", &self.path)?;
        std::fs::rename(&self.path, dest)
            .ctx(|| format!("renaming {} to {}", self.path.display(), dest.display()))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        // Unlink before closing (which unlocks): recovery never sees it unlocked and linked.
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether a live process holds `path` locked (a staging entry in use).
pub(crate) fn in_use(path: &Path) -> Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(false),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
        Err(e) => Err(Error::io(
            format!("probing lock on {}", path.display()),
            e.into(),
        )),
    }
}

/// Removes `path` if no process holds its lock, unlinking it while holding the lock
/// ourselves: a creator that locks it meanwhile then finds it unlinked ([`StagingFile::create`])
/// instead of believing in a file we are about to remove. Whether it was removed.
fn remove_if_unlocked(path: &Path) -> Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
        Err(e) => {
            return Err(Error::io(
                format!("probing lock on {}", path.display()),
                e.into(),
            ))
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(
            format!("removing leftover {}", path.display()),
            e,
        )),
        _ => Ok(true),
    }
}

/// How many in-flight markers in `tmp` a live process holds (layers being built now).
pub(crate) fn live_builders(tmp: &Path) -> Result<usize> {
    let mut live = 0;
    for entry in std::fs::read_dir(tmp).ctx_path("listing", tmp)? {
        let path = entry.ctx_path("listing", tmp)?.path();
        let marker = path.to_str().is_some_and(|p| p.ends_with(INFLIGHT));
        if marker && in_use(&path)? {
            live += 1;
        }
    }
    Ok(live)
}

/// Removes every entry of `tmp` no live process holds. Returns how many were removed.
pub(crate) fn clean_tmp(tmp: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp).ctx_path("listing", tmp)? {
        let entry = entry.ctx_path("listing", tmp)?;
        let path = entry.path();
        let is_dir = entry.file_type().ctx_path("stat", &path)?.is_dir();
        if is_dir {
            // Nothing stages directories in tmp under a lock, so any is a leftover.
            std::fs::remove_dir_all(&path).ctx_path("removing leftover", &path)?;
        } else if !remove_if_unlocked(&path)? {
            continue;
        }
        removed += 1;
    }
    Ok(removed)
}
