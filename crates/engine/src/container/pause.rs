//! `pause` and `unpause`: the runtime's freezer on every process of a running container;
//! `commit --pause` freezes the same way.

use super::{Container, Containers, State};
use crate::error::{Error, Result};

impl Containers<'_> {
    /// `pause`: freezes every process of a running container.
    pub fn pause(&self, name_or_id: &str) -> Result<Container> {
        let c = self.running(name_or_id, "pause")?;
        let runtime = self.runtime_for(&self.config(&c)?)?;
        runtime.pause(&c.id)?;
        Ok(c)
    }

    /// `unpause`: thaws a paused container.
    pub fn unpause(&self, name_or_id: &str) -> Result<Container> {
        let c = self.running(name_or_id, "unpause")?;
        let runtime = self.runtime_for(&self.config(&c)?)?;
        runtime.resume(&c.id)?;
        Ok(c)
    }

    /// Whether the runtime reports the running container `c` as paused.
    pub fn is_paused(&self, c: &Container) -> bool {
        if c.state != State::Running {
            return false;
        }
        let Ok(config) = self.config(c) else {
            return false;
        };
        let Ok(runtime) = self.runtime_for(&config) else {
            return false;
        };
        runtime
            .state(&c.id)
            .is_ok_and(|s| s.status == strata_runtime::Status::Paused)
    }

    pub(super) fn running(&self, name_or_id: &str, verb: &str) -> Result<Container> {
        let c = self.get(name_or_id)?;
        if c.state != State::Running {
            return Err(Error::Conflict(format!(
                "cannot {verb} container {} ({}): it is not running",
                c.name,
                c.short_id()
            )));
        }
        Ok(c)
    }

    /// Runs `f` with container `c` frozen when `pause` is set and it is running, so that
    /// what `f` copies is one point in time; thawed afterwards whatever `f` returned. A
    /// container that stopped meanwhile needs no thawing: its exit is not an error.
    pub(crate) fn paused_if<T>(
        &self,
        pause: bool,
        c: &Container,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if !pause || c.state != State::Running {
            return f();
        }
        let runtime = self.runtime_for(&self.config(c)?)?;
        if let Err(e) = runtime.pause(&c.id) {
            // Exited since we read its state: nothing to freeze any more.
            if self.get(&c.id).is_ok_and(|now| now.state != State::Running) {
                return f();
            }
            return Err(e.into());
        }
        let result = f();
        if let Err(e) = runtime.resume(&c.id) {
            // The commit itself is done (or failed on its own): report, as Docker does not
            // fail a commit on its unpause either.
            let stopped = self.get(&c.id).is_ok_and(|now| now.state != State::Running);
            if !stopped {
                tracing::error!(
                    "container {} may stay paused after commit: {e}; stop and start it again",
                    c.short_id()
                );
            }
        }
        result
    }
}
