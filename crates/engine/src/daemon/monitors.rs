//! The exits of the monitors a daemon spawned.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;

/// Exit codes of the monitors this daemon spawned (a monitor exits with its container's
/// code), and a counter that moves whenever one ends, so waiters wake at once instead of at
/// their next poll. A `--rm` container's row is gone right after its exit: its code is
/// still known here.
pub struct Monitors {
    exits: Mutex<Exits>,
    /// For waiters on blocking threads, as `changed` is for async ones.
    ended: Condvar,
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct Exits {
    codes: HashMap<String, i64>,
    /// How many monitors have ended.
    count: u64,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            exits: Mutex::new(Exits::default()),
            ended: Condvar::new(),
            changed: watch::channel(0).0,
        }
    }
}

impl Monitors {
    /// Reaps `monitor` on a thread of its own and records container `id`'s exit code.
    pub fn watch(self: &Arc<Self>, id: String, mut monitor: std::process::Child) {
        let monitors = self.clone();
        std::thread::spawn(move || {
            let code = match monitor.wait() {
                Ok(status) => status.code().unwrap_or(255) as i64,
                Err(_) => 255,
            };
            tracing::debug!("the monitor of container {id} exited with {code}");
            monitors.record_exit(&id, code);
        });
    }

    pub fn record_exit(&self, id: &str, code: i64) {
        let mut exits = self.lock();
        // Bounded: only the latest codes matter, to whoever waits right now.
        if exits.codes.len() > 4096 {
            exits.codes.clear();
        }
        exits.codes.insert(id.to_string(), code);
        exits.count += 1;
        drop(exits);
        self.ended.notify_all();
        self.changed.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Exits> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many monitors have ended so far: the mark for [`Monitors::wait_after`].
    pub fn ended_count(&self) -> u64 {
        self.lock().count
    }

    /// Blocks the calling (non-async) thread until a monitor ends after `mark` was read, or
    /// `timeout` passes.
    pub fn wait_after(&self, mark: u64, timeout: std::time::Duration) {
        let exits = self.lock();
        let _ = self
            .ended
            .wait_timeout_while(exits, timeout, |e| e.count == mark);
    }

    /// The exit code of container `id`'s last monitor that this daemon reaped.
    pub fn exit_code(&self, id: &str) -> Option<i64> {
        self.lock().codes.get(id).copied()
    }

    /// Forgets the code of `id` (at start, so a wait sees this run's code, not the last).
    pub fn forget(&self, id: &str) {
        self.lock().codes.remove(id);
    }

    /// A receiver that sees every later exit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
