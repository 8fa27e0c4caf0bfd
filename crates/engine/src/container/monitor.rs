//! The monitor: one detached process per running container, as podman's conmon or
//! containerd's shim. `strata start` spawns the strata binary as `strata __monitor ID`
//! (its own process group, stdio away from the terminal), which:
//!
//! 1. becomes a child subreaper, so a container's init forked by `runc create` (which then
//!    exits) is reparented to it and can be waited for like a child;
//! 2. starts the container through the pipeline of `super::start` (lock, mount, hooks,
//!    bundle, runtime, record), moving itself into the `strata/monitors` cgroups meanwhile
//!    (see `strata_runtime::cgroup`);
//! 3. tells the starter "ok" or "err CODE MESSAGE" on its ready pipe, then closes it;
//! 4. copies the streams into the json-file log until the container exits (the exit status
//!    of `runc run`, or of the init a separate `runc create` forked, is the container's),
//!    then tears the start down (`super::start::teardown`) and records the exit code
//!    (128+N for signal N) and the time in one update, or removes the container if it was
//!    created with `--rm` (its code is then the monitor's exit status, for whoever waits).

use std::fs::File;
use std::io::Write;

use rustix::process::{Pid, WaitOptions};

use super::start::{Attach, Running};
use crate::error::Result;
use crate::{Engine, EngineOptions};

/// Runs the monitor of container `id`; `ready` receives the outcome of the start. Returns
/// the container's exit code (the monitor's own exit status).
pub fn run(options: &EngineOptions, id: &str, attach_stdin: bool, mut ready: File) -> i32 {
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let opened =
        tracing::debug_span!("monitor open store").in_scope(|| Engine::open_unrecovered(options));
    let engine = match opened {
        Ok(e) => e,
        Err(e) => return report(&mut ready, Err(e)),
    };
    let started = engine.start_pipeline(
        id,
        Attach {
            stdin: attach_stdin,
        },
    );
    let running = match started {
        Ok(r) => r,
        Err(e) => return report(&mut ready, Err(e)),
    };
    let _ = writeln!(ready, "ok");
    drop(ready);
    engine.monitor_wait(running)
}

fn report(ready: &mut File, result: Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = e.exit_code();
            let _ = writeln!(ready, "err {code} {e}");
            tracing::error!("{e}");
            code
        }
    }
}

impl Engine {
    fn monitor_wait(&self, running: Running) -> i32 {
        let code = tracing::debug_span!("container process").in_scope(|| wait_for(running.pid));
        tracing::debug_span!("log drain").in_scope(|| {
            for copier in running.copiers {
                let _ = copier.join();
            }
        });
        self.finish(
            &running.container,
            &running.runtime,
            &running.hooks,
            code as i64,
            running.durability,
        );
        code
    }
}

/// Reaps children (orphans reparented to us included) until `pid` ends; its exit code.
fn wait_for(pid: i32) -> i32 {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((p, status))) if Some(p) == Pid::from_raw(pid) => {
                return match status.terminating_signal() {
                    Some(signal) => 128 + signal,
                    None => status.exit_status().unwrap_or(0),
                };
            }
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            // No children left: the process is gone and was reaped by someone else.
            Err(_) => return 255,
        }
    }
}
