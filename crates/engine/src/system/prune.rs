//! `prune`: stopped containers (created, exited, dead), then images with no tag that no
//! container uses, then layers nothing references (left by removed images or by imports
//! killed before their image was recorded).

use serde::Serialize;

use super::System;
use crate::container::{Containers, Listing, RemoveOptions, State};
use crate::error::{Error, Result};

/// What `prune` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub containers: Vec<String>,
    /// Lines as `rmi` prints them.
    pub images: Vec<String>,
    /// ChainIDs of the layers removed.
    pub layers: Vec<String>,
    /// Disk of the containers' writable layers plus the tar size of the layers removed.
    pub reclaimed: u64,
}

impl System<'_> {
    /// `prune`: stopped containers (created, exited, dead), then images with no tag that no
    /// container uses, then layers nothing references (left by removed images or by imports
    /// killed before their image was recorded).
    pub fn prune(&self) -> Result<PruneReport> {
        let containers = Containers::new(self.stores);
        let mut report = PruneReport::default();
        for c in containers.list(Listing::All)? {
            if !matches!(c.state, State::Created | State::Exited | State::Dead) {
                continue;
            }
            // Being created, or created and about to be started (`run`), by another process.
            let dir = self.stores.layers.root().join("containers");
            if crate::container::creation_in_progress(&dir, &c.id) {
                continue;
            }
            let usage = self.rw_usage(&c.rw_layer);
            match containers.remove(&c.id, &RemoveOptions::default()) {
                Ok(()) => {}
                // Started or removed by another process since the listing: not ours to prune.
                Err(Error::Conflict(_) | Error::NotFound(_) | Error::NoSuchContainer(_)) => {
                    continue
                }
                Err(e) => return Err(e),
            }
            report.reclaimed += usage;
            report.containers.push(c.id);
        }
        let images = &self.stores.images;
        for image in images.images()? {
            if !image.tags.is_empty() || !containers.of_image(&image.id)?.is_empty() {
                continue;
            }
            match images.remove(&image.id, false) {
                Ok(lines) => report.images.extend(lines),
                // Still used by a writable layer (`strata mount IMAGE`): not dangling.
                Err(strata_image::Error::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Removing a layer releases its parent, which may then be unused in turn.
        loop {
            let unused: Vec<_> = self
                .stores
                .layers
                .layers()?
                .into_iter()
                .filter(|l| l.refs == 0)
                .collect();
            if unused.is_empty() {
                break;
            }
            let mut removed_any = false;
            for layer in unused {
                if self.stores.layers.remove_if_unused(&layer.chain_id)? {
                    report.reclaimed += layer.size;
                    report.layers.push(layer.chain_id.to_string());
                    removed_any = true;
                }
            }
            if !removed_any {
                break;
            }
        }
        Ok(report)
    }

    /// Disk used by writable layer `name`'s own dir (0 if it cannot be measured).
    fn rw_usage(&self, name: &str) -> u64 {
        let Ok(rw) = self.stores.layers.rw_layer(name) else {
            return 0;
        };
        self.stores
            .layers
            .driver()
            .usage(&rw.storage_id)
            .map(|u| u.bytes)
            .unwrap_or(0)
    }
}
