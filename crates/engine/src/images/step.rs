//! What a builder needs beyond the user-named verbs: an image made from a config it wrote
//! itself (a metadata-only build step), and a writable layer committed under a config it
//! finishes once the new layer's diffID is known (a RUN or COPY step). Images made here are
//! untagged; the builder tags the last one.

use serde_json::Value;
use strata_image::{Image, ImageConfig};
use strata_storage::Digest;

use super::{empty_tar_diff_id, Images};
use crate::error::{Error, Result};

impl Images<'_> {
    /// The config JSON of image `id` (name, ID or prefix), parsed.
    pub fn config_json(&self, id: &str) -> Result<Value> {
        let image = self.stores.images.resolve(id)?;
        let config = self.stores.images.config(&image.id)?;
        serde_json::from_slice(&config.bytes).map_err(|e| {
            Error::Corrupt(format!("the config of image {} is not JSON: {e}", image.id))
        })
    }

    /// Resolves an image by name, ID or prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        Ok(self.stores.images.resolve(name_or_id)?)
    }

    /// An untagged image of `config` on `top_layer` (`None`: no layers, as `FROM scratch`).
    pub fn create_from_config(&self, config: &Value, top_layer: Option<&Digest>) -> Result<Image> {
        let bytes = serde_json::to_vec(config)
            .map_err(|e| Error::Invalid(format!("serialising an image config: {e}")))?;
        let config = ImageConfig::from_bytes(bytes)?;
        Ok(self.stores.images.create_image(&config, top_layer, &[])?)
    }

    /// Commits writable layer `rw` (a container's, or one `layers().mount` made) onto
    /// `onto` (the parent image's top layer) as an untagged image whose config `finish`
    /// writes, given the new layer's diffID (`None`: no changes, no layer). The layer is
    /// copied, never tarred and untarred; on any failure it is removed again.
    pub fn commit_rw_with(
        &self,
        rw: &str,
        onto: Option<&Digest>,
        finish: impl FnOnce(Option<&Digest>) -> Result<Value>,
    ) -> Result<Image> {
        let layers = &self.stores.layers;
        let layer = layers.commit_rw_onto(rw, onto)?;
        let empty = layer.diff_id == empty_tar_diff_id();
        let result = (|| {
            let config = finish((!empty).then_some(&layer.diff_id))?;
            let top = if empty { onto } else { Some(&layer.chain_id) };
            self.create_from_config(&config, top)
        })();
        layers.release_hold(&layer.chain_id);
        if empty || result.is_err() {
            if let Err(e) = layers.remove_if_unused(&layer.chain_id) {
                tracing::warn!("removing unused layer {}: {e}", layer.chain_id);
            }
        }
        result
    }

    /// The store's root directory (a builder keeps its contexts and cache mounts below it).
    pub fn store_root(&self) -> &std::path::Path {
        &self.stores.options.root
    }
}
