//! Layers addressed by diffID and chainID, stored through a [`Driver`], with their metadata
//! in SQLite (`root/strata.db`) and crash-safe publication.
//!
//! A new layer is built under a fresh random storage id while an in-flight marker in
//! `root/tmp` is held, synced to disk (`syncfs`), and only then published by the metadata
//! transaction. Rows are the truth: at open, under the store lock, recovery removes every
//! driver dir no row claims and no live process is building, so a kill -9 at any instant
//! leaves no half layer visible. Removal goes the other way: the row goes first, the dir after
//! the commit.
//!
//! Reference counts (children layers + images with the layer on top + writable layers on it)
//! decide when a layer goes. Writers take an exclusive `flock` on `root/strata.lock` for each
//! mutating operation; readers use SQLite's WAL snapshots and never wait for it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, TransactionBehavior};

use crate::archive::{self, ApplyReport};
use crate::changes::Change;
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::driver::{self, Driver};
use crate::error::{Error, IoContext, Result};
use crate::fs;

mod check;
mod commit;
mod db;
mod durable;
mod hash_thread;
mod hold;
mod recovery;
mod reserve;
mod rw;
mod staging;
#[cfg(test)]
mod tests;

pub use check::Problem;
pub use recovery::RecoveryReport;
pub use rw::{Durability, ParentWhenUnused};
pub use staging::StagingFile;

use staging::{LockGuard, StoreLock, INFLIGHT};

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
    conn: Mutex<Connection>,
    lock: StoreLock,
    recovery: RecoveryReport,
    /// Layers this process made or reuses and holds until its operation ends (see `hold`).
    holds: Mutex<Vec<hold::Hold>>,
}

/// A metadata transaction under the store lock, for the image store to change its rows and
/// layer reference counts atomically. Driver dirs of layers it releases are removed after
/// the commit.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    store: &'a LayerStore,
    doomed: Vec<String>,
    on_commit: Vec<Box<dyn FnOnce() + 'a>>,
}

impl<'a> Tx<'a> {
    /// The connection, for the caller's own tables.
    pub fn sql(&self) -> &Connection {
        &self.tx
    }
    pub fn layer(&self, chain: &Digest) -> Result<Layer> {
        db::layer(&self.tx, chain)
    }
    /// Adds a reference to `chain` (an image now has it on top).
    pub fn retain_layer(&self, chain: &Digest) -> Result<()> {
        db::retain(&self.tx, chain)
    }
    /// Drops a reference to `chain`, removing it (and releasing its parent) at zero.
    pub fn release_layer(&mut self, chain: &Digest) -> Result<()> {
        // A layer another process holds is kept at zero references: its operation is about
        // to reference it (prune reclaims it otherwise). This process's own hold ends: it
        // is done with a layer it releases.
        let store = self.store;
        let doomed = db::release(&self.tx, chain, &|sid| {
            store.unhold(sid);
            store.is_held(sid).unwrap_or(true)
        })?;
        self.doomed.extend(doomed);
        Ok(())
    }
    /// Creates `component`'s tables with `sql` unless they exist at `version`.
    pub fn ensure_schema(&self, component: &str, version: i64, sql: &str) -> Result<()> {
        db::ensure_schema(&self.tx, component, version, sql)
    }
    /// Deletes writable layer `name` (unmounted: refused otherwise), saying what becomes of
    /// its parent once unused; its dir goes after the commit.
    pub fn remove_rw(&mut self, name: &str, parent: ParentWhenUnused) -> Result<()> {
        let rw = db::rw(&self.tx, name)?;
        if rw.mount_count > 0 {
            return Err(Error::Conflict(format!(
                "writable layer {name} is mounted ({} times); unmount it first",
                rw.mount_count
            )));
        }
        db::delete_rw(&self.tx, name)?;
        self.doomed.push(rw.storage_id);
        match (&rw.parent, parent) {
            (Some(p), ParentWhenUnused::Remove) => self.release_layer(p),
            (Some(p), ParentWhenUnused::Keep) => db::release_keeping(&self.tx, p),
            (None, _) => Ok(()),
        }
    }
    /// Writable layers made from `image`.
    pub fn rw_layers_of_image(&self, image: &str) -> Result<Vec<String>> {
        db::rw_names_of_image(&self.tx, image)
    }
    /// Runs `f` once the transaction has committed, still under the store lock: for file
    /// changes that must not race with another writer (removing a content-addressed blob
    /// another process may be about to reuse). Not run if the transaction fails.
    pub fn on_commit(&mut self, f: impl FnOnce() + 'a) {
        self.on_commit.push(Box::new(f));
    }
}

