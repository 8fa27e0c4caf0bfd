//! The monitor: one detached process per running container, as podman's conmon or
//! containerd's shim. `strata start` spawns the strata binary as `strata __monitor ID`
//! (its own process group, stdio away from the terminal), which:
//!
//! 1. becomes a child subreaper, so the container's init (forked by `runc create`, which
//!    then exits) is reparented to it and can be waited for like a child;
//! 2. holds `containers/<id>/monitor.lock` for its whole life: a free lock on a `running`
//!    container means its monitor died (see [`Engine::recover_running`]);
//! 3. moves itself into the `strata/monitors` cgroups (see [`strata_runtime::cgroup`]),
//!    mounts the writable layer, writes the OCI bundle (`containers/<id>/bundle/`), spawns
//!    `runc run` (not detached: one runtime process creates, starts, waits for and deletes
//!    the container, where `create` + `start` + `delete` took three) with pipes as the
//!    container's stdout/stderr (and the FIFO `containers/<id>/stdin` with `-i`), and once
//!    runc's pid file shows the command runs ([`super::launch`]), records `running`; with
//!    `-t`, `runc create` + `start` with a terminal relayed through
//!    `containers/<id>/attach.sock` (see [`super::tty`]);
//! 4. tells the starter "ok" or "err CODE MESSAGE" on its ready pipe, then closes it;
//! 5. copies the streams into the json-file log until the container exits (runc's exit
//!    status is the container's), then deletes what runtime state is left (none unless
//!    runc itself died), unmounts, and records the exit code (128+N for signal N) and the
//!    time in one update, or removes the container if it was created with `--rm` (its
//!    code is then the monitor's exit status, for whoever waits).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rustix::process::{Pid, WaitOptions};
use strata_runtime::{Io, Runtime};
use strata_storage::error::IoContext;

use super::{launch, logs, now_nanos, spec, store, Container, State};
use crate::error::{Error, Result};
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
    let started = engine.monitor_start(id, attach_stdin);
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

/// A container whose process runs, as the monitor holds it.
pub(crate) struct Running {
    container: Container,
    runtime: Runtime,
    /// The process whose exit status is the container's: `runc run`, or for a terminal the
    /// container's init (reparented to us, the subreaper, when `runc create` exits).
    pid: i32,
    copiers: Vec<std::thread::JoinHandle<()>>,
    auto_remove: bool,
    _lock: File,
}

impl Engine {
    fn monitor_start(&self, id: &str, attach_stdin: bool) -> Result<Running> {
        let dir = self.container_dir(id);
        let lock = monitor_lock_patiently(&dir)?.ok_or_else(|| match dir.is_dir() {
            true => Error::Conflict(format!(
                "container {id} is already being started or running"
            )),
            // Removed (by a prune or rm in another process) since it was looked up.
            false => Error::NoSuchContainer(format!(
                "no such container: {id} (it was removed meanwhile)"
            )),
        })?;
        let c = self.container(id)?;
        if c.state == State::Running || c.state == State::Dead {
            return Err(Error::Conflict(format!(
                "cannot start container {} ({}): it is {}",
                c.name,
                c.short_id(),
                c.state.as_str()
            )));
        }
        let config = self.container_config(&c)?;
        let runtime = self.runtime_for(&config)?;
        super::run::delete_runtime_state(&runtime, id);
        // On a thread of its own: the move waits for a grace period, which runc's move of
        // the container then finds over (see strata_runtime::cgroup).
        std::thread::spawn(|| {
            if let Err(e) = strata_runtime::cgroup::join_monitors() {
                tracing::debug!("the monitor stays in its starter's cgroups: {e}");
            }
        });
        // A `--rm` container's layer goes when it ends: no need to make its writes durable.
        let rootfs = tracing::debug_span!("mount")
            .in_scope(|| self.layers.mount_rw_with(&c.rw_layer, config.auto_remove))?;
        let result = self.create_and_start(&c, &runtime, &rootfs, attach_stdin, config.open_stdin);
        match result {
            Ok((pid, copiers)) => Ok(Running {
                container: c,
                runtime,
                pid,
                copiers,
                auto_remove: config.auto_remove,
                _lock: lock,
            }),
            Err(e) => {
                self.finish(&c, &runtime, e.exit_code() as i64, config.auto_remove);
                Err(e)
            }
        }
    }

