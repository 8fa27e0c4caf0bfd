//! A daemon's live state, below its front ends (the Docker API today, a CRI server later),
//! so they share it: the one engine every request uses, the exits of the monitors it
//! spawned, the terminals its clients attach to, the stdin attaches it expects, and its exec
//! instances. None of it outlives the daemon.
//!
//! One engine serves every request. `Engine` is `Sync`: its SQLite connection sits behind a
//! mutex and its store lock has an in-process mutex in front of the `flock`, so threads
//! share it as processes share the store. Opened once, its crash recovery runs once, at
//! start-up, never while the daemon's own work is in flight (see `docs/ARCHITECTURE.md`).

mod execs;
mod monitors;
mod terminals;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use execs::{ExecRequest, Execs, Instance, Run};
pub use monitors::Monitors;
pub use terminals::Terminals;

use crate::{Engine, EngineOptions, Result};

/// See the module documentation.
pub struct Daemon {
    options: EngineOptions,
    engine: Arc<Engine>,
    pub monitors: Arc<Monitors>,
    pub terminals: Arc<Terminals>,
    pub execs: Execs,
    /// Containers whose stdin an attached client will write: their next start opens the
    /// stdin FIFO for that client instead of holding it open itself.
    stdin_attaches: Mutex<HashSet<String>>,
}

impl Daemon {
    /// Opens the engine (recovering the store, so start-up fails early on a bad root or
    /// driver).
    pub fn open(options: EngineOptions) -> Result<Daemon> {
        let engine = Arc::new(Engine::open(&options)?);
        Ok(Daemon {
            options,
            engine,
            monitors: Arc::default(),
            terminals: Arc::default(),
            execs: Execs::default(),
            stdin_attaches: Mutex::default(),
        })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The engine, to move onto a blocking thread.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Runs `work` with the engine on the current (blocking) thread.
    pub fn with_engine<T, E>(&self, work: impl FnOnce(&Engine) -> Result<T, E>) -> Result<T, E> {
        work(&self.engine)
    }

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
