//! `image inspect`: an image's record, its config as stored and where its top layer's
//! directories are. The front ends render Docker's shape from it (`strata_api::render`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_image::{Image, ImageConfig};
use strata_storage::DiffView;

use super::Images;
use crate::error::Result;

/// What `image inspect` reports.
#[derive(Clone, Debug)]
pub struct ImageDetails {
    pub image: Image,
    /// The config blob, its exact bytes kept: fields strata does not model are shown too.
    pub config: ImageConfig,
    /// The storage driver's name.
    pub driver: String,
    /// The top layer's directories by Docker's `GraphDriver.Data` keys (`UpperDir`, `Dir`,
    /// ...); `None` for an image without layers.
    pub layer_dirs: Option<BTreeMap<String, PathBuf>>,
}

impl Images<'_> {
    /// `image inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<ImageDetails> {
        let images = &self.stores.images;
        let image = images.resolve(name)?;
        let config = images.config(&image.id)?;
        let layer_dirs = self.layer_dirs(&image)?;
        Ok(ImageDetails {
            image,
            config,
            driver: self.stores.layers.driver().name().to_string(),
            layer_dirs,
        })
    }

    /// Where the image's top layer is, as Docker's `GraphDriver` shows it.
    fn layer_dirs(&self, image: &Image) -> Result<Option<BTreeMap<String, PathBuf>>> {
        let layers = &self.stores.layers;
        let Some(top) = &image.top_layer else {
            return Ok(None);
        };
        let layer = layers.layer(top)?;
        let parent = match &layer.parent {
            Some(p) => Some(layers.layer(p)?.storage_id),
            None => None,
        };
        let mut data = BTreeMap::new();
        match layers
            .driver()
            .diff_view(&layer.storage_id, parent.as_deref())?
        {
            DiffView::Overlay { upper, lowers, .. } => {
                if !lowers.is_empty() {
                    let lowers: Vec<String> =
                        lowers.iter().map(|p| p.display().to_string()).collect();
                    data.insert("LowerDir".into(), PathBuf::from(lowers.join(":")));
                }
                let dir = upper.parent().unwrap_or(&upper).to_path_buf();
                data.insert("MergedDir".into(), dir.join("merged"));
                data.insert("UpperDir".into(), upper);
                data.insert("WorkDir".into(), dir.join("work"));
            }
            DiffView::FullCopy { layer, .. } => {
                data.insert("Dir".into(), layer);
            }
        }
        Ok(Some(data))
    }
}
