//! The layer store's part of a metadata transaction: other stores (images, containers)
//! change their rows and layer references in one [`Tx`]. Driver dirs of layers a
//! transaction releases are removed after its commit, once the store lock is released.

use strata_meta::Tx;

use super::{db, Layer, LayerStore, ParentWhenUnused};
use crate::digest::Digest;
use crate::error::{Error, Result};

impl LayerStore {
    pub fn layer_in(&self, tx: &Tx<'_>, chain: &Digest) -> Result<Layer> {
        db::layer(tx, chain)
    }

    /// Adds a reference to `chain` (an image now has it on top).
    pub fn retain_in(&self, tx: &Tx<'_>, chain: &Digest) -> Result<()> {
        db::retain(tx, chain)
    }

    /// Drops a reference to `chain` in `tx`, removing it (and releasing its parent) at zero.
    pub fn release_in<'a>(&'a self, tx: &mut Tx<'a>, chain: &Digest) -> Result<()> {
        // A layer another process holds is kept at zero references: its operation is about
        // to reference it (prune reclaims it otherwise). This process's own hold ends: it
        // is done with a layer it releases.
        let doomed = db::release(tx, chain, &|sid| {
            self.unhold(sid);
            self.is_held(sid).unwrap_or(true)
        })?;
        self.remove_dirs_after(tx, doomed);
        Ok(())
    }

    /// Deletes writable layer `name` in `tx` (unmounted: refused otherwise), saying what
    /// becomes of its parent once unused; its dir goes after the commit.
    pub fn remove_rw_in<'a>(
        &'a self,
        tx: &mut Tx<'a>,
        name: &str,
        parent: ParentWhenUnused,
    ) -> Result<()> {
        let rw = db::rw(tx, name)?;
        if rw.mount_count > 0 {
            return Err(Error::Conflict(format!(
                "writable layer {name} is mounted ({} times); unmount it first",
                rw.mount_count
            )));
        }
        db::delete_rw(tx, name)?;
        self.remove_dirs_after(tx, vec![rw.storage_id]);
        match (&rw.parent, parent) {
            (Some(p), ParentWhenUnused::Remove) => self.release_in(tx, p),
            (Some(p), ParentWhenUnused::Keep) => db::release_keeping(tx, p),
            (None, _) => Ok(()),
        }
    }

    /// Writable layers made from `image`.
    pub fn rw_layers_of_image_in(&self, tx: &Tx<'_>, image: &str) -> Result<Vec<String>> {
        db::rw_names_of_image(tx, image)
    }

    /// Removes the dirs of `doomed` (rows `tx` deleted) once it has committed.
    fn remove_dirs_after<'a>(&'a self, tx: &mut Tx<'a>, doomed: Vec<String>) {
        if !doomed.is_empty() {
            tx.after_unlock(move || self.remove_dirs(&doomed));
        }
    }

    /// Drops a reference to `chain`; at zero the layer goes, and its parent is released in
    /// turn, in one transaction. Their dirs are removed after the commit.
    pub fn release_layer(&self, chain: &Digest) -> Result<()> {
        self.db.write(|tx| self.release_in(tx, chain))
    }

    /// Removes `chain` if nothing references it (a layer created and never used, a kept
    /// init layer). Returns whether it was removed: not if used, held, or already gone.
    /// A hold this process has on it ends first: the caller is done with it.
    pub fn remove_if_unused(&self, chain: &Digest) -> Result<bool> {
        if let Ok(layer) = self.layer(chain) {
            self.unhold(&layer.storage_id);
        }
        self.db.write(|tx| {
            let layer = match db::layer(tx, chain) {
                Ok(layer) => layer,
                // Another process (a concurrent prune or rmi) removed it first.
                Err(Error::NotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            // Held by another process: just made or reused, about to be referenced.
            if layer.refs > 0 || self.is_held(&layer.storage_id)? {
                return Ok(false);
            }
            self.release_in(tx, chain).map(|()| true)
        })
    }
}
