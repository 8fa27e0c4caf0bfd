//! Holds on layers nothing references yet. A layer starts with no references and gets its
//! first one a moment later (the image that `import`, `load` or `commit` records, the
//! writable layer a container gets on its init layer); a `prune` in another process must
//! not remove it in between (Docker's "layer does not exist"). Whoever makes or reuses such
//! a layer holds `tmp/<storage id>.hold` with a shared `flock` for the rest of its
//! operation; prune, under the store lock, leaves held layers alone.
//!
//! A process's holds last until [`LayerStore::release_holds`] or its end (the kernel drops
//! the locks of a killed process, and recovery at open removes the files nobody holds).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use rustix::fs::{flock, FlockOperation};

use super::staging::in_use;
use super::{db, Layer, LayerStore};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

const HOLD: &str = ".hold";

pub(crate) struct Hold {
    path: std::path::PathBuf,
    file: File,
}

impl Drop for Hold {
    fn drop(&mut self) {
        // The last holder removes the file: only it gets the exclusive lock. (Another process
        // may have it open to lock: it then finds it unlinked and makes it again.)
        if flock(&self.file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl LayerStore {
    /// Holds layer `chain` (which must exist) for the rest of this operation.
    pub fn hold(&self, chain: &Digest) -> Result<Layer> {
        let layer = self.layer(chain)?;
        self.hold_storage(&layer.storage_id)?;
        // Looked at again under the store lock, after any prune that checked for holds
        // before ours existed has committed: if it took the layer, the row is gone.
        let _guard = self.lock()?;
        db::find_layer(&self.conn(), chain)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no layer with chain ID {chain} (it was just pruned)"
            ))
        })
    }

    pub(crate) fn hold_storage(&self, storage_id: &str) -> Result<()> {
        let path = self.tmp.join(format!("{storage_id}{HOLD}"));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .ctx_path("creating the layer hold", &path)?;
            flock(&file, FlockOperation::LockShared).ctx_path("locking", &path)?;
            // Unlinked by a recovery or the last holder between our open and our lock.
            if rustix::fs::fstat(&file).ctx_path("stat", &path)?.st_nlink > 0 {
                self.holds_mut().push(Hold { path, file });
                return Ok(());
            }
        }
    }

    /// Whether another process (or this one) holds the layer stored as `storage_id`.
    pub(crate) fn is_held(&self, storage_id: &str) -> Result<bool> {
        if self
            .holds_mut()
            .iter()
            .any(|h| h.path.ends_with(format!("{storage_id}{HOLD}")))
        {
            return Ok(true);
        }
        in_use(&self.tmp.join(format!("{storage_id}{HOLD}")))
    }

    /// Ends this process's hold on the layer stored as `storage_id`, if any.
    pub(crate) fn unhold(&self, storage_id: &str) {
        let name = format!("{storage_id}{HOLD}");
        self.holds_mut().retain(|h| !h.path.ends_with(&name));
    }

    /// Ends this process's hold on `chain`, once what it made references it (or failed).
    pub fn release_hold(&self, chain: &Digest) {
        if let Ok(layer) = self.layer(chain) {
            self.unhold(&layer.storage_id);
        }
    }

    /// Ends all of this process's holds.
    pub fn release_holds(&self) {
        self.holds_mut().clear();
    }

    fn holds_mut(&self) -> std::sync::MutexGuard<'_, Vec<Hold>> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }
}
