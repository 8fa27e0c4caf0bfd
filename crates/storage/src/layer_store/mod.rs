//! Layers addressed by diffID and chainID, stored through a [`Driver`], with their rows in
//! the shared metadata database (`strata_meta::Db`, `root/strata.db`) and crash-safe
//! publication.
//!
//! A new layer is built under a fresh random storage id while an in-flight marker in
//! `root/tmp` is held, synced to disk (`syncfs`), and only then published by the metadata
//! transaction. Rows are the truth: at open, under the store lock, recovery removes every
//! driver dir no row claims and no live process is building, so a kill -9 at any instant
//! leaves no half layer visible. Removal goes the other way: the row goes first, the dir after
//! the commit.
//!
//! Reference counts (children layers + images with the layer on top + writable layers on it)
//! decide when a layer goes. Writers take the store lock for each mutating operation;
//! readers use SQLite's WAL snapshots and never wait for it.
//!
//! Files: `open.rs` (opening, the driver check), `create.rs` (making a layer, reading one
//! back), `tx.rs` (the layer store's part of another store's transaction), `rw.rs`
//! (writable layers), `commit.rs`, `check.rs`, `recovery.rs`, `hold.rs`, `staging.rs`,
//! `db.rs` (the tables).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rusqlite::Connection;
use strata_meta::{Db, LockGuard};

use crate::digest::Digest;
use crate::driver::Driver;
use crate::error::Result;

mod check;
mod commit;
mod create;
mod db;
mod durable;
mod hash_thread;
mod hold;
mod open;
mod recovery;
mod rw;
mod staging;
#[cfg(test)]
mod tests;
mod tx;

pub use crate::driver::Durability;
pub use check::Problem;
pub use db::LAYERS;
pub use open::recorded_driver;
pub use recovery::RecoveryReport;
pub use rw::ParentWhenUnused;
pub use staging::StagingFile;

/// `root/tar-split/<storage id>.zst`: how to rebuild a loaded layer's tar byte for byte.
pub(crate) const TAR_SPLIT_DIR: &str = "tar-split";
pub(crate) const TAR_SPLIT_SUFFIX: &str = ".zst";
/// Suffix of a record being written, in `root/tmp`.
const TAR_SPLIT_STAGING: &str = ".tar-split";

/// What a layer being loaded must turn out to be, from its manifest and config.
#[derive(Clone, Debug, Default)]
pub struct LayerExpectation {
    /// Digest of the blob as read (compressed or not), from the manifest.
    pub blob_digest: Option<Digest>,
    /// diffID (digest of the uncompressed tar), from the image config.
    pub diff_id: Option<Digest>,
}

/// An immutable layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// The driver's name for it (32 hex characters).
    pub storage_id: String,
    /// Bytes of its uncompressed tar.
    pub size: u64,
    pub created: SystemTime,
    /// Children layers + images with it on top + writable layers on it.
    pub refs: u64,
}

/// A writable layer (what `strata mount IMAGE` creates; later containers' root filesystems).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RwLayer {
    pub name: String,
    pub storage_id: String,
    pub parent: Option<Digest>,
    /// The image it was made from, if any.
    pub image: Option<String>,
    pub mount_count: u64,
    pub created: SystemTime,
}

pub struct LayerStore {
    root: PathBuf,
    tmp: PathBuf,
    driver: Box<dyn Driver>,
    /// The database every store shares; the layer store owns `layers`, `rw_layers`, `meta`.
    db: Arc<Db>,
    recovery: RecoveryReport,
    /// Layers this process made or reuses and holds until its operation ends (see `hold`).
    holds: Mutex<Vec<hold::Hold>>,
}

impl LayerStore {
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `root/tmp`: staging on the store's filesystem, emptied of leftovers at open.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }
    pub fn driver(&self) -> &dyn Driver {
        self.driver.as_ref()
    }
    /// The metadata database, for the other stores' tables and for transactions that span
    /// stores.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
    /// What recovery found and removed when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// A new locked staging file in `root/tmp` (removed at drop unless persisted).
    pub fn staging_file(&self, suffix: &str) -> Result<StagingFile> {
        Ok(StagingFile::create_random(&self.tmp, suffix)?.1)
    }

    pub fn layer(&self, chain: &Digest) -> Result<Layer> {
        db::layer(&self.conn(), chain)
    }

    pub fn layers(&self) -> Result<Vec<Layer>> {
        db::layers(&self.conn())
    }

    fn lock(&self) -> Result<LockGuard<'_>> {
        Ok(self.db.lock()?)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.conn()
    }
}
