//! Images on top of the layer store: Docker references (`name[:tag]`), image configs kept as
//! exact bytes (the image ID is their sha256), config blobs under `blobs/sha256/`, the images
//! and tags tables, and `import` of a root filesystem tarball as a one-layer image.
//!
//! Not here: layer content or mounts (crate `strata-storage`), or running anything.
//!
//! ```no_run
//! # use strata_storage::layer_store::LayerStore;
//! # use strata_image::{ImageStore, Reference};
//! let layers = LayerStore::open("/var/lib/strata".as_ref(), "overlay2", &[])?;
//! let layers = std::sync::Arc::new(layers);
//! let images = ImageStore::open(&layers)?;
//! let tar = std::fs::File::open("rootfs.tar")?;
//! let reference: Reference = "busybox:latest".parse()?;
//! let image = strata_image::import(&layers, &images, &mut &tar, Some(&reference), None)?;
//! println!("{}", image.id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod archive;
pub mod changes;
mod config;
mod error;
mod import;
mod reference;
mod store;

pub use changes::{parse_changes, ConfigChange};
pub use config::{new_config, ImageConfig};
pub use error::{Error, Result};
pub use import::{import, import_with_changes};
pub use reference::Reference;
pub use store::{Image, ImageStore, Removal, IMAGES};
