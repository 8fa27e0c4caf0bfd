//! The store-wide writer lock: an in-process mutex (threads share one open file description,
//! which `flock` does not distinguish) plus `flock(LOCK_EX)` on `root/strata.lock` for other
//! processes. The kernel drops the `flock` when the process dies, kill -9 included.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

pub(crate) struct StoreLock {
    file: File,
    threads: Mutex<()>,
}

/// Held while one mutating operation runs; dropping it releases the lock. Functions that
/// must run under the lock take a `&LockGuard` as proof.
pub struct LockGuard<'a> {
    lock: &'a StoreLock,
    _threads: MutexGuard<'a, ()>,
}

impl StoreLock {
    pub(crate) fn open(path: &Path) -> Result<StoreLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(format!("opening the store lock {}", path.display()), e))?;
        Ok(StoreLock {
            file,
            threads: Mutex::new(()),
        })
    }

    pub(crate) fn lock(&self) -> Result<LockGuard<'_>> {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        flock(&self.file, FlockOperation::LockExclusive)
            .map_err(|e| Error::io("locking the store (strata.lock)", e.into()))?;
        Ok(LockGuard {
            lock: self,
            _threads: threads,
        })
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = flock(&self.lock.file, FlockOperation::Unlock);
    }
}