impl LayerStore {
    /// Opens (creating if needed) the store at `root` with driver `driver_name`.
    pub fn open(root: &Path, driver_name: &str, driver_options: &[String]) -> Result<LayerStore> {
        // The driver opens (and passes its checks) before the store records it, so a refused
        // driver does not claim a new store: the remedy its error gives must still work.
        if let Some(recorded) = recorded_driver(root)? {
            if recorded != driver_name {
                return Err(driver_mismatch(root, &recorded));
            }
        }
        create_dir_mode(root, 0o700)?;
        let driver = driver::open(driver_name, root, driver_options)?;
        let (conn, lock) = open_metadata(root, driver_name)?;
        LayerStore::assemble(root, driver, conn, lock)
    }

    /// Opens the store like [`LayerStore::open`] but without the recovery sweep, so that
    /// `strata check` sees (and reports) what a crash left before anything tidies it.
    pub fn open_unrecovered(
        root: &Path,
        driver_name: &str,
        driver_options: &[String],
    ) -> Result<LayerStore> {
        if let Some(recorded) = recorded_driver(root)? {
            if recorded != driver_name {
                return Err(driver_mismatch(root, &recorded));
            }
        }
        create_dir_mode(root, 0o700)?;
        let driver = driver::open(driver_name, root, driver_options)?;
        let (conn, lock) = open_metadata(root, driver_name)?;
        Ok(LayerStore::unrecovered(root, driver, conn, lock))
    }

    /// Opens the store at `root` with an already opened driver.
    pub fn open_with_driver(root: &Path, driver: Box<dyn Driver>) -> Result<LayerStore> {
        let (conn, lock) = open_metadata(root, driver.name())?;
        LayerStore::assemble(root, driver, conn, lock)
    }

    fn assemble(
        root: &Path,
        driver: Box<dyn Driver>,
        conn: Connection,
        lock: StoreLock,
    ) -> Result<LayerStore> {
        let mut store = LayerStore::unrecovered(root, driver, conn, lock);
        store.recovery = store.recover()?;
        Ok(store)
    }

    fn unrecovered(
        root: &Path,
        driver: Box<dyn Driver>,
        conn: Connection,
        lock: StoreLock,
    ) -> LayerStore {
        LayerStore {
            root: root.to_path_buf(),
            tmp: root.join("tmp"),
            driver,
            conn: Mutex::new(conn),
            lock,
            recovery: RecoveryReport::default(),
            holds: Mutex::new(Vec::new()),
        }
    }

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
    /// What recovery found and removed when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// A new locked staging file in `root/tmp` (removed at drop unless persisted).
    pub fn staging_file(&self, suffix: &str) -> Result<StagingFile> {
        Ok(StagingFile::create_random(&self.tmp, suffix)?.1)
    }

