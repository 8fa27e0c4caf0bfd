//! What every handler shares: the engines (the engine is synchronous and holds a SQLite
//! connection, so it runs on blocking threads), and what the daemon learns from the
//! monitors it spawned.
//!
//! Engines are pooled rather than opened per request: `Engine::open` checks the driver and
//! runs crash recovery, which is safe while other engines of this process work (every lock
//! it tests is a `flock` on its own open file, as between CLI processes) but costs a few
//! milliseconds. Idle engines are kept up to [`MAX_IDLE`]; a burst opens more.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use strata_engine::{Engine, EngineOptions};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

/// Idle engines kept for the next requests.
const MAX_IDLE: usize = 8;

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

pub struct Engines {
    options: EngineOptions,
    idle: Mutex<Vec<Engine>>,
}

impl Engines {
    /// Opens the first engine (recovering the store once, up front, so start-up fails early
    /// on a bad root or driver).
    pub fn open(options: EngineOptions) -> strata_engine::Result<Engines> {
        let first = Engine::open(&options)?;
        Ok(Engines {
            options,
            idle: Mutex::new(vec![first]),
        })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs `work` with an engine on a blocking thread.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    {
        let engines = self.clone();
        tokio::task::spawn_blocking(move || {
            let engine = engines.take()?;
            let result = work(&engine);
            engines.give_back(engine);
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("an engine task failed: {e}")))?
    }

    fn take(&self) -> ApiResult<Engine> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(engine) => Ok(engine),
            None => Ok(Engine::open(&self.options)?),
        }
    }

    fn give_back(&self, engine: Engine) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(engine);
        }
    }
}

/// Exit codes of the monitors this daemon spawned (a monitor exits with its container's
/// code), and a counter that moves whenever one ends, so waiters wake at once instead of at
/// their next poll. A `--rm` container's row is gone right after its exit: its code is
/// still known here.
pub struct Monitors {
    exits: Mutex<HashMap<String, i64>>,
    changed: watch::Sender<u64>,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            exits: Mutex::new(HashMap::new()),
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
            monitors.record_exit(&id, code);
        });
    }

    pub fn record_exit(&self, id: &str, code: i64) {
        let mut exits = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: only the latest codes matter, to whoever waits right now.
        if exits.len() > 4096 {
            exits.clear();
        }
        exits.insert(id.to_string(), code);
        drop(exits);
        self.changed.send_modify(|n| *n += 1);
    }

    /// The exit code of container `id`'s last monitor that this daemon reaped.
    pub fn exit_code(&self, id: &str) -> Option<i64> {
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    /// Forgets the code of `id` (at start, so a wait sees this run's code, not the last).
    pub fn forget(&self, id: &str) {
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// A receiver that sees every later exit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Engines {
    /// Runs `work` with an engine on the current (blocking) thread.
    pub fn with_engine<T>(&self, work: impl FnOnce(&Engine) -> ApiResult<T>) -> ApiResult<T> {
        let engine = self.take()?;
        let result = work(&engine);
        self.give_back(engine);
        result
    }
}