    fn create_and_start(
        &self,
        c: &Container,
        runtime: &Runtime,
        rootfs: &Path,
        attach_stdin: bool,
        open_stdin: bool,
    ) -> Result<(i32, Vec<std::thread::JoinHandle<()>>)> {
        let dir = self.container_dir(&c.id);
        let config = self.container_config(c)?;
        let bundle_span = tracing::debug_span!("write bundle").entered();
        super::files::write_network_files(&dir, &config, &c.id)?;
        let spec = spec::build(self.layers.root(), &dir, c, &config, rootfs)?;
        let bundle = dir.join("bundle");
        match std::fs::create_dir(&bundle) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(
                    strata_storage::Error::io(format!("creating {}", bundle.display()), e).into(),
                )
            }
            _ => {}
        }
        strata_runtime::write_bundle(&spec.to_oci()?, &bundle)?;
        drop(bundle_span);
        let log_path = logs::log_path(&dir, &c.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log_path)
            .ctx_path("opening", &log_path)?;
        let log = Arc::new(Mutex::new(log));
        if config.tty {
            // The starter attaches to the terminal (`attach_stdin`): its output waits for it.
            let pid_file = bundle.join("pid");
            let copiers = super::tty::create_and_relay(
                runtime,
                &c.id,
                &bundle,
                &pid_file,
                log,
                attach_stdin,
            )?;
            let started = self.start_created(c, runtime, &pid_file, copiers);
            if started.is_err() {
                let _ = std::fs::remove_file(self.attach_socket(c));
            }
            return started;
        }
        let (out_r, out_w) = std::io::pipe().ctx_path("creating a pipe for", &log_path)?;
        let (err_r, err_w) = std::io::pipe().ctx_path("creating a pipe for", &log_path)?;
        let copiers = vec![
            {
                let log = log.clone();
                std::thread::spawn(move || logs::copy_stream(out_r, "stdout", log))
            },
            std::thread::spawn(move || logs::copy_stream(err_r, "stderr", log)),
        ];
        let stdin = if open_stdin {
            let fifo = dir.join("stdin");
            super::run::make_fifo(&fifo)?;
            // Read-only blocks until the attached CLI opens its end (and gives EOF when it
            // closes it); read-write keeps stdin open with nobody writing, as `-d -i` does.
            let file = OpenOptions::new()
                .read(true)
                .write(!attach_stdin)
                .open(&fifo)
                .ctx_path("opening", &fifo)?;
            Stdio::from(file)
        } else {
            Stdio::null()
        };
        let pid_file = bundle.join("pid");
        // A pid file left by an earlier start would read as this one having started.
        remove_if_present(&pid_file)?;
        let io = Io {
            stdin,
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
        };
        let span = tracing::debug_span!("runc run until started").entered();
        let run = runtime.spawn_run(&c.id, &bundle, &pid_file, io)?;
        let pid = match launch::wait_started(&pid_file, run.pid)? {
            launch::Launch::Started(pid) => pid,
            launch::Launch::Failed(code) => return Err(runtime.run_failure(&run, code).into()),
        };
        drop(span);
        tracing::debug_span!("record running").in_scope(|| self.record_running(c, pid))?;
        Ok((run.pid, copiers))
    }

    /// `runc start` of a created container, recorded as running; its pid.
    fn start_created(
        &self,
        c: &Container,
        runtime: &Runtime,
        pid_file: &Path,
        copiers: Vec<std::thread::JoinHandle<()>>,
    ) -> Result<(i32, Vec<std::thread::JoinHandle<()>>)> {
        let pid = std::fs::read_to_string(pid_file)
            .ctx_path("reading", pid_file)?
            .trim()
            .parse::<i32>()
            .map_err(|e| Error::Corrupt(format!("{}: {e}", pid_file.display())))?;
        runtime.start(&c.id)?;
        self.record_running(c, pid)?;
        Ok((pid, copiers))
    }

    /// Not made durable: no process survives a power cut, and recovery reads a `running`
    /// row whose monitor is gone as exited anyway.
    fn record_running(&self, c: &Container, pid: i32) -> Result<()> {
        self.layers
            .write_volatile(|tx| store::set_running(tx.sql(), &c.id, pid as i64, now_nanos()))
    }

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
            code as i64,
            running.auto_remove,
        );
        code
    }

    /// After the process: runtime state, mount and record; or with `--rm`, the container
    /// itself (which takes the runtime state and the mount with it).
    fn finish(&self, c: &Container, runtime: &Runtime, code: i64, auto_remove: bool) {
        // A `--rm` container's exit is recorded only if it stays: its removal is one
        // commit fewer, and whoever waits for it reads the code from our exit status.
        if auto_remove {
            let removed =
                tracing::debug_span!("remove (--rm)").in_scope(|| self.remove_stopped(c, true));
            match removed {
                Ok(()) => return,
                Err(e) => tracing::error!("removing container {} (--rm): {e}", c.short_id()),
            }
        }
        tracing::debug_span!("runtime delete")
            .in_scope(|| super::run::delete_runtime_state(runtime, &c.id));
        let unmounted =
            tracing::debug_span!("unmount").in_scope(|| self.layers.unmount_rw(&c.rw_layer, false));
        if let Err(e) = unmounted {
            tracing::warn!("unmounting container {}: {e}", c.short_id());
        }
        let recorded = tracing::debug_span!("record exit").in_scope(|| {
            self.layers
                .write(|tx| store::set_exited(tx.sql(), &c.id, code, now_nanos()))
        });
        if let Err(e) = recorded {
            tracing::error!("recording the exit of container {}: {e}", c.short_id());
        }
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(strata_storage::Error::io(format!("removing {}", path.display()), e).into())
        }
        _ => Ok(()),
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

/// The monitor lock, waiting a little for it: other processes probe whether a monitor is
/// alive by taking the lock for an instant (recovery at open, `rm`, `check`), and a start
/// that met such a probe must not fail as if the container were running. A live monitor
/// holds it for good, so after the wait the answer is `None`.
fn monitor_lock_patiently(dir: &std::path::Path) -> Result<Option<File>> {
    for _ in 0..200 {
        if let Some(lock) = super::run::monitor_lock(dir, false)? {
            return Ok(Some(lock));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(None)
}