    /// Runs `f` on a consistent read snapshot; never waits for writers.
    pub fn read<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        f(&self.conn())
    }

    /// Runs `f` in one transaction under the store lock. `f` must not call back into the
    /// store's own mutating methods (the lock is held).
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.lock()?;
        let (value, doomed) = self.transact(&guard, f)?;
        drop(guard);
        self.remove_dirs(&doomed);
        Ok(value)
    }

    /// [`LayerStore::write`] for state no reboot keeps (mount counts, running processes):
    /// committed without waiting for the disk. The next durable commit carries it to disk;
    /// a power cut before that loses it, and recovery then finds what it finds after any
    /// reboot: nothing mounted, nothing running. `f` must not delete rows (their dirs would
    /// go before their deletion is durable).
    pub fn write_volatile<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.lock()?;
        self.transact_volatile(&guard, f)
    }

    fn transact_volatile<T, E: From<Error>>(
        &self,
        held: &LockGuard<'_>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // The connection is shared by the process's threads, but every commit runs under
        // the store lock (`held`): none can slip in between the two pragmas.
        self.conn()
            .pragma_update(None, "synchronous", "OFF")
            .map_err(Error::from)?;
        let result = self.transact(held, f);
        // FULL again for every other commit; failing that, the connection is not to be used.
        self.conn()
            .pragma_update(None, "synchronous", "FULL")
            .map_err(Error::from)?;
        let (value, doomed) = result?;
        debug_assert!(doomed.is_empty(), "a volatile commit deleted rows");
        Ok(value)
    }

    fn lock(&self) -> Result<LockGuard<'_>> {
        self.lock.lock()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One transaction, the store lock being held by the caller. Returns the storage ids whose
    /// rows it deleted.
    fn transact<T, E: From<Error>>(
        &self,
        _held: &LockGuard<'_>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<(T, Vec<String>), E> {
        reserve::release_if_low(&self.root);
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::from)?;
        let mut tx = Tx {
            tx,
            store: self,
            doomed: Vec::new(),
            on_commit: Vec::new(),
        };
        let value = f(&mut tx)?;
        let Tx {
            tx,
            store: _,
            doomed,
            on_commit,
        } = tx;
        tx.commit().map_err(Error::from)?;
        on_commit.into_iter().for_each(|f| f());
        Ok((value, doomed))
    }

    /// Removes the driver dirs of rows already deleted. A failure leaves an orphan that the
    /// next open sweeps, so it is logged rather than returned.
    fn remove_dirs(&self, ids: &[String]) {
        for id in ids {
            if let Err(e) = self.driver.remove(id) {
                tracing::warn!("removing layer dir {id} (swept at next open): {e}");
            }
            self.remove_tar_split(id);
        }
    }

    /// Removes the tar-split record of `id`, if any. A failure leaves an orphan that the
    /// next open sweeps.
    fn remove_tar_split(&self, id: &str) {
        let path = self.tar_split_path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("removing {} (swept at next open): {e}", path.display())
            }
            _ => {}
        }
    }

    pub fn layer(&self, chain: &Digest) -> Result<Layer> {
        db::layer(&self.conn(), chain)
    }

    pub fn layers(&self) -> Result<Vec<Layer>> {
        db::layers(&self.conn())
    }

    /// Like [`LayerStore::create_layer`], but checks `expect` after applying and before
    /// publishing: a blob whose digest (of the bytes as read, compressed or not) or whose
    /// diffID differs from what the manifest/config says is refused and leaves nothing.
    pub fn create_layer_checked(
        &self,
        parent: Option<&Digest>,
        tar: &mut dyn Read,
        expect: &LayerExpectation,
    ) -> Result<Layer> {
        let parent_sid = self.parent_storage_id(parent)?;
        let mut staged = Staged::begin(self, &self.lock()?)?;
        self.driver
            .create(&staged.id, parent_sid.as_deref(), false)?;
        let mut split = self.staging_file(TAR_SPLIT_STAGING)?;
        // Only a blob digest to check needs a second hash of the input: without one, the
        // diffID hash the driver computes already covers every byte of the tar.
        let (report, blob) = if expect.blob_digest.is_some() {
            let mut hashing = HashingReader::new(tar);
            let report = self.apply_recording(&staged.id, &mut hashing, &mut split)?;
            drain_blob(&mut hashing)?;
            (report, Some(hashing.finish().0))
        } else {
            let report = self.apply_recording(&staged.id, tar, &mut split)?;
            drain_blob(tar)?;
            (report, None)
        };
        check_expectation(expect, blob.as_ref(), &report.diff_id)?;
        self.sync_applied(&staged.id, &report)?;
        let dest = self.tar_split_path(&staged.id);
        staged.tar_split = Some(dest.clone()); // removed on any error from here on
        split.persist(&dest)?;
        self.publish(staged, parent, report.diff_id, report.tar_size)
    }

    /// The last step of making a layer, once it is whole and durable on disk: the metadata
    /// transaction. If a layer with the same chainID exists, it is returned and ours is
    /// dropped (identical chains are stored once).
    fn publish(
        &self,
        staged: Staged<'_>,
        parent: Option<&Digest>,
        diff_id: Digest,
        size: u64,
    ) -> Result<Layer> {
        let layer = Layer {
            chain_id: Digest::chain(parent, &diff_id),
            diff_id,
            parent: parent.cloned(),
            storage_id: staged.id.clone(),
            size,
            created: SystemTime::now(),
            refs: 0,
        };
        // Held from before its row exists: no prune can take it before the caller's image
        // or writable layer references it.
        self.hold_storage(&layer.storage_id)?;
        let existing = self.write(|tx| match db::find_layer(&tx.tx, &layer.chain_id)? {
            Some(existing) => Ok::<_, Error>(Some(existing)),
            None => db::insert_layer(&tx.tx, &layer).map(|()| None),
        })?;
        match existing {
            // `staged` drops and removes our copy; the one kept is held instead.
            Some(existing) => self.hold(&existing.chain_id),
            None => {
                staged.publish();
                Ok(layer)
            }
        }
    }

    /// Applies `tar` into the fresh layer `id`, recording its tar-split into `split`.
    fn apply_recording(
        &self,
        id: &str,
        tar: &mut dyn Read,
        split: &mut StagingFile,
    ) -> Result<ApplyReport> {
        let path = split.path().to_path_buf();
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, split.file());
        let report = self.driver.apply(id, tar, Some(&mut out))?;
        out.flush().ctx_path("writing", &path)?;
        Ok(report)
    }

    /// Where the tar-split record of the layer stored as `storage_id` lives.
    fn tar_split_path(&self, storage_id: &str) -> PathBuf {
        self.root
            .join(TAR_SPLIT_DIR)
            .join(format!("{storage_id}{TAR_SPLIT_SUFFIX}"))
    }

    /// Writes layer `chain`'s tar: for a layer applied from a tar, the very bytes it was
    /// applied from (uncompressed), rebuilt from its tar-split record and its content; for a
    /// layer strata made itself, a deterministic export. The output's sha256 is checked
    /// against the diffID as it streams. Returns the bytes written.
    pub fn layer_tar(&self, chain: &Digest, out: &mut dyn Write) -> Result<u64> {
        let layer = self.layer(chain)?;
        let path = self.tar_split_path(&layer.storage_id);
        let record = match std::fs::File::open(&path) {
            Ok(f) => f,
            // Made by strata (commit), or loaded before records existed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut hashing = HashingWriter::new(out);
                self.export_layer(chain, &mut hashing)?;
                let (_, digest, written) = hashing.finish();
                return check_tar_digest(&layer, &digest).map(|()| written);
            }
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        let root = fs::Root::open(&self.driver.diff_dir(&layer.storage_id))?;
        let mut hashing = HashingWriter::new(out);
        let mut record = std::io::BufReader::new(record);
        archive::reassemble(&mut record, &root, &mut hashing)?;
        let (_, digest, written) = hashing.finish();
        check_tar_digest(&layer, &digest).map(|()| written)
    }

    /// Applies the layer tar `tar` (plain, gzip or zstd) on `parent` and publishes it, with
    /// the tar-split record that lets [`LayerStore::layer_tar`] give back the same bytes. If
    /// a layer with the resulting chainID already exists, the new copy is dropped and the
    /// existing one returned; no reference count changes either way (a new layer starts at 0
    /// references and takes one on its parent).
    pub fn create_layer(&self, parent: Option<&Digest>, tar: &mut dyn Read) -> Result<Layer> {
        self.create_layer_checked(parent, tar, &LayerExpectation::default())
    }

    /// Drops a reference to `chain`; at zero the layer goes, and its parent is released in
    /// turn, in one transaction. Their dirs are removed after the commit.
    pub fn release_layer(&self, chain: &Digest) -> Result<()> {
        self.write(|tx| tx.release_layer(chain))
    }

    /// Removes `chain` if nothing references it (a layer created and never used, a kept
    /// init layer). Returns whether it was removed: not if used, held, or already gone.
    /// A hold this process has on it ends first: the caller is done with it.
    pub fn remove_if_unused(&self, chain: &Digest) -> Result<bool> {
        if let Ok(layer) = self.layer(chain) {
            self.unhold(&layer.storage_id);
        }
        self.write(|tx| {
            let layer = match tx.layer(chain) {
                Ok(layer) => layer,
                // Another process (a concurrent prune or rmi) removed it first.
                Err(Error::NotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            // Held by another process: just made or reused, about to be referenced.
            if layer.refs > 0 || self.is_held(&layer.storage_id)? {
                return Ok(false);
            }
            tx.release_layer(chain).map(|()| true)
        })
    }

    /// Writes `chain`'s changes against its parent as an uncompressed layer tar.
    pub fn export_layer(&self, chain: &Digest, out: &mut dyn Write) -> Result<()> {
        let layer = self.layer(chain)?;
        let parent_sid = self.parent_storage_id(layer.parent.as_ref())?;
        self.driver
            .export(&layer.storage_id, parent_sid.as_deref(), out)
    }

    /// `chain`'s changes against its parent.
    pub fn changes_layer(&self, chain: &Digest) -> Result<Vec<Change>> {
        let layer = self.layer(chain)?;
        let parent_sid = self.parent_storage_id(layer.parent.as_ref())?;
        self.driver
            .changes(&layer.storage_id, parent_sid.as_deref())
    }

    fn parent_storage_id(&self, parent: Option<&Digest>) -> Result<Option<String>> {
        parent
            .map(|p| self.layer(p).map(|l| l.storage_id))
            .transpose()
    }

    /// Flushes everything the driver wrote (one `syncfs` of its filesystem, far cheaper than
    /// an fsync per file) so a published row never points at data still in the page cache.
    fn sync_driver_fs(&self) -> Result<()> {
        let home = self.driver.home();
        let dir = std::fs::File::open(home).ctx_path("opening driver home", home)?;
        rustix::fs::syncfs(&dir).ctx_path("syncfs", home)
    }
}

/// A layer whose tar no longer hashes to its diffID was changed on disk after it was made.
fn check_tar_digest(layer: &Layer, digest: &Digest) -> Result<()> {
    if *digest != layer.diff_id {
        return Err(Error::Corrupt(format!(
            "layer {} was modified after it was stored: its tar now has digest {digest}, not \
             its diffID {}; remove the images that use it and load or commit them again",
            layer.chain_id, layer.diff_id
        )));
    }
    Ok(())
}

/// A layer blob that is not what its manifest or config says is refused.
/// Reads the input to its end. The tar may end before the blob does (zero padding after a
/// gzip member or the end-of-archive blocks); the caller's reader must see every byte (the
/// blob digest covers them, and a stream left half-read would desynchronise an archive).
fn drain_blob(blob: &mut dyn Read) -> Result<()> {
    std::io::copy(blob, &mut std::io::sink())
        .map(|_| ())
        .map_err(|e| Error::Archive(format!("reading the rest of the layer blob: {e}")))
}

/// Checks the digests the caller expects; `blob` is the input's digest, computed only when
/// `expect.blob_digest` asks for it.
fn check_expectation(
    expect: &LayerExpectation,
    blob: Option<&Digest>,
    diff_id: &Digest,
) -> Result<()> {
    if let (Some(want), Some(got)) = (expect.blob_digest.as_ref(), blob) {
        if want != got {
            return Err(Error::Archive(format!(
                "layer blob digest mismatch: expected {want}, got {got} (corrupt or tampered blob)"
            )));
        }
    }
    if let Some(want) = expect.diff_id.as_ref().filter(|w| *w != diff_id) {
        let of_blob = blob.map(|b| format!(" (blob {b})")).unwrap_or_default();
        return Err(Error::Archive(format!(
            "layer diffID mismatch: the image config says {want}, the blob's uncompressed tar \
             is {diff_id}{of_blob}"
        )));
    }
    Ok(())
}

/// Checkpoint the WAL when it reaches this many pages (see `open_metadata`).
const WAL_PAGES: i64 = 128;

/// The driver the store at `root` was created with, or `None` if there is no store there yet.
/// Creates nothing.
pub fn recorded_driver(root: &Path) -> Result<Option<String>> {
    let db_path = root.join("strata.db");
    if !db_path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| {
            Error::Corrupt(format!(
                "opening metadata database {}: {e}",
                db_path.display()
            ))
        })?;
    conn.busy_timeout(Duration::from_secs(30))?;
    if !db::meta_table_exists(&conn)? {
        return Ok(None);
    }
    db::meta(&conn, "driver")
}

