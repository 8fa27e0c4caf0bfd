//! The store as a whole: `info`, `check` (and `--repair`) and `prune`.

mod check;
mod prune;

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::Stores;

pub use check::CheckReport;
pub use prune::PruneReport;

/// The whole-store verbs.
#[derive(Clone, Copy)]
pub struct System<'e> {
    stores: &'e Stores,
}

/// What `info` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    pub driver: String,
    pub driver_status: Vec<(String, String)>,
    pub root: PathBuf,
    pub images: usize,
    pub layers: usize,
    pub rw_layers: usize,
    pub rw_mounted: usize,
    pub kernel: String,
}

impl<'e> System<'e> {
    pub(crate) fn new(stores: &'e Stores) -> Self {
        System { stores }
    }

    /// `info`.
    pub fn info(&self) -> Result<Info> {
        let driver = self.stores.layers.driver();
        let rw = self.stores.layers.rw_layers()?;
        Ok(Info {
            driver: driver.name().to_string(),
            driver_status: driver.status(),
            root: self.stores.layers.root().to_path_buf(),
            images: self.stores.images.images()?.len(),
            layers: self.stores.layers.layers()?.len(),
            rw_layers: rw.len(),
            rw_mounted: rw.iter().filter(|l| l.mount_count > 0).count(),
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
        })
    }
}
