//! What every handler shares: the engine (synchronous, so it runs on blocking threads),
//! and what the daemon learns from the monitors it spawned.
//!
//! One engine serves every request. `Engine` is `Sync`: its SQLite connection sits behind a
//! mutex and its store lock has an in-process mutex in front of the `flock`, so threads
//! share it as processes share the store. An engine per request (or a pool that grows in
//! bursts) would run `Engine::open`'s crash recovery while the daemon's own work is in
//! flight: that recovery saw a `--rm` container whose monitor was removing it as "lost its
//! directory" and marked it dead. Opened once, recovery runs once, at start-up.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use strata_engine::{Engine, EngineOptions};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct AppState {
    pub engines: Arc<Engines>,
    pub monitors: Arc<Monitors>,
    /// The strata binary, run as each container's monitor.
    pub monitor_binary: PathBuf,
    /// Containers whose stdin an attached client will write: their next start opens the
    /// stdin FIFO for that client instead of holding it open itself.
    pub stdin_attaches: Arc<Mutex<HashSet<String>>>,
    /// Terminals of `-t` containers that clients are attached to.
    pub terminals: Arc<crate::containers::Terminals>,
}

impl AppState {
    pub fn expect_stdin_attach(&self, id: &str) {
        self.stdin_attaches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    /// Whether a client attached to `id`'s stdin (forgotten once asked).
    pub fn take_stdin_attach(&self, id: &str) -> bool {
        self.stdin_attaches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }
}

/// The daemon's engine, and how it was opened.
pub struct Engines {
    options: EngineOptions,
    engine: Arc<Engine>,
}

impl Engines {
    /// Opens the engine (recovering the store, so start-up fails early on a bad root or
    /// driver).
    pub fn open(options: EngineOptions) -> strata_engine::Result<Engines> {
        let engine = Arc::new(Engine::open(&options)?);
        Ok(Engines { options, engine })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs `work` with the engine on a blocking thread.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || work(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("an engine task failed: {e}")))?
    }

    /// Runs `work` with the engine on the current (blocking) thread.
    pub fn with_engine<T>(&self, work: impl FnOnce(&Engine) -> ApiResult<T>) -> ApiResult<T> {
        work(&self.engine)
    }
}

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