/// Opens `root/strata.db` and the lock, creating the store on first use, and checks that the
/// store was made for `driver_name`.
fn open_metadata(root: &Path, driver_name: &str) -> Result<(Connection, StoreLock)> {
    create_dir_mode(root, 0o700)?;
    create_dir_mode(&root.join("tmp"), 0o700)?;
    create_dir_mode(&root.join(TAR_SPLIT_DIR), 0o700)?;
    let lock = StoreLock::open(&root.join("strata.lock"))?;
    let guard = lock.lock()?;
    let db_path = root.join("strata.db");
    let conn = Connection::open(&db_path).map_err(|e| {
        Error::Corrupt(format!(
            "opening metadata database {}: {e}",
            db_path.display()
        ))
    })?;
    conn.busy_timeout(Duration::from_secs(30))?;
    // FULL: a commit that deletes rows is followed by removing their dirs; a power loss must
    // not bring back rows whose dirs are gone.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every strata process opens and closes the store: a checkpoint at each close (SQLite's
    // default for the last connection) costs fsyncs of the database and the WAL's removal
    // and re-creation in every command. The WAL is as durable as the database (FULL), and
    // commits checkpoint it as it grows, so closing skips it.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    // But the first connection of a process (none other open) rebuilds the WAL index by
    // reading the whole WAL: at SQLite's default of 1000 pages that is up to 4 MiB and
    // ~30 ms on every command. A short WAL keeps opening cheap; a checkpoint every 128
    // pages is a few commands apart.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    let created = db::meta_table_exists(&conn)?
        .then(|| db::meta(&conn, "driver"))
        .transpose()?
        .flatten();
    match created {
        None => {
            // A new store: WAL once, here, under the lock (it persists in the file).
            let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(
                    "{} could not switch to WAL (mode {mode})",
                    db_path.display()
                );
            }
            db::init(&conn)?;
            db::set_meta(&conn, "driver", driver_name)?;
        }
        Some(d) if d == driver_name => db::init(&conn)?,
        Some(d) => return Err(driver_mismatch(root, &d)),
    }
    drop(guard);
    Ok((conn, lock))
}

