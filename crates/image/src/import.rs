//! `import`: a root filesystem tarball becomes a one-layer image, like `docker import`.

use std::io::Read;

use strata_storage::layer_store::LayerStore;

use crate::changes::ConfigChange;
use crate::config::new_config;
use crate::error::Result;
use crate::reference::Reference;
use crate::store::{Image, ImageStore};

/// Applies `tar` as a base layer and makes an image of it, tagged `reference`. The layer's
/// diffID is the digest of the uncompressed tar, whatever its source (file or stdin).
pub fn import(
    layers: &LayerStore,
    images: &ImageStore,
    tar: &mut dyn Read,
    reference: Option<&Reference>,
    comment: Option<&str>,
) -> Result<Image> {
    import_with_changes(layers, images, tar, reference, comment, &[])
}

/// [`import`], with Dockerfile-style `changes` applied to the new image's config (as
/// `docker import --change`).
pub fn import_with_changes(
    layers: &LayerStore,
    images: &ImageStore,
    tar: &mut dyn Read,
    reference: Option<&Reference>,
    comment: Option<&str>,
    changes: &[ConfigChange],
) -> Result<Image> {
    let layer = layers.create_layer(None, tar)?;
    let result = new_config(
        std::slice::from_ref(&layer.diff_id),
        "strata import",
        comment,
    )
    .and_then(|config| config.with_changes(changes))
    .and_then(|config| {
        images.create_image(
            &config,
            Some(&layer.chain_id),
            reference.cloned().as_slice(),
        )
    });
    if result.is_err() {
        // A layer no image took is not kept; if another image shares it, this does nothing.
        if let Err(e) = layers.remove_if_unused(&layer.chain_id) {
            tracing::warn!("removing unused layer {}: {e}", layer.chain_id);
        }
    }
    layers.release_hold(&layer.chain_id); // the image references it now
    result
}
