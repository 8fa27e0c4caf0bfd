//! Containers as records, without running anything yet: an image, a shared init layer, a
//! writable layer named by the container's ID, a row in the `containers` table and a
//! directory `containers/<id>/` (`config.json`; `hostname`, `hosts` and `resolv.conf` are
//! written there at each start).
//!
//! Creation order, so that a crash at any instant leaves nothing a later command believes
//! in: files in a staging dir `containers/.tmp-<id>`, then the layers, then the dir renamed
//! to `containers/<id>`, then the row, last. The creator holds `containers/.<id>.lock`
//! (`flock`) throughout; at open, recovery removes what an abandoned creation left (dirs and
//! writable layers of an ID with no row, whose lock nobody holds), and marks `dead` the rows
//! whose dir or layer is gone, for `rm` to clean. (The staging dir is not under the store's
//! `tmp/`: every open empties directories there unconditionally, which would race with a
//! creation in another process.)

mod config;
pub mod copy;
pub mod exec;
mod files;
pub(crate) mod init_layer;
mod inspect;
pub mod logs;
mod manage;
pub mod monitor;
pub(crate) mod names;
mod recover;
mod run;
mod spec;
pub mod start;
mod stop;
mod store;
pub mod tty;
mod volumes;
mod wait;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use serde::Serialize;
use strata_image::Image;
use strata_storage::error::IoContext;
use strata_storage::layer_store::ParentWhenUnused;
use strata_storage::Change;

pub use config::{parse_cpus, parse_size, parse_volume, ContainerConfig, NetworkMode, VolumeSpec};
pub use copy::PathStat;
pub use init_layer::init_tar;
pub use start::starter::{StartOptions, Started};
pub use strata_sys::signal::parse_signal;

use crate::error::{Error, Result};
use crate::Engine;
use start::teardown::Release;

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

/// Every container, read on `conn` (inside a store transaction, where `Engine::containers`
/// would wait for the connection it holds).
pub(crate) fn all_on(conn: &rusqlite::Connection) -> Result<Vec<Container>> {
    store::all(conn)
}

