//! The image verbs: `import`, `pull`, `load`, `save`, `images`, `tag`, `history`, `image inspect`,
//! `rmi` and `commit`, a view over the engine's stores. Each verb past the simplest has a
//! file of its own.

mod build_cache;
mod commit;
mod history;
mod inspect;
mod pull;
mod push;
mod remove;
mod step;

use std::io::{Read, Write};

use strata_image::archive::{LoadSource, Progress, SaveCompression, SaveFormat};
use strata_image::{Image, Reference};

use crate::error::Result;
use crate::Stores;

pub use build_cache::{CachePrune, BUILD_CACHE};
pub use commit::{empty_tar_diff_id, CommitOptions};
pub use history::HistoryRow;
pub use inspect::ImageDetails;
pub use pull::{short_id, PullEvent, PullOptions, Pulled};
pub use push::{PushEvent, Pushed};

/// The image verbs.
#[derive(Clone, Copy)]
pub struct Images<'e> {
    stores: &'e Stores,
}

impl<'e> Images<'e> {
    pub(crate) fn new(stores: &'e Stores) -> Self {
        Images { stores }
    }

    /// `import`: a rootfs tarball (plain, gzip, zstd) as a one-layer image, with
    /// Dockerfile-style `changes` (`CMD ["sh"]`, `ENV A=b`, ...) applied to its config.
    /// Changes are checked before the tarball is read.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        message: Option<&str>,
        changes: &[String],
    ) -> Result<Image> {
        let reference = reference.map(str::parse::<Reference>).transpose()?;
        let changes = strata_image::parse_changes(changes)?;
        let images = &self.stores.images;
        Ok(strata_image::import_with_changes(
            &self.stores.layers,
            images,
            tar,
            reference.as_ref(),
            message,
            &changes,
        )?)
    }

    /// `load`: every image in a docker-archive or OCI layout; the images loaded, each with
    /// the tags the archive gave it.
    pub fn load(
        &self,
        source: LoadSource<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Image>> {
        let images = &self.stores.images;
        Ok(strata_image::archive::load(
            &self.stores.layers,
            images,
            source,
            progress,
        )?)
    }

    /// `save`: `names` (tags or IDs) as a docker-archive or OCI layout written to `out`
    /// (unused for [`SaveFormat::OciDir`], which names its directory).
    pub fn save(
        &self,
        names: &[String],
        format: &SaveFormat,
        compression: SaveCompression,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let images = &self.stores.images;
        Ok(strata_image::archive::save(
            &self.stores.layers,
            images,
            names,
            format,
            compression,
            out,
            progress,
        )?)
    }

    /// `images`: every image.
    pub fn list(&self) -> Result<Vec<Image>> {
        Ok(self.stores.images.images()?)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let reference: Reference = target.parse()?;
        Ok(self.stores.images.tag(source, &reference)?)
    }
}
