//! Start hooks: work a container's start does around the runtime's `create`, for what must
//! exist before the container does (a network namespace and its interfaces, later a pod
//! sandbox to join) and be undone after it. Each hook kind is a variant of [`Hook`],
//! dispatched by `match` as youki dispatches its cgroup managers; a container's hooks
//! follow from its configuration alone, so its exit, `rm`, recovery after a crash and
//! `check --repair` rebuild the same list to tear them down.
//!
//! None is needed yet: `--network none` and `host` are namespaces the runtime makes or
//! shares itself. Networking adds `Hook::Network`, whose `prepare` makes a namespace and
//! returns its path (the spec joins it, [`strata_runtime::NetworkMode::Path`]), whose
//! `created` is free to configure it while the container exists but has not started, and
//! whose `teardown` releases it. An empty list costs nothing, and lets the pipeline start a
//! container with one runtime process (see `start/runtime.rs`).

use std::path::{Path, PathBuf};

use super::super::ContainerConfig;
use crate::error::Result;

/// What a hook is told about the container it works for.
pub struct HookContext<'a> {
    pub id: &'a str,
    /// `containers/<id>/`, where a hook keeps what its teardown needs.
    pub dir: &'a Path,
}

/// What the hooks' `prepare` gives the container's spec.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The network namespace the container joins by path.
    pub network_namespace: Option<PathBuf>,
}

/// One kind of start hook. Teardown is idempotent: it runs again after a crash that
/// interrupted it, and for a container whose start never reached `prepare`.
pub trait StartHook {
    /// Before the runtime creates the container.
    fn prepare(&self, cx: &HookContext<'_>, prepared: &mut Prepared) -> Result<()>;
    /// After the runtime created the container (its init is `pid`), before its command runs.
    fn created(&self, cx: &HookContext<'_>, pid: i32) -> Result<()>;
    /// After the container ended (or failed to start), before its mount goes.
    fn teardown(&self, cx: &HookContext<'_>);
}

/// The start hooks strata has; no variant yet (see the module documentation).
pub enum Hook {}

impl StartHook for Hook {
    fn prepare(&self, _cx: &HookContext<'_>, _prepared: &mut Prepared) -> Result<()> {
        match *self {}
    }

    fn created(&self, _cx: &HookContext<'_>, _pid: i32) -> Result<()> {
        match *self {}
    }

    fn teardown(&self, _cx: &HookContext<'_>) {
        match *self {}
    }
}

/// A container's hooks, run in order and torn down in reverse.
pub struct Hooks(Vec<Hook>);

impl Hooks {
    /// The hooks `config` needs.
    pub fn for_container(_config: &ContainerConfig) -> Hooks {
        Hooks(Vec::new())
    }

    /// Whether no step needs the gap between the runtime's create and start.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn prepare(&self, cx: &HookContext<'_>) -> Result<Prepared> {
        let mut prepared = Prepared::default();
        for hook in &self.0 {
            hook.prepare(cx, &mut prepared)?;
        }
        Ok(prepared)
    }

    pub fn created(&self, cx: &HookContext<'_>, pid: i32) -> Result<()> {
        for hook in &self.0 {
            hook.created(cx, pid)?;
        }
        Ok(())
    }

    pub fn teardown(&self, cx: &HookContext<'_>) {
        for hook in self.0.iter().rev() {
            hook.teardown(cx);
        }
    }
}
