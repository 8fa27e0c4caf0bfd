//! Making a layer: applied from a tar (with its tar-split record, so the same bytes come
//! back out) into a fresh storage id under an in-flight marker, synced, then published by
//! the metadata transaction; and reading a layer back out as a tar or a change list.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use strata_meta::LockGuard;

use super::staging::{StagingFile, INFLIGHT};
use super::{
    db, Layer, LayerExpectation, LayerStore, TAR_SPLIT_DIR, TAR_SPLIT_STAGING, TAR_SPLIT_SUFFIX,
};
use crate::archive::{self, ApplyReport};
use crate::changes::Change;
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::driver::LayerKind;
use crate::error::{Error, IoContext, Result};
use crate::fs;

impl LayerStore {
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
            .create(&staged.id, parent_sid.as_deref(), LayerKind::ReadOnly)?;
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
    pub(super) fn publish(
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
        loop {
            let existing = self
                .db
                .write(|tx| match db::find_layer(tx, &layer.chain_id)? {
                    Some(existing) => Ok::<_, Error>(Some(existing)),
                    None => db::insert_layer(tx, &layer).map(|()| None),
                })?;
            match existing {
                // `staged` drops and removes our copy; the one kept is held instead.
                Some(existing) => match self.hold(&existing.chain_id) {
                    // A prune in another process took it between our look and our hold:
                    // ours, still staged, is published instead.
                    Err(Error::NotFound(_)) => continue,
                    other => return other,
                },
                None => {
                    staged.publish();
                    return Ok(layer);
                }
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
        let dirs = self.driver.dirs(id);
        let report = archive::apply_recording(&dirs.diff, dirs.format, tar, &mut out)?;
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
        let root = fs::Root::open(&self.driver.dirs(&layer.storage_id).diff)?;
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

    /// Writes `chain`'s changes against its parent as an uncompressed layer tar.
    pub fn export_layer(&self, chain: &Digest, out: &mut dyn Write) -> Result<()> {
        let layer = self.layer(chain)?;
        let parent_sid = self.parent_storage_id(layer.parent.as_ref())?;
        let view = self
            .driver
            .diff_view(&layer.storage_id, parent_sid.as_deref())?;
        archive::export(&view, out)
    }

    /// `chain`'s changes against its parent.
    pub fn changes_layer(&self, chain: &Digest) -> Result<Vec<Change>> {
        let layer = self.layer(chain)?;
        let parent_sid = self.parent_storage_id(layer.parent.as_ref())?;
        let view = self
            .driver
            .diff_view(&layer.storage_id, parent_sid.as_deref())?;
        crate::changes::changes(&view)
    }

    pub(super) fn parent_storage_id(&self, parent: Option<&Digest>) -> Result<Option<String>> {
        parent
            .map(|p| self.layer(p).map(|l| l.storage_id))
            .transpose()
    }

    /// Flushes everything the driver wrote (one `syncfs` of its filesystem, far cheaper than
    /// an fsync per file) so a published row never points at data still in the page cache.
    pub(super) fn sync_driver_fs(&self) -> Result<()> {
        let home = self.driver.home();
        let dir = std::fs::File::open(home).ctx_path("opening driver home", home)?;
        rustix::fs::syncfs(&dir).ctx_path("syncfs", home)
    }

    /// Removes the driver dirs of rows already deleted. A failure leaves an orphan that the
    /// next open sweeps, so it is logged rather than returned.
    pub(super) fn remove_dirs(&self, ids: &[String]) {
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

/// A layer dir under construction: holds the in-flight marker so that no recovery removes
/// it, and removes the dir when dropped unpublished (every error path).
pub(super) struct Staged<'a> {
    store: &'a LayerStore,
    pub(super) id: String,
    marker: Option<StagingFile>,
    /// Its tar-split record, once moved next to the metadata.
    pub(super) tar_split: Option<PathBuf>,
    published: bool,
}

impl<'a> Staged<'a> {
    /// Creates the in-flight marker. Under the store lock, so that recovery (which holds it)
    /// sees every builder whose driver-private scratch it could otherwise sweep.
    pub(super) fn begin(store: &'a LayerStore, _held: &LockGuard<'_>) -> Result<Staged<'a>> {
        let (id, marker) = StagingFile::create_random(&store.tmp, INFLIGHT)?;
        Ok(Staged {
            store,
            id,
            marker: Some(marker),
            tar_split: None,
            published: false,
        })
    }

    pub(super) fn publish(mut self) {
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
