//! Writable layers: a named, mountable layer on an image's top layer (or on nothing), with a
//! persisted mount count shared by every strata process.

use std::io::Write;
use std::path::PathBuf;

use super::create::Staged;
use super::{db, LayerStore, RwLayer};
use crate::archive;
use crate::changes::{self, Change};
use crate::digest::Digest;
use crate::driver::{Durability, LayerKind};
use crate::error::{Error, Result};

/// What removing a writable layer does with its parent layer once nothing else uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentWhenUnused {
    /// Removed (and its own parent released in turn).
    Remove,
    /// Kept with no references, for the next writable layer made on it (a container's init
    /// layer, rebuilt at a cost for every `run --rm` otherwise); `prune` or the removal of
    /// the image reclaims it.
    Keep,
}

impl LayerStore {
    /// Creates writable layer `name` on `parent`, made from `image` (recorded, not checked).
    pub fn create_rw(
        &self,
        name: &str,
        parent: Option<&Digest>,
        image: Option<&str>,
    ) -> Result<RwLayer> {
        let guard = self.lock()?;
        if db::find_rw(&self.conn(), name)?.is_some() {
            return Err(Error::Conflict(format!(
                "a writable layer named {name} already exists; remove it or choose another name"
            )));
        }
        let parent_sid = self.parent_storage_id(parent)?;
        let staged = Staged::begin(self, &guard)?;
        self.driver
            .create(&staged.id, parent_sid.as_deref(), LayerKind::Writable)?;
        // vfs copies the parent's whole tree here: durable before a row points at it.
        // overlay2 writes only empty dirs and small files, each fsynced as it goes
        // (`write_atomic`, `sync_dir`): flushing the whole filesystem for them would cost
        // every other writer's dirty data (100+ ms under load) on each `run`.
        if self.driver.name() != "overlay2" {
            self.sync_driver_fs()?;
        }
        let rw = RwLayer {
            name: name.to_string(),
            storage_id: staged.id.clone(),
            parent: parent.cloned(),
            image: image.map(str::to_string),
            mount_count: 0,
            created: std::time::SystemTime::now(),
        };
        self.db
            .transact(&guard, |tx| db::insert_rw(tx, &rw))?
            .1
            .run();
        staged.publish();
        Ok(rw)
    }

    pub fn rw_layer(&self, name: &str) -> Result<RwLayer> {
        db::rw(&self.conn(), name)
    }

    pub fn rw_layers(&self) -> Result<Vec<RwLayer>> {
        db::rws(&self.conn())
    }

    /// Mounts `name` (on the first mount) and returns its path. The count is only raised once
    /// the mount succeeded.
    pub fn mount_rw(&self, name: &str) -> Result<PathBuf> {
        self.mount_rw_with(name, Durability::Durable)
    }

    /// [`LayerStore::mount_rw`] with the durability the layer's writes need.
    pub fn mount_rw_with(&self, name: &str, durability: Durability) -> Result<PathBuf> {
        let guard = self.lock()?;
        let rw = self.rw_layer(name)?;
        // Idempotent in the driver: a second mount returns the path of the first.
        let path = self.driver.mount(&rw.storage_id, durability)?;
        let counted = self.db.transact_volatile(&guard, |tx| {
            db::set_mount_count(tx, name, rw.mount_count + 1)
        });
        if let Err(e) = counted {
            if rw.mount_count == 0 {
                if let Err(u) = self.driver.unmount(&rw.storage_id) {
                    // Recovery at the next open unmounts a layer mounted with a count of 0.
                    tracing::warn!("undoing the mount of writable layer {name}: {u}");
                }
            }
            return Err(e);
        }
        Ok(path)
    }

    /// Drops one mount of `name` (all of them with `force`), unmounting at zero.
    pub fn unmount_rw(&self, name: &str, force: bool) -> Result<()> {
        let guard = self.lock()?;
        let rw = self.rw_layer(name)?;
        if rw.mount_count == 0 && !force {
            return Err(Error::Conflict(format!(
                "writable layer {name} is not mounted"
            )));
        }
        let left = if force { 0 } else { rw.mount_count - 1 };
        if left == 0 {
            self.driver.unmount(&rw.storage_id)?;
        }
        if left != rw.mount_count {
            self.db
                .transact_volatile(&guard, |tx| db::set_mount_count(tx, name, left))?;
        }
        Ok(())
    }

    /// Removes `name`: refused while mounted unless `force`, which unmounts it first. The row
    /// goes (releasing the parent layer) before the dir.
    pub fn remove_rw(&self, name: &str, force: bool) -> Result<()> {
        self.remove_rw_with(name, force, ParentWhenUnused::Remove)
    }

    /// [`LayerStore::remove_rw`], saying what becomes of a parent layer nothing else uses.
    pub fn remove_rw_with(&self, name: &str, force: bool, parent: ParentWhenUnused) -> Result<()> {
        let guard = self.lock()?;
        let rw = self.rw_layer(name)?;
        if rw.mount_count > 0 && !force {
            return Err(Error::Conflict(format!(
                "writable layer {name} is mounted ({} times); unmount it first or force removal",
                rw.mount_count
            )));
        }
        if rw.mount_count > 0 || self.driver.is_mounted(&rw.storage_id)? {
            self.driver.unmount(&rw.storage_id)?;
            self.db
                .transact_volatile(&guard, |tx| db::set_mount_count(tx, name, 0))?;
        }
        let ((), deferred) = self
            .db
            .transact(&guard, |tx| self.remove_rw_in(tx, name, parent))?;
        drop(guard);
        deferred.run();
        Ok(())
    }

    /// `name`'s changes against its parent layer, as `docker diff` lists them.
    pub fn changes_rw(&self, name: &str) -> Result<Vec<Change>> {
        let rw = self.rw_layer(name)?;
        let parent_sid = self.parent_storage_id(rw.parent.as_ref())?;
        changes::changes(
            &self
                .driver
                .diff_view(&rw.storage_id, parent_sid.as_deref())?,
        )
    }

    /// Writes `name`'s changes against its parent layer as an uncompressed layer tar.
    pub fn export_rw(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let rw = self.rw_layer(name)?;
        let parent_sid = self.parent_storage_id(rw.parent.as_ref())?;
        archive::export(
            &self
                .driver
                .diff_view(&rw.storage_id, parent_sid.as_deref())?,
            out,
        )
    }
}
