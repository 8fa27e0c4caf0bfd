//! The container verbs, one operation per file: `create`, `start` (the pipeline under
//! `start/`), `stop`/`kill`, `wait`, `rm`, `inspect`, `diff`/`export`, `cp`, `exec`,
//! `logs`, `pause`/`unpause`, `rename`, `top`; recovery after a crash at open.
//!
//! The life of a container (create, start, the monitor, exit, rm), with file and function
//! names, is in `docs/ARCHITECTURE.md` ("Life of `strata run`").

mod config;
pub mod copy;
mod create;
mod etc_files;
pub mod exec;
mod export;
pub(crate) mod init_layer;
mod inspect;
mod lock;
pub mod logs;
pub mod monitor;
mod pause;
mod record;
mod recover;
mod remove;
mod rename;
mod runtime_spec;
pub mod start;
mod stdio;
mod stop;
mod store;
mod top;
pub mod tty;
mod volumes;
mod wait;

pub use config::{parse_cpus, parse_size, parse_volume, ContainerConfig, NetworkMode, VolumeSpec};
pub use copy::PathStat;
pub use init_layer::init_tar;
pub use inspect::{ContainerDetails, ContainerPaths, MountPoint};
pub(crate) use lock::{creation_in_progress, CreationLock};
use record::now_nanos;
pub use record::{Container, Listing, State};
pub use remove::RemoveOptions;
pub use start::starter::{StartOptions, Started};
pub use strata_sys::signal::parse_signal;

use crate::Stores;

/// The container verbs, a view over the engine's stores.
#[derive(Clone, Copy)]
pub struct Containers<'e> {
    stores: &'e Stores,
}

impl<'e> Containers<'e> {
    pub(crate) fn new(stores: &'e Stores) -> Self {
        Containers { stores }
    }
}