/// Whether `s` has the shape of a container ID.
pub(crate) fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Engine {
    /// `containers/`, created if missing.
    pub(crate) fn open_containers(&self) -> Result<()> {
        self.prepare_containers()?;
        self.recover_containers()
    }

    /// The `containers` table and directory, without recovery (for `strata check`).
    pub(crate) fn prepare_containers(&self) -> Result<()> {
        store::ensure_schema(&self.db)?;
        let dir = self.containers_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .ctx_path("creating the containers directory", &dir)?;
        Ok(())
    }

    fn containers_dir(&self) -> PathBuf {
        self.layers.root().join("containers")
    }

    /// `containers/<id>/`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// `create`: a container of `image` (name, ID or prefix) with `config` (validated, then
    /// completed from the image's config), named `name` or a generated name.
    pub fn create_container(
        &self,
        image: &str,
        mut config: ContainerConfig,
        name: Option<&str>,
    ) -> Result<Container> {
        config.validate()?;
        self.runtime_for(&config)?;
        for v in &config.volumes {
            let v = parse_volume(v)?;
            if v.source.starts_with('/') {
                spec::check_bind_source(&v.source)?;
            }
        }
        let generated_name = name.is_none();
        let name = match name {
            Some(n) => {
                let n = names::validate(n.strip_prefix('/').unwrap_or(n))?;
                if let Some(other) = self.db.read(|c| store::by_name(c, n))? {
                    return Err(store::name_taken(n, &other));
                }
                n.to_string()
            }
            None => self.generate_name()?,
        };
        let images = &self.images;
        let img = images.resolve(image)?;
        let image_config = images.config(&img.id)?;
        if config.image.is_empty() {
            config.image = image.to_string();
        }
        config.merge_image(image_config.parsed.config().as_ref());
        let image_volumes = image_config
            .parsed
            .config()
            .as_ref()
            .and_then(|c| c.volumes().clone())
            .unwrap_or_default();
        let anonymous = self.name_anonymous_volumes(&mut config, &image_volumes)?;
        let id = strata_sys::id::random_hex(32, "a container ID")?;
        let lock = CreationLock::acquire(&self.containers_dir(), &id)?;
        let made = match self.build_container(&id, &name, generated_name, &img, &config) {
            Ok(made) => made,
            Err(e) => {
                drop(lock);
                for v in &anonymous {
                    let _ = self.remove_volume(v, true);
                }
                return Err(e);
            }
        };
        // Kept until this process starts it (or ends): until then another process's prune
        // would take the new container for a stopped one.
        self.creations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, lock));
        Ok(made)
    }

    /// Lets go of the creation lock of `id` kept since [`Engine::create_container`].
    pub(crate) fn end_creation(&self, id: &str) {
        let mut kept = self.creations.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(kept_id, _)| kept_id != id);
    }

    /// Gives each `-v /path` (no source) and each of the image's `VOLUME`s that no `-v`
    /// covers an anonymous volume of a random name, as Docker does: the specs become
    /// `NAME:/path` and the volumes exist (empty, filled from the image at first start).
    fn name_anonymous_volumes(
        &self,
        config: &mut ContainerConfig,
        image_volumes: &[String],
    ) -> Result<Vec<String>> {
        let mut specs = Vec::new();
        for spec in &config.volumes {
            let v = parse_volume(spec)?;
            if v.source.is_empty() {
                specs.push((None, v));
            } else {
                specs.push((Some(spec.clone()), v));
            }
        }
        for path in image_volumes {
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            if !specs
                .iter()
                .any(|(_, v)| v.destination.trim_end_matches('/') == path)
                && !config
                    .tmpfs
                    .iter()
                    .any(|t| t.split(':').next() == Some(path))
            {
                specs.push((None, parse_volume(path)?));
            }
        }
        let mut made: Vec<String> = Vec::new();
        let mut volumes = Vec::new();
        for (spec, v) in specs {
            match spec {
                Some(spec) => volumes.push(spec),
                None => {
                    let name = strata_sys::id::random_hex(32, "a volume name")?;
                    let created = self.make_volume(&name, Default::default(), true);
                    if let Err(e) = created {
                        for v in &made {
                            let _ = self.remove_volume(v, true);
                        }
                        return Err(e);
                    }
                    let mode = if v.read_only { ":ro" } else { "" };
                    volumes.push(format!("{name}:{}{mode}", v.destination));
                    made.push(name);
                }
            }
        }
        config.volumes = volumes;
        Ok(made)
    }

    fn generate_name(&self) -> Result<String> {
        for attempt in 0..16 {
            let name = names::generate_container_name(
                strata_sys::id::random_u64("a container name")?,
                attempt,
            );
            if self.db.read(|c| store::by_name(c, &name))?.is_none() {
                return Ok(name);
            }
        }
        Err(Error::Conflict(
            "could not generate a free container name; pass --name".into(),
        ))
    }

    /// The steps of a creation, undone in reverse on any failure.
    fn build_container(
        &self,
        id: &str,
        name: &str,
        generated_name: bool,
        image: &Image,
        config: &ContainerConfig,
    ) -> Result<Container> {
        let mut undo = Undo::new(self, id);
        let staging = self.containers_dir().join(format!(".tmp-{id}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .ctx_path("creating container directory", &staging)?;
        undo.staging = Some(staging.clone());
        let json = serde_json::to_vec_pretty(config).expect("a config serialises");
        let unsynced = strata_sys::atomic::Durability::Unsynced;
        strata_sys::atomic::write_new(&staging, "config.json", &json, unsynced)?;
        files::sync_staged(&staging)?;
        let init = init_layer::ensure(&self.layers, image.top_layer.as_ref())?;
        let made = self
            .layers
            .create_rw(id, Some(&init.chain_id), Some(&image.id));
        self.layers.release_hold(&init.chain_id); // referenced by the writable layer now
        made?;
        undo.rw = true;
        let dir = self.container_dir(id);
        std::fs::rename(&staging, &dir)
            .ctx(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
        undo.staging = Some(dir);
        strata_storage::fs::sync_dir(&self.containers_dir())?;
        let mut container = Container {
            id: id.to_string(),
            name: name.to_string(),
            image: image.id.clone(),
            rw_layer: id.to_string(),
            created: now_nanos(),
            state: State::Created,
            pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
        };
        self.db.write(|tx| {
            if generated_name {
                container.name = store::free_name(tx.sql(), &container.name, |attempt| {
                    Ok(names::generate_container_name(
                        strata_sys::id::random_u64("a container name")?,
                        attempt,
                    ))
                })?;
            }
            store::insert(tx.sql(), &container)
        })?;
        undo.done();
        Ok(container)
    }

    /// A container by full ID, name, or unique ID prefix.
    pub fn container(&self, name_or_id: &str) -> Result<Container> {
        self.db.read(|c| store::resolve(c, name_or_id))
    }

    /// Running containers, or all with `all`; newest first.
    pub fn containers(&self, all: bool) -> Result<Vec<Container>> {
        let list = self.db.read(store::all)?;
        Ok(list
            .into_iter()
            .filter(|c| all || c.state == State::Running)
            .collect())
    }

    /// The container's `config.json` (a default one if a dead container lost it).
    pub fn container_config(&self, container: &Container) -> Result<ContainerConfig> {
        let path = self.container_dir(&container.id).join("config.json");
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
            Err(e) => {
                Err(strata_storage::Error::io(format!("reading {}", path.display()), e).into())
            }
        }
    }

    /// `rm`: refused for a running container unless `force`. Unmounts the writable layer,
    /// deletes the container's row and the layer's in one commit, then removes the layer's
    /// dir (the init layer stays, for the image's next container) and the container's; what
    /// an interrupted `rm` leaves is swept at the next open. `volumes` (`rm -v`): its
    /// anonymous volumes too (named ones stay, as in Docker).
    pub fn remove_container(&self, name_or_id: &str, force: bool, volumes: bool) -> Result<()> {
        let mut c = self.container(name_or_id)?;
        // Exited, its monitor still finishing (unmount, runtime cleanup) after recording the
        // exit that a `wait` answered: given a moment, since `rm` right after `wait` must
        // not find it "running".
        if matches!(c.state, State::Exited | State::Dead) && self.monitor_alive(&c.id) {
            if let Some(now) = self.wait_stopped(&c.id, std::time::Duration::from_secs(10))? {
                c = now;
            }
        }
        if c.state == State::Running || self.monitor_alive(&c.id) {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container /{} ({}): it is running; stop it first or use rm -f",
                    c.name,
                    c.short_id()
                )));
            }
            self.kill_and_wait(&c)?;
        }
        // Held through the removal: a `start` in another process (its monitor takes this
        // lock first) waits, then finds the container gone, instead of running it on a
        // writable layer being removed.
        let dir = self.container_dir(&c.id);
        let monitor = start::monitor_lock(&dir, false)?;
        if monitor.is_none() && dir.is_dir() && self.container(&c.id).is_ok() {
            return Err(Error::Conflict(format!(
                "cannot remove container /{} ({}): it is being started; stop it first or use rm -f",
                c.name,
                c.short_id()
            )));
        }
        self.end_creation(&c.id);
        let Some(creation) = self.removal_lock(&c)? else {
            return Ok(()); // another process removed it meanwhile
        };
        // The monitor of a `--rm` container may have removed it meanwhile.
        let removed = match self.container(&c.id) {
            Ok(c) => self.remove_stopped(&c, volumes),
            Err(Error::NoSuchContainer(_)) => Ok(()),
            Err(e) => Err(e),
        };
        drop((creation, monitor));
        removed
    }

    /// Removes a container that no process runs: its start torn down (runtime state and
    /// cgroups, hooks, every mount of its writable layer), then the row, then the layer and the directory; then, with
    /// `anonymous_volumes`, its anonymous volumes. Rows are the truth: once the row is gone,
    /// a crash leaves only what recovery at the next open sweeps (a writable layer and
    /// directory of an ID with no row), never a row whose layer is half removed. `rm` holds
    /// the container's creation lock throughout, so that sweep leaves a removal in progress
    /// alone (a `--rm` monitor does not take it: the `run` that started it may still hold
    /// it, waiting for the monitor).
    pub(crate) fn remove_stopped(&self, c: &Container, anonymous_volumes: bool) -> Result<()> {
        let config = self.container_config(c).ok();
        match self.teardown_start_of(c, config.as_ref(), Release::AllMounts) {
            Ok(()) | Err(strata_storage::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // The row and its writable layer's in one commit; the layer's dir goes after it.
        self.db.write(|tx| {
            store::delete(tx.sql(), &c.id)?;
            match self
                .layers
                .remove_rw_in(tx, &c.rw_layer, ParentWhenUnused::Keep)
            {
                Ok(()) | Err(strata_storage::Error::NotFound(_)) => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        })?;
        let dir = self.container_dir(&c.id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("removing {} (swept at the next open): {e}", dir.display())
            }
            _ => {}
        }
        if let (Some(config), true) = (config, anonymous_volumes) {
            self.remove_anonymous_volumes(&config.volumes);
        }
        Ok(())
    }

    /// The creation lock of `c`, taken for its removal; `None` if its row went meanwhile
    /// (another process removed it while we waited).
    fn removal_lock(&self, c: &Container) -> Result<Option<CreationLock>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(lock) = CreationLock::try_take(&self.containers_dir(), &c.id)? {
                let exists = self.db.read(|conn| store::get(conn, &c.id))?.is_some();
                return Ok(exists.then_some(lock));
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Conflict(format!(
                    "container {} is being removed by another strata process that does not finish; retry",
                    c.short_id()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// `diff`: the container's changes against its image (the init layer's entries are
    /// below the writable layer, so they never show).
    pub fn container_changes(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let c = self.container(name_or_id)?;
        Ok(self.layers.changes_rw(&c.rw_layer)?)
    }

    /// IDs of the containers made from image `id`.
    pub(crate) fn containers_of_image(&self, id: &str) -> Result<Vec<String>> {
        self.db.read(|c| store::of_image(c, id))
    }

    /// See the module doc: sweeps abandoned creations, marks rows without data `dead`.
    pub(crate) fn recover_containers(&self) -> Result<()> {
        let dir = self.containers_dir();
        let rows = self.db.read(store::all)?;
        let ids: BTreeSet<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        let mut suspects = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).ctx_path("listing", &dir)? {
            let name = entry.ctx_path("listing", &dir)?.file_name();
            let name = name.to_string_lossy();
            let id = name
                .strip_prefix(".tmp-")
                .or_else(|| name.strip_prefix('.').and_then(|n| n.strip_suffix(".lock")))
                .unwrap_or(&name);
            if is_id(id) && !ids.contains(id) {
                suspects.insert(id.to_string());
            }
        }
        for rw in self.layers.rw_layers()? {
            if is_id(&rw.name) && !ids.contains(rw.name.as_str()) {
                suspects.insert(rw.name);
            }
        }
        for id in suspects {
            self.sweep_abandoned(&id)?;
        }
        for c in rows.iter().filter(|c| c.state == State::Running) {
            self.recover_running(c)?;
        }
        for c in rows.iter().filter(|c| c.state != State::Dead) {
            let lost_dir = !self.container_dir(&c.id).is_dir();
            let lost_layer = self.layers.rw_layer(&c.rw_layer).is_err();
            if lost_dir || lost_layer {
                tracing::error!(
                    "container {} ({}) lost its {}: marked dead; remove it with strata rm",
                    c.name,
                    c.short_id(),
                    if lost_dir {
                        "directory"
                    } else {
                        "writable layer"
                    }
                );
                self.db
                    .write(|tx| store::set_state(tx.sql(), &c.id, State::Dead))?;
            }
        }
        Ok(())
    }

    /// Removes what an abandoned creation of `id` left, unless its creator is alive.
    fn sweep_abandoned(&self, id: &str) -> Result<()> {
        let Some(_lock) = CreationLock::try_take(&self.containers_dir(), id)? else {
            return Ok(()); // being created right now
        };
        if self.db.read(|c| store::get(c, id))?.is_some() {
            return Ok(()); // finished between our listing and the lock
        }
        tracing::info!("removing the leftovers of an interrupted creation of container {id}");
        match self.layers.remove_rw_with(id, true, ParentWhenUnused::Keep) {
            Ok(()) | Err(strata_storage::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        for dir in [
            self.container_dir(id),
            self.containers_dir().join(format!(".tmp-{id}")),
        ] {
            if dir.exists() {
                strata_storage::fs::remove_tree(&dir)?;
            }
        }
        Ok(())
    }
}

/// What a creation made so far, removed on drop unless [`Undo::done`].
struct Undo<'a> {
    engine: &'a Engine,
    id: &'a str,
    staging: Option<PathBuf>,
    rw: bool,
}

impl<'a> Undo<'a> {
    fn new(engine: &'a Engine, id: &'a str) -> Self {
        Undo {
            engine,
            id,
            staging: None,
            rw: false,
        }
    }

    fn done(mut self) {
        self.staging = None;
        self.rw = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let layers = &self.engine.layers;
        if let Some(dir) = &self.staging {
            if let Err(e) = strata_storage::fs::remove_tree(dir) {
                tracing::warn!("removing {} after a failed create: {e}", dir.display());
            }
        }
        // The init layer stays, unused or not: it is the image's, for its next container.
        let undone = if self.rw {
            layers.remove_rw_with(self.id, true, ParentWhenUnused::Keep)
        } else {
            Ok(())
        };
        if let Err(e) = undone {
            tracing::warn!(
                "undoing the layers of container {} (swept at next open): {e}",
                self.id
            );
        }
    }
}

/// `containers/.<id>.lock`, `flock`ed by whoever creates or sweeps container `id`: the kernel
/// drops it when that process dies, so a lock nobody holds means the creation was abandoned.
pub(crate) struct CreationLock {
    path: PathBuf,
    _file: File,
}

impl CreationLock {
    /// For a creator: the lock of a fresh ID, taken before anything of the container exists.
    fn acquire(dir: &Path, id: &str) -> Result<CreationLock> {
        let path = dir.join(format!(".{id}.lock"));
        // Another process's start-up sweep can take and unlink the file between our create
        // and our lock (it looks abandoned for that instant). Nothing of ours existed yet, so
        // making it again is safe; the sweep does not come back for the same name.
        for _ in 0..8 {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            let file = match file {
                Ok(file) => file,
                // The sweep still holds the name: it is about to unlink it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                Err(e) => {
                    return Err(strata_storage::Error::io(
                        format!("creating the creation lock {}", path.display()),
                        e,
                    )
                    .into())
                }
            };
            flock(&file, FlockOperation::LockExclusive).ctx_path("locking", &path)?;
            if rustix::fs::fstat(&file).ctx_path("stat", &path)?.st_nlink > 0 {
                return Ok(CreationLock { path, _file: file });
            }
        }
        Err(Error::Conflict(format!(
            "container creation lock {} kept being swept by other strata processes; retry",
            path.display()
        )))
    }

    /// For a sweep: the lock, or `None` if a live process holds it.
    fn try_take(dir: &Path, id: &str) -> Result<Option<CreationLock>> {
        let path = dir.join(format!(".{id}.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .ctx_path("opening the creation lock", &path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(CreationLock { path, _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(strata_storage::Error::io(
                format!("locking {}", path.display()),
                e.into(),
            )
            .into()),
        }
    }
}

impl Drop for CreationLock {
    fn drop(&mut self) {
        // Unlinked before the file closes (which unlocks): never seen unlocked and linked.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}
