//! `wait`, and the waits of `stop` and `rm`: the `containers` row, which only the monitor
//! (or recovery, holding the dead monitor's lock) moves to `running` and `exited`, polled
//! until the container ended and its monitor let go of its lock.

use std::time::{Duration, Instant};

use super::start::monitor_lock;
use super::{store, Container, State};
use crate::error::Result;
use crate::Engine;

/// How often waits poll the record.
const POLL: Duration = Duration::from_millis(10);

impl Engine {
    /// `wait`: blocks until the container is not running (nor about to be); its exit code.
    pub fn wait_container(&self, name_or_id: &str) -> Result<i64> {
        let c = self.container(name_or_id)?;
        loop {
            match self.db.read(|conn| store::get(conn, &c.id))? {
                Some(now) if matches!(now.state, State::Exited | State::Dead) => {
                    return Ok(now.exit_code.unwrap_or(0))
                }
                Some(now) if now.state == State::Created && !self.monitor_alive(&c.id) => {
                    return Ok(now.exit_code.unwrap_or(0))
                }
                Some(_) => std::thread::sleep(POLL),
                None => return Err(super::store::not_found(name_or_id)),
            }
        }
    }

    /// Polls until container `id` left `running` and its monitor finished (or `timeout`).
    pub(super) fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<Option<Container>> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.db.read(|conn| store::get(conn, id))?;
            let stopped = now.as_ref().is_none_or(|c| c.state != State::Running);
            if stopped && !self.monitor_alive(id) {
                return Ok(Some(now.unwrap_or_else(|| gone(id))));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether a monitor holds container `id`'s lock.
    pub(crate) fn monitor_alive(&self, id: &str) -> bool {
        let dir = self.container_dir(id);
        // No directory, no lock file: no monitor.
        dir.is_dir() && matches!(monitor_lock(&dir, false), Ok(None))
    }
}

fn gone(id: &str) -> Container {
    Container {
        id: id.into(),
        name: String::new(),
        image: String::new(),
        rw_layer: id.into(),
        created: 0,
        state: State::Exited,
        pid: None,
        exit_code: None,
        started_at: None,
        finished_at: None,
    }
}
