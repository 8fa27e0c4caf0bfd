//! Recovery of a container whose monitor died: run at open ([`Containers::recover`])
//! and by `check --repair`.

use super::start::hooks::Hooks;
use super::start::monitor_lock;
use super::start::teardown::Release;
use std::collections::BTreeSet;

use crate::error::IoContext;
use strata_storage::layer_store::ParentWhenUnused;

use super::lock::CreationLock;
use super::{now_nanos, store, Container, Containers, State};
use crate::error::Result;
use crate::names::is_id;

impl Containers<'_> {
    /// At open: a `running` container whose monitor is gone is killed if its process
    /// survived (137), else recorded with 255 (the code is lost); its start is torn down
    /// (runtime state, hooks, mount), so the record is true and `rm` has nothing extra.
    pub(crate) fn recover_running(&self, c: &Container) -> Result<()> {
        let Some(_lock) = monitor_lock(&self.dir(&c.id), false)? else {
            return Ok(()); // its monitor is alive
        };
        let Some(now) = self.stores.db.read(|conn| store::get(conn, &c.id))? else {
            return Ok(());
        };
        if now.state != State::Running {
            return Ok(()); // the monitor finished between our listing and the lock
        }
        tracing::warn!(
            "the monitor of container {} ({}) is gone: recording it as exited",
            c.name,
            c.short_id()
        );
        let config = self.config(c)?;
        let runtime = self.runtime_for(&config).ok();
        let mut code = 255;
        if let Some(runtime) = &runtime {
            if let Ok(state) = runtime.state(&c.id) {
                if state.status == strata_runtime::Status::Running {
                    code = 137;
                }
            }
        }
        let hooks = Hooks::for_container(&config);
        let torn_down = self.teardown_start(c, runtime.as_ref(), Some(&hooks), Release::ThisStart);
        if let Err(e) = torn_down {
            tracing::warn!("unmounting container {}: {e}", c.short_id());
        }
        self.stores
            .db
            .write(|tx| store::set_exited(tx.sql(), &c.id, code, now_nanos()))
    }
}

impl Containers<'_> {
    /// See the module doc: sweeps abandoned creations, marks rows without data `dead`.
    pub(crate) fn recover(&self) -> Result<()> {
        let dir = self.containers_dir();
        let rows = self.stores.db.read(store::all)?;
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
        for rw in self.stores.layers.rw_layers()? {
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
            let lost_dir = !self.dir(&c.id).is_dir();
            let lost_layer = self.stores.layers.rw_layer(&c.rw_layer).is_err();
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
                self.stores
                    .db
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
        if self.stores.db.read(|c| store::get(c, id))?.is_some() {
            return Ok(()); // finished between our listing and the lock
        }
        tracing::info!("removing the leftovers of an interrupted creation of container {id}");
        match self
            .stores
            .layers
            .remove_rw_with(id, true, ParentWhenUnused::Keep)
        {
            Ok(()) | Err(strata_storage::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        for dir in [
            self.dir(id),
            self.containers_dir().join(format!(".tmp-{id}")),
        ] {
            // A process that looked the container up before its row went (a `start -a`
            // opening its log) can still put a file there: left for the next sweep.
            if dir.exists() {
                if let Err(e) = strata_storage::fs::remove_tree(&dir) {
                    tracing::warn!("removing {} (swept at the next open): {e}", dir.display());
                }
            }
        }
        Ok(())
    }
}
