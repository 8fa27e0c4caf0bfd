//! `stop`, `kill`, and the kill of `rm -f`: signals through the runtime, then a wait for
//! the monitor to have torn the start down.

use std::time::Duration;

use super::{Container, State};
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// `stop`: SIGTERM, then SIGKILL after `timeout`; returns the container as it ended.
    pub fn stop_container(&self, name_or_id: &str, timeout: Duration) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != State::Running {
            return Ok(c);
        }
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        let _ = runtime.kill(&c.id, strata_sys::signal::SIGTERM, false);
        if let Some(done) = self.wait_stopped(&c.id, timeout)? {
            return Ok(done);
        }
        let _ = runtime.kill(&c.id, strata_sys::signal::SIGKILL, true);
        self.wait_stopped(&c.id, Duration::from_secs(30))?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "container {} did not stop after SIGKILL",
                    c.short_id()
                ))
            })
    }

    /// `kill -s SIGNAL`.
    pub fn kill_container(&self, name_or_id: &str, signal: i32) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != State::Running {
            return Err(Error::Conflict(format!(
                "cannot kill container {} ({}): it is not running",
                c.name,
                c.short_id()
            )));
        }
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        runtime.kill(&c.id, signal, false)?;
        Ok(c)
    }

    /// Kills a running container and waits for its monitor (for `rm -f`).
    pub(crate) fn kill_and_wait(&self, c: &Container) -> Result<()> {
        if let Ok(runtime) = self.runtime_for(&self.container_config(c)?) {
            let _ = runtime.kill(&c.id, strata_sys::signal::SIGKILL, true);
        }
        if self.wait_stopped(&c.id, Duration::from_secs(30))?.is_none() {
            return Err(Error::Conflict(format!(
                "container {} is still running after SIGKILL",
                c.short_id()
            )));
        }
        Ok(())
    }
}
