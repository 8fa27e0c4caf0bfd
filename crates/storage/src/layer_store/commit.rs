//! Committing a writable layer: its changes become a new read-only layer on the same parent,
//! by copying its diff dir (no tar is written and applied back).
//!
//! For overlay2 the upper dir is already in the layer form a lower needs (whiteouts as 0/0
//! devices, opaque dirs marked by xattr), so it is copied as is (reflinked where the
//! filesystem can) minus overlayfs' bookkeeping xattrs, and its export is hashed in the same
//! pass: each file is read once and written once (with a reflink, only read to hash). For vfs the writable layer is a full
//! tree, which is exactly what a vfs layer on the same parent holds. The diffID is the sha256
//! of the deterministic export of the new layer against its parent, streamed into a hasher:
//! the same changes always give the same diffID and chainID.
//!
//! A mounted (running) writable layer may change while it is copied; the copy then holds some
//! state between the start and the end of the copy, as with `docker commit --pause=false`.
//! Callers that need a point-in-time copy pause the container first.

use std::io::Write;
use std::path::Path;

use super::create::Staged;
use super::hash_thread::HashThread;
use super::{Layer, LayerStore};
use crate::archive;
use crate::digest::{Digest, HashingWriter};
use crate::driver::LayerKind;
use crate::error::{Error, IoContext, Result};
use crate::fs::copy::{copy_tree_with, CopyOptions};
use crate::fs::writeback::Writeback;
use crate::fs::Privileges;
use crate::layout::{DiffFormat, OverlayXattrs};

impl LayerStore {
    /// A new read-only layer on writable layer `name`'s parent holding exactly its changes.
    /// If a layer with the same chainID exists already (the same changes committed before),
    /// the copy is dropped and that layer returned. Like a created layer, it starts with no
    /// reference of its own (and takes one on its parent).
    pub fn commit_rw(&self, name: &str) -> Result<Layer> {
        let parent = self.rw_layer(name)?.parent;
        self.commit_rw_onto(name, parent.as_ref())
    }

    /// Like [`LayerStore::commit_rw`], but the new layer goes on `onto`, which need not be
    /// the writable layer's parent: a container's writable layer sits on its init layer, and
    /// its commit goes on the image's top layer, as Docker's does. The changes are those of
    /// the writable layer against its own parent.
    pub fn commit_rw_onto(&self, name: &str, onto: Option<&Digest>) -> Result<Layer> {
        let rw = self.rw_layer(name)?;
        let parent_sid = self.parent_storage_id(onto)?;
        let format = self.driver.dirs(&rw.storage_id).format;
        if format == DiffFormat::FullCopy && onto != rw.parent.as_ref() {
            // A vfs writable layer is a full tree of its own parent: on another parent only
            // its changes may go, and vfs has them only as a diff of two trees.
            return self.commit_naive_rebased(name, onto);
        }
        let staged = Staged::begin(self, &self.lock()?)?;
        let hashed = match format {
            DiffFormat::Overlay { xattrs } => {
                self.driver
                    .create(&staged.id, parent_sid.as_deref(), LayerKind::ReadOnly)?;
                let (from, to) = (
                    self.driver.dirs(&rw.storage_id).diff,
                    self.driver.dirs(&staged.id).diff,
                );
                copy_upper(&from, &to, xattrs).map_err(|e| commit_error(name, e))?
            }
            // A vfs layer is its parent's tree with the changes applied: the writable
            // layer's own tree.
            DiffFormat::FullCopy => {
                self.driver
                    .create(&staged.id, Some(&rw.storage_id), LayerKind::ReadOnly)
                    .map_err(|e| commit_error(name, e))?;
                None
            }
        };
        let parent = onto.cloned();
        let (diff_id, size) = match hashed {
            Some(hashed) => hashed,
            None => self.hash_export(&staged.id, parent_sid.as_deref())?,
        };
        let synced = std::time::Instant::now();
        self.sync_driver_fs()?;
        tracing::debug!(layer = %staged.id, elapsed = ?synced.elapsed(), "commit: synced");
        self.publish(staged, parent.as_ref(), diff_id, size)
    }

    /// vfs, new parent: the writable layer's changes exported to a staging tar and applied
    /// as a layer (with a tar-split record, so its tar comes back byte for byte).
    fn commit_naive_rebased(&self, name: &str, onto: Option<&Digest>) -> Result<Layer> {
        let mut staging = self.staging_file(".commit.tar")?;
        let path = staging.path().to_path_buf();
        {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, staging.file());
            self.export_rw(name, &mut out)?;
            out.flush().ctx_path("writing", &path)?;
        }
        let mut tar = std::fs::File::open(&path).ctx_path("opening", &path)?;
        self.create_layer(onto, &mut tar)
    }

    /// The diffID and tar size of layer dir `id` against `parent`, from its deterministic
    /// export streamed into a hasher (nothing is written).
    fn hash_export(&self, id: &str, parent: Option<&str>) -> Result<(Digest, u64)> {
        let mut hashing = HashingWriter::new(std::io::sink());
        archive::export(&self.driver.diff_view(id, parent)?, &mut hashing)?;
        let (_, digest, size) = hashing.finish();
        Ok((digest, size))
    }
}

/// Copies overlay upper dir `from` into the new layer dir `to`. With full privileges the copy
/// keeps everything the export records, so the export is hashed in the same pass (each file
/// read once) and returned as (diffID, tar size); otherwise the caller hashes the copy's
/// export afterwards. `xattrs`: the namespace of the upper's overlay markers.
fn copy_upper(from: &Path, to: &Path, xattrs: OverlayXattrs) -> Result<Option<(Digest, u64)>> {
    let started = std::time::Instant::now();
    if !Privileges::current().is_full() {
        let options = CopyOptions {
            overlay_upper: true,
        };
        copy_tree_with(from, to, options)?;
        return Ok(None);
    }
    let what = || format!("hashing the export of {}", from.display());
    let mut hashing = HashThread::new().ctx(what)?;
    let writeback = Writeback::start(std::os::fd::AsFd::as_fd(&crate::fs::open_dir_path(to)?));
    archive::export_copying(from, to, xattrs, &mut hashing)?;
    drop(writeback);
    let (digest, size) = hashing.finish().ctx(what)?;
    tracing::debug!(from = %from.display(), elapsed = ?started.elapsed(), size, "commit: copied and hashed");
    Ok(Some((digest, size)))
}

fn commit_error(name: &str, e: Error) -> Error {
    match e {
        Error::Io { context, cause } => Error::io(
            format!(
                "committing writable layer {name}: {context} (if the container is running and \
                 changed it meanwhile, pause it or try again)"
            ),
            cause,
        ),
        other => other,
    }
}
