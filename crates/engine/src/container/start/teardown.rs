//! A start undone, in reverse of its steps: the runtime's state (steps 5-7), the hooks'
//! work (step 3), the mount of the writable layer (step 2). [`Engine::teardown_start`] is
//! the one sequence, run when the container exits or fails to start ([`Engine::finish`],
//! in the monitor), on `rm` ([`Engine::remove_stopped`]) and in recovery after a crash
//! ([`Engine::recover_running`], at open and in `check --repair`). Each step is idempotent,
//! so a teardown interrupted by a crash is run again whole.

use strata_runtime::Runtime;
use strata_storage::layer_store::Durability;

use super::super::{now_nanos, store, Container, ContainerConfig};
use super::hooks::{HookContext, Hooks};
use crate::Engine;

/// How much of the writable layer's mount a teardown releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// The start's own mount (others, `strata mount` or a `cp`, keep theirs).
    ThisStart,
    /// Every mount, for the layer's removal.
    AllMounts,
}

impl Engine {
    /// Tears down what the start of `c` set up; `runtime` and `hooks` as its config gives
    /// them (`None` when the config cannot be read: nothing of them is then known).
    pub(crate) fn teardown_start(
        &self,
        c: &Container,
        runtime: Option<&Runtime>,
        hooks: Option<&Hooks>,
        release: Release,
    ) -> strata_storage::Result<()> {
        if let Some(runtime) = runtime {
            tracing::debug_span!("runtime delete")
                .in_scope(|| delete_runtime_state(runtime, &c.id));
        }
        if let Some(hooks) = hooks {
            let dir = self.container_dir(&c.id);
            hooks.teardown(&HookContext {
                id: &c.id,
                dir: &dir,
            });
        }
        tracing::debug_span!("unmount").in_scope(|| {
            self.layers
                .unmount_rw(&c.rw_layer, release == Release::AllMounts)
        })
    }

    /// [`Engine::teardown_start`] with what `config` gives, for `rm` and recovery.
    pub(crate) fn teardown_start_of(
        &self,
        c: &Container,
        config: Option<&ContainerConfig>,
        release: Release,
    ) -> strata_storage::Result<()> {
        let runtime = config.and_then(|config| self.runtime_for(config).ok());
        let hooks = config.map(Hooks::for_container);
        self.teardown_start(c, runtime.as_ref(), hooks.as_ref(), release)
    }

    /// After the container's process (or a failed start): the teardown and the exit code
    /// recorded; or for a `--rm` container (`Durability::Volatile`), its removal, which
    /// takes the teardown with it.
    pub(crate) fn finish(
        &self,
        c: &Container,
        runtime: &Runtime,
        hooks: &Hooks,
        code: i64,
        durability: Durability,
    ) {
        // A `--rm` container's exit is recorded only if it stays: its removal is one
        // commit fewer, and whoever waits for it reads the code from our exit status.
        if durability == Durability::Volatile {
            let removed =
                tracing::debug_span!("remove (--rm)").in_scope(|| self.remove_stopped(c, true));
            match removed {
                Ok(()) => return,
                Err(e) => tracing::error!("removing container {} (--rm): {e}", c.short_id()),
            }
        }
        if let Err(e) = self.teardown_start(c, Some(runtime), Some(hooks), Release::ThisStart) {
            tracing::warn!("unmounting container {}: {e}", c.short_id());
        }
        let recorded = tracing::debug_span!("record exit").in_scope(|| {
            self.db
                .write(|tx| store::set_exited(tx.sql(), &c.id, code, now_nanos()))
        });
        if let Err(e) = recorded {
            tracing::error!("recording the exit of container {}: {e}", c.short_id());
        }
    }
}

/// Removes the runtime's state of `id` if there is any (killing what is left of it), and
/// any log its calls left.
pub(crate) fn delete_runtime_state(runtime: &Runtime, id: &str) {
    // A dead monitor's `runc run` log (a live one removes its own).
    runtime.remove_logs(id);
    if !runtime.state_root.join(id).exists() {
        return; // spares a runtime invocation in the common case
    }
    if let Err(e) = runtime.delete(id, true) {
        tracing::warn!("deleting the runtime state of container {id}: {e}");
    }
}
