//! Start-up recovery: make the disk agree with the rows after a crash. Runs at every open,
//! under the store lock, and leaves alone whatever a live process is still building.

use std::collections::HashSet;

use super::staging::{clean_tmp, in_use, live_builders, INFLIGHT};
use super::{db, LayerStore, TAR_SPLIT_DIR, TAR_SPLIT_SUFFIX};
use crate::error::{Error, IoContext, Result};

/// What recovery did when the store was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Driver dirs no row claimed (half-made or half-removed layers), removed.
    pub orphan_dirs_removed: usize,
    /// Tar-split records no row claimed (a crash between their move and the commit, or
    /// between a removal's commit and theirs), removed.
    pub orphan_tar_splits_removed: usize,
    /// Leftover entries of `root/tmp`, removed.
    pub tmp_entries_removed: usize,
    /// Writable layers the rows said were mounted but the kernel did not: count reset to 0.
    pub mount_counts_reset: usize,
    /// Writable layers mounted with a count of 0: unmounted.
    pub stray_mounts_unmounted: usize,
    /// Rows whose driver dir is missing. Not repaired here: data is gone.
    pub rows_without_dir: Vec<String>,
}

impl LayerStore {
    pub(super) fn recover(&self) -> Result<RecoveryReport> {
        let _guard = self.lock()?;
        self.db.restore_reserve();
        let mut report = RecoveryReport::default();
        let claimed: HashSet<String> = db::storage_ids(&self.conn())?.into_iter().collect();
        let on_disk: HashSet<String> = self.driver.list()?.into_iter().collect();
        for id in on_disk.difference(&claimed) {
            // A live process building this layer holds its marker: not ours to remove.
            if in_use(&self.tmp.join(format!("{id}{INFLIGHT}")))? {
                continue;
            }
            self.driver.remove(id)?;
            report.orphan_dirs_removed += 1;
        }
        report.orphan_tar_splits_removed = self.sweep_tar_splits(&claimed)?;
        report.rows_without_dir = claimed.difference(&on_disk).cloned().collect();
        for id in &report.rows_without_dir {
            tracing::error!(
                "layer storage {id} has a row but no directory under {}: its data is lost; \
                 remove the images and writable layers that use it (strata rmi -f, strata rm -f)",
                self.driver.home().display()
            );
        }
        report.tmp_entries_removed = clean_tmp(&self.tmp)?;
        // A live builder may have driver-private scratch (vfs' `dir/.tmp-<id>-*` copy and its
        // `ro/<id>` marker, overlay2's `.tmp/` dir and not-yet-valid `l/` link) that the
        // driver's cleanup cannot tell from litter: leave it to a later open.
        if live_builders(&self.tmp)? == 0 {
            if let Some(maintenance) = self.driver.maintenance() {
                maintenance.cleanup()?;
            }
        } else {
            tracing::debug!("layers are being built: driver cleanup postponed");
        }
        self.reconcile_mounts(&mut report)?;
        if report != RecoveryReport::default() {
            tracing::info!("store recovery at {}: {report:?}", self.root.display());
        }
        Ok(report)
    }

    /// Removes the records in `root/tar-split` of layers no row claims and no live process
    /// is building.
    fn sweep_tar_splits(&self, claimed: &HashSet<String>) -> Result<usize> {
        let dir = self.root.join(TAR_SPLIT_DIR);
        let mut removed = 0;
        for entry in std::fs::read_dir(&dir).ctx_path("listing", &dir)? {
            let path = entry.ctx_path("listing", &dir)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let id = name.strip_suffix(TAR_SPLIT_SUFFIX).unwrap_or(name);
            if claimed.contains(id) || in_use(&self.tmp.join(format!("{id}{INFLIGHT}")))? {
                continue;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("removing orphan {}", path.display()), e))
                }
                _ => removed += 1,
            }
        }
        Ok(removed)
    }

    /// Brings persisted mount counts in line with what the kernel has mounted.
    fn reconcile_mounts(&self, report: &mut RecoveryReport) -> Result<()> {
        let rws = db::rws(&self.conn())?; // not in the `for`: the guard would live through the loop
        for rw in rws {
            // A full-copy layer (vfs) is presented as its own directory: there is no kernel
            // mount to compare with, and `is_mounted` is always false, so its count is kept
            // as recorded.
            if !self.driver.dirs(&rw.storage_id).format.is_overlay() {
                continue;
            }
            let mounted = self.driver.is_mounted(&rw.storage_id)?;
            if rw.mount_count > 0 && !mounted {
                db::set_mount_count(&self.conn(), &rw.name, 0)?;
                report.mount_counts_reset += 1;
            } else if rw.mount_count == 0 && mounted {
                self.driver.unmount(&rw.storage_id)?;
                report.stray_mounts_unmounted += 1;
            }
        }
        Ok(())
    }
}
