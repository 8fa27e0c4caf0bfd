//! The operations users name (`import`, `run`, `cp`, `volume rm`, `check`, ...), composed
//! from the layer, image, container and volume stores. Both front ends call them, the CLI
//! (crate `strata`) and the Docker API server (crate `strata-api`), so behaviour and
//! messages are the same in both.
//!
//! [`Engine`] is a thin facade: it opens the stores once and hands out one service per kind
//! of object, [`Engine::images`], [`Engine::containers`], [`Engine::volumes`],
//! [`Engine::layers`] (the writable layers `strata mount` makes) and [`Engine::system`]
//! (the store as a whole). A service is a borrowing view (`Containers<'e>`) over the one
//! shared `Stores`, not an owned object: making one costs nothing, no service opens or
//! holds anything of its own, and the daemon shares one `Arc<Engine>` across requests
//! without a second layer of `Arc`s. Services depend one way only: system on the others;
//! images on containers (`rmi` and `commit` ask which containers use an image); containers
//! on volumes and layers; volumes and layers on nothing but the stores. Volumes learn which
//! containers use a volume through a function the container side passes in.
//!
//! Not here: argument parsing and output formatting (crate `strata`), Docker's JSON shapes
//! (`strata_api::render`), storage internals.

pub mod container;
pub mod daemon;
mod error;
pub mod images;
pub mod layers;
mod names;
pub mod system;
pub mod volumes;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use strata_image::ImageStore;
use strata_meta::Db;
use strata_storage::layer_store::{self, LayerStore};

pub use container::{
    Container, ContainerConfig, ContainerDetails, Containers, Listing, NetworkMode, RemoveOptions,
    State,
};
pub use error::{Error, Result};
pub use images::{empty_tar_diff_id, CommitOptions, HistoryRow, ImageDetails, Images};
pub use layers::{GraphDriver, LayerDetails, Layers, Mounted, RwSummary};
pub use strata_storage::layer_store::Problem;
pub use system::{CheckReport, Info, PruneReport, System};
pub use volumes::{Volume, VolumePrune, Volumes};

/// Where the store is and which driver to use.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub root: PathBuf,
    /// `None`: the driver the store was created with, else `overlay2`.
    pub driver: Option<String>,
    pub driver_options: Vec<String>,
}

pub const DEFAULT_DRIVER: &str = "overlay2";

/// The engine: its stores, opened once, and the services over them.
pub struct Engine {
    stores: Stores,
}

/// What every service works on: the stores, opened once by [`Engine::open`].
pub(crate) struct Stores {
    /// The metadata database the stores share, for transactions that span them.
    db: Arc<Db>,
    layers: Arc<LayerStore>,
    images: ImageStore,
    /// How it was opened, for the monitors it spawns.
    options: EngineOptions,
    /// Creation locks of containers this process made and has not started yet: `prune` in
    /// another process leaves them alone (a `run` is create, then start).
    creations: Mutex<Vec<(String, container::CreationLock)>>,
}

impl Engine {
    /// Opens the store at `options.root`, recovering from any crash first.
    pub fn open(options: &EngineOptions) -> Result<Engine> {
        let layers =
            LayerStore::open(&options.root, &driver_of(options)?, &options.driver_options)?;
        let engine = Engine::assemble(layers, options)?;
        let images = &engine.stores.images;
        // A config blob is written in its image's transaction and removed after an rmi's
        // commit: a kill between leaves a blob of no image. Looked for without the lock;
        // removed (after looking again) under it.
        if !images.orphan_blobs()?.is_empty() {
            let n = images.remove_orphan_blobs()?;
            tracing::info!("store recovery: {n} config blobs of no image removed");
        }
        engine.containers().open()?;
        Ok(engine)
    }

    /// Opens the store without the recovery sweeps of [`Engine::open`]: for `check`, which
    /// reports what a crash left instead of finding it already tidied, and for a container's
    /// monitor, whose starter has just opened (and recovered) the store; sweeping again
    /// would only delay the container's start.
    pub fn open_unrecovered(options: &EngineOptions) -> Result<Engine> {
        let layers = LayerStore::open_unrecovered(
            &options.root,
            &driver_of(options)?,
            &options.driver_options,
        )?;
        let engine = Engine::assemble(layers, options)?;
        engine.containers().prepare()?;
        Ok(engine)
    }

    /// The engine on an opened layer store: the other stores on its database, their tables
    /// created on first use.
    fn assemble(layers: LayerStore, options: &EngineOptions) -> Result<Engine> {
        let layers = Arc::new(layers);
        let images = ImageStore::open(&layers)?;
        Ok(Engine {
            stores: Stores {
                db: layers.db().clone(),
                layers,
                images,
                options: options.clone(),
                creations: Default::default(),
            },
        })
    }

    /// `import`, `load`, `save`, `images`, `tag`, `history`, `image inspect`, `rmi`, `commit`.
    pub fn images(&self) -> Images<'_> {
        Images::new(&self.stores)
    }

    /// `create`, `start`, `stop`, `rm`, `inspect`, `cp`, `exec`, `logs`, ... of containers.
    pub fn containers(&self) -> Containers<'_> {
        Containers::new(&self.stores)
    }

    /// `volume create`, `ls`, `inspect`, `rm`, `prune`.
    pub fn volumes(&self) -> Volumes<'_> {
        self.containers().volumes()
    }

    /// `mount`, `umount`, `diff`, `rm`, `layers`, `inspect` of writable layers.
    pub fn layers(&self) -> Layers<'_> {
        Layers::new(&self.stores)
    }

    /// `info`, `check` (and `--repair`), `prune`.
    pub fn system(&self) -> System<'_> {
        System::new(&self.stores)
    }
}

/// The driver to open: the one asked for, else the one the store was created with.
fn driver_of(options: &EngineOptions) -> Result<String> {
    Ok(match &options.driver {
        Some(d) => d.clone(),
        None => {
            layer_store::recorded_driver(&options.root)?.unwrap_or_else(|| DEFAULT_DRIVER.into())
        }
    })
}
