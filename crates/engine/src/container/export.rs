//! The container's filesystem: `diff` (its changes against its image) and `export` (its
//! merged tree as a tar).

use std::io::Write;

use strata_storage::{Change, DiffView};

use super::Containers;
use crate::error::Result;

impl Containers<'_> {
    /// `diff`: the container's changes against its image (the init layer's entries are
    /// below the writable layer, so they never show).
    pub fn changes(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let c = self.get(name_or_id)?;
        Ok(self.stores.layers.changes_rw(&c.rw_layer)?)
    }

    /// `export NAME`: the merged filesystem of writable layer `name` as an uncompressed tar
    /// (no whiteouts: the overlay presents the merged view), like `docker export`. The layer
    /// is mounted for the walk (one more reference if it already is) and released after.
    /// A container's name, ID or ID prefix stands for its writable layer.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let layer = self.get(name).map(|c| c.rw_layer);
        let name = layer.as_deref().unwrap_or(name);
        let merged = self.stores.layers.mount_rw(name)?;
        // The merged view is a full tree: walked as a layer with no parent, every entry is
        // written, fd-relative and without following symlinks.
        let view = DiffView::FullCopy {
            layer: merged,
            parent: None,
        };
        let written = strata_storage::archive::export(&view, out);
        let released = self.stores.layers.unmount_rw(name, false);
        if let (Err(_), Err(e)) = (&written, &released) {
            tracing::warn!("unmounting writable layer {name} after a failed export: {e}");
        }
        written?;
        Ok(released?)
    }
}