fn driver_mismatch(root: &Path, recorded: &str) -> Error {
    Error::Conflict(format!(
        "store {} was created with {recorded}; pass --storage-driver {recorded} or use another --root",
        root.display()
    ))
}

fn create_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::io(format!("creating {}", dir.display()), e)),
    }
}

/// A layer dir under construction: holds the in-flight marker so that no recovery removes
/// it, and removes the dir when dropped unpublished (every error path).
struct Staged<'a> {
    store: &'a LayerStore,
    id: String,
    marker: Option<StagingFile>,
    /// Its tar-split record, once moved next to the metadata.
    tar_split: Option<PathBuf>,
    published: bool,
}

impl<'a> Staged<'a> {
    /// Creates the in-flight marker. Under the store lock, so that recovery (which holds it)
    /// sees every builder whose driver-private scratch it could otherwise sweep.
    fn begin(store: &'a LayerStore, _held: &LockGuard<'_>) -> Result<Staged<'a>> {
        let (id, marker) = StagingFile::create_random(&store.tmp, INFLIGHT)?;
        Ok(Staged {
            store,
            id,
            marker: Some(marker),
            tar_split: None,
            published: false,
        })
    }

    fn publish(mut self) {
        self.published = true;
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if !self.published {
            if let Err(e) = self.store.driver.remove(&self.id) {
                tracing::warn!(
                    "removing unfinished layer dir {} (swept at next open): {e}",
                    self.id
                );
            }
            if self.tar_split.is_some() {
                self.store.remove_tar_split(&self.id);
            }
        }
        // The marker goes last: until the dir is gone (or published) it must stay locked.
        drop(self.marker.take());
    }
}
