//! `rm`: a container's start torn down, its row and writable layer removed in one commit,
//! then its directory; with `-v`, its anonymous volumes.

use super::lock::CreationLock;
use super::start::teardown::Release;
use super::{parse_volume, start, store, Container, Containers, State};
use crate::error::{Error, Result};
use strata_storage::layer_store::ParentWhenUnused;

/// How `rm` treats a running container and the container's volumes.
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoveOptions {
    /// `-f`: kill a running container first.
    pub force: bool,
    /// `-v`: remove its anonymous volumes too (named ones stay, as in Docker).
    pub volumes: bool,
}

impl Containers<'_> {
    /// `rm`: refused for a running container unless `force`. Unmounts the writable layer,
    /// deletes the container's row and the layer's in one commit, then removes the layer's
    /// dir (the init layer stays, for the image's next container) and the container's; what
    /// an interrupted `rm` leaves is swept at the next open. `volumes` (`rm -v`): its
    /// anonymous volumes too (named ones stay, as in Docker).
    pub fn remove(&self, name_or_id: &str, options: &RemoveOptions) -> Result<()> {
        let RemoveOptions { force, volumes } = *options;
        let mut c = self.get(name_or_id)?;
        // Exited, its monitor still finishing (unmount, runtime cleanup) after recording the
        // exit that a `wait` answered: given a moment, since `rm` right after `wait` must
        // not find it "running".
        if matches!(c.state, State::Exited | State::Dead) && self.monitor_alive(&c.id) {
            if let Some(now) = self.wait_stopped(&c.id, std::time::Duration::from_secs(10))? {
                c = now;
            }
        }
        // An exited container's monitor was waited for above, and another process's probe
        // (prune, check) holds the lock only an instant: without `force`, only a starting
        // container's monitor means "running" (with it, a probe costs a harmless kill).
        let starting = force || c.state == State::Created;
        if c.state == State::Running || (starting && self.monitor_alive(&c.id)) {
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
        let dir = self.dir(&c.id);
        let monitor = start::monitor_lock_patiently(&dir)?;
        if monitor.is_none() && dir.is_dir() && self.get(&c.id).is_ok() {
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
        let removed = match self.get(&c.id) {
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
        let config = self.config(c).ok();
        match self.teardown_start_of(c, config.as_ref(), Release::AllMounts) {
            Ok(()) | Err(strata_storage::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // The row and its writable layer's in one commit; the layer's dir goes after it.
        self.stores.db.write(|tx| {
            store::delete(tx.sql(), &c.id)?;
            match self
                .stores
                .layers
                .remove_rw_in(tx, &c.rw_layer, ParentWhenUnused::Keep)
            {
                Ok(()) | Err(strata_storage::Error::NotFound(_)) => Ok(()),
                Err(e) => Err(Error::from(e)),
            }
        })?;
        let dir = self.dir(&c.id);
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
                let exists = self
                    .stores
                    .db
                    .read(|conn| store::get(conn, &c.id))?
                    .is_some();
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

    /// Removes the anonymous volumes among `specs` that no other container uses (`rm -v`).
    fn remove_anonymous_volumes(&self, specs: &[String]) {
        let volumes = self.volumes();
        for spec in specs {
            let Ok(v) = parse_volume(spec) else { continue };
            if volumes.is_anonymous(&v.source) {
                if let Err(e) = volumes.remove(&v.source, false) {
                    tracing::warn!("keeping anonymous volume {}: {e}", v.source);
                }
            }
        }
    }
}
