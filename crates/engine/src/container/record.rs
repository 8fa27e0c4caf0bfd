//! A container's record (its row) and its directory: looked up, listed, read.

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use crate::error::IoContext;
use serde::Serialize;

use super::{store, ContainerConfig, Containers};
use crate::error::{Error, Result};

/// A container's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image ID (`sha256:...`).
    pub image: String,
    /// Its writable layer's name in the layer store (the container ID).
    pub rw_layer: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub state: State,
    pub pid: Option<i64>,
    pub exit_code: Option<i64>,
    /// Unix nanoseconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl Container {
    /// The first 12 hex digits, as Docker shows IDs.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Exited,
    /// Its layer or directory is gone (a crash, or data lost): only `rm` applies.
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
            State::Dead => "dead",
        }
    }
}

impl std::str::FromStr for State {
    type Err = Error;
    fn from_str(s: &str) -> Result<State> {
        Ok(match s {
            "created" => State::Created,
            "running" => State::Running,
            "exited" => State::Exited,
            "dead" => State::Dead,
            _ => {
                return Err(Error::Corrupt(format!(
                    "unknown container state {s:?} in the containers table"
                )))
            }
        })
    }
}

/// Which containers [`Containers::list`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Running,
    All,
}

impl Containers<'_> {
    /// `containers/`, created if missing.
    pub(crate) fn open(&self) -> Result<()> {
        self.prepare()?;
        self.recover()
    }

    /// The `containers` table and directory, without recovery (for `strata check`).
    pub(crate) fn prepare(&self) -> Result<()> {
        store::ensure_schema(&self.stores.db)?;
        let dir = self.containers_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .ctx_path("creating the containers directory", &dir)?;
        Ok(())
    }

    pub(super) fn containers_dir(&self) -> PathBuf {
        self.stores.layers.root().join("containers")
    }

    /// `containers/<id>/`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// A container by full ID, name, or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Container> {
        self.stores.db.read(|c| store::resolve(c, name_or_id))
    }
    /// Running containers, or all; newest first.
    pub fn list(&self, which: Listing) -> Result<Vec<Container>> {
        let list = self.stores.db.read(store::all)?;
        Ok(list
            .into_iter()
            .filter(|c| which == Listing::All || c.state == State::Running)
            .collect())
    }

    /// The container's `config.json` (a default one if a dead container lost it).
    pub fn config(&self, container: &Container) -> Result<ContainerConfig> {
        let path = self.dir(&container.id).join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Corrupt(format!(
                    "{}: {e}; remove the container (strata rm -f {})",
                    path.display(),
                    container.short_id()
                ))
            }),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && container.state == State::Dead =>
            {
                Ok(ContainerConfig::default())
            }
            // Removed (by a prune or rm in another process) since it was looked up.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && self.get(&container.id).is_err() =>
            {
                Err(Error::NoSuchContainer(format!(
                    "no such container: {} (it was removed meanwhile)",
                    container.short_id()
                )))
            }
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// IDs of the containers made from image `id`.
    pub(crate) fn of_image(&self, id: &str) -> Result<Vec<String>> {
        self.stores.db.read(|c| store::of_image(c, id))
    }
}

/// Now, in the unix nanoseconds records keep.
pub(crate) fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}
