//! A container's start, as its monitor (`super::monitor`) runs it: one pipeline, the same
//! with a terminal and without. The steps, in order (`Containers::start_pipeline`):
//!
//! 1. `claim`: the monitor lock (`containers/<id>/monitor.lock`, held for the monitor's
//!    life) and a check that the container may start;
//! 2. `Containers::mount_rootfs`: the writable layer, volatile for a `--rm` container;
//! 3. `hooks::Hooks::prepare`: what must exist before the container (a network
//!    namespace, once there is networking);
//! 4. `bundle::write`: hostname, hosts and resolv.conf, and the OCI bundle;
//! 5. `runtime::create`: the runtime creates the container (with a terminal, the pty
//!    master comes back and its relay starts);
//! 6. `hooks::Hooks::created`: the steps between create and start;
//! 7. `runtime::start`: the command runs once its pid file says so;
//! 8. `Containers::record_running`.
//!
//! Without a terminal and with no hook, steps 5 to 7 are one `runc run` (`runtime::run`):
//! one runtime process creates, starts, waits for and deletes the container where `create`,
//! `start` and `delete` take three, a cost measured in `bench/README.md`.
//!
//! `teardown` undoes steps 5-7, 3 and 2 in reverse, wherever a start ends: when the
//! container exits or fails to start (the monitor), on `rm`, and in recovery after a crash
//! (at open and in `check --repair`).

mod bundle;
mod claim;
pub mod hooks;
mod pid_file;
mod runtime;
pub(crate) mod starter;
pub(crate) mod teardown;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use strata_runtime::Runtime;
use strata_storage::layer_store::Durability;

use super::{now_nanos, store, Container, ContainerConfig};
use crate::container::Containers;
use crate::error::Result;
use hooks::{HookContext, Hooks};

pub(crate) use claim::{monitor_lock, monitor_lock_patiently};

/// A container whose process runs, as the monitor holds it.
pub(crate) struct Running {
    pub container: Container,
    pub runtime: Runtime,
    pub hooks: Hooks,
    /// The process whose exit status is the container's: `runc run`, or after a separate
    /// create the container's init (reparented to us, the subreaper, when `runc create`
    /// exits).
    pub pid: i32,
    /// The threads copying the container's output into its log.
    pub copiers: Vec<JoinHandle<()>>,
    pub durability: Durability,
    _lock: File,
}

/// How the monitor was asked to start: whether a client will attach to the container's
/// stdin (or terminal), so the start leaves that to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attach {
    pub stdin: bool,
}

impl Containers<'_> {
    /// Steps 1-8 of the module documentation; on failure after the mount, the teardown.
    pub(crate) fn start_pipeline(&self, id: &str, attach: Attach) -> Result<Running> {
        let (lock, c) = claim::claim(self, id)?;
        let config = self.config(&c)?;
        let runtime = self.runtime_for(&config)?;
        // What a dead monitor's runtime left, before it could clash with this start.
        teardown::delete_runtime_state(&runtime, &c.id);
        // On a thread of its own: the move waits for a grace period, which runc's move of
        // the container then finds over (see strata_runtime::cgroup).
        std::thread::spawn(|| {
            if let Err(e) = strata_runtime::cgroup::join_monitors() {
                tracing::debug!("the monitor stays in its starter's cgroups: {e}");
            }
        });
        let durability = durability_of(&config);
        let rootfs = self.mount_rootfs(&c, durability)?;
        let hooks = Hooks::for_container(&config);
        let started = self.start_mounted(&c, &config, &runtime, &hooks, &rootfs, attach);
        match started {
            Ok((pid, copiers)) => Ok(Running {
                container: c,
                runtime,
                hooks,
                pid,
                copiers,
                durability,
                _lock: lock,
            }),
            Err(e) => {
                self.finish(&c, &runtime, &hooks, e.exit_code() as i64, durability);
                Err(e)
            }
        }
    }

    /// The runtime a container runs with (its state kept under `<root>/runtime/<name>`).
    pub(crate) fn runtime_for(&self, config: &ContainerConfig) -> Result<Runtime> {
        let name = config.runtime_name();
        let base = Path::new(name).file_name().unwrap_or(name.as_ref());
        let state = self.stores.layers.root().join("runtime").join(base);
        Ok(Runtime::find(name, &state)?)
    }

    /// Step 2.
    fn mount_rootfs(&self, c: &Container, durability: Durability) -> Result<PathBuf> {
        tracing::debug_span!("mount")
            .in_scope(|| Ok(self.stores.layers.mount_rw_with(&c.rw_layer, durability)?))
    }

    /// Steps 3-8; the pid to wait for and the log copiers.
    fn start_mounted(
        &self,
        c: &Container,
        config: &ContainerConfig,
        runtime: &Runtime,
        hooks: &Hooks,
        rootfs: &Path,
        attach: Attach,
    ) -> Result<(i32, Vec<JoinHandle<()>>)> {
        let dir = self.dir(&c.id);
        let cx = HookContext {
            id: &c.id,
            dir: &dir,
        };
        let prepared = hooks.prepare(&cx)?;
        let bundle = tracing::debug_span!("write bundle").in_scope(|| {
            bundle::write(self.stores.layers.root(), &dir, c, config, rootfs, prepared)
        })?;
        let streams = runtime::Streams::open(&dir, c, config, attach)?;
        if hooks.is_empty() && !config.tty {
            let span = tracing::debug_span!("runc run until started").entered();
            let (pid, run_pid, copiers) = runtime::run(runtime, &c.id, &bundle, streams)?;
            drop(span);
            self.record_running(c, pid)?;
            return Ok((run_pid, copiers));
        }
        let created = runtime::create(runtime, &c.id, &bundle, config.tty, streams)?;
        let started = hooks
            .created(&cx, created.pid)
            .and_then(|()| runtime::start(runtime, &c.id))
            .and_then(|()| self.record_running(c, created.pid));
        if started.is_err() && config.tty {
            let _ = std::fs::remove_file(self.attach_socket(c));
        }
        started.map(|()| (created.pid, created.copiers))
    }

    /// Step 8. Not made durable: no process survives a power cut, and recovery reads a
    /// `running` row whose monitor is gone as exited anyway.
    fn record_running(&self, c: &Container, pid: i32) -> Result<()> {
        tracing::debug_span!("record running").in_scope(|| {
            self.stores
                .db
                .write_volatile(|tx| store::set_running(tx.sql(), &c.id, pid as i64, now_nanos()))
        })
    }
}

/// A `--rm` container's layer goes when it ends: its writes need not be durable.
pub(crate) fn durability_of(config: &ContainerConfig) -> Durability {
    match config.auto_remove {
        true => Durability::Volatile,
        false => Durability::Durable,
    }
}
