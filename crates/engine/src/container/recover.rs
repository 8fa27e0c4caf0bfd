//! Recovery of a container whose monitor died: run at open ([`Engine::recover_containers`])
//! and by `check --repair`.

use super::start::hooks::Hooks;
use super::start::monitor_lock;
use super::start::teardown::Release;
use super::{now_nanos, store, Container, State};
use crate::error::Result;
use crate::Engine;

impl Engine {
    /// At open: a `running` container whose monitor is gone is killed if its process
    /// survived (137), else recorded with 255 (the code is lost); its start is torn down
    /// (runtime state, hooks, mount), so the record is true and `rm` has nothing extra.
    pub(crate) fn recover_running(&self, c: &Container) -> Result<()> {
        let Some(_lock) = monitor_lock(&self.container_dir(&c.id), false)? else {
            return Ok(()); // its monitor is alive
        };
        let Some(now) = self.db.read(|conn| store::get(conn, &c.id))? else {
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
        let config = self.container_config(c)?;
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
        self.db
            .write(|tx| store::set_exited(tx.sql(), &c.id, code, now_nanos()))
    }
}
