//! The starter's side of a start (the CLI or the daemon): `strata start` spawns the
//! container's monitor, `strata __monitor ID` (see [`super::super::monitor`]), which runs the
//! pipeline of [`super`], and waits for its answer on the ready pipe.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::error::IoContext;

use super::super::stdio::make_fifo;
use super::super::{Container, State};
use crate::container::Containers;
use crate::error::{Error, Result};

/// How `start` runs the monitor.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// The strata binary, run as `strata __monitor`.
    pub monitor: PathBuf,
    /// The caller will write the container's stdin into its FIFO ([`Containers::stdin_fifo`]),
    /// or, for a container with a terminal, attach to it ([`Containers::attach_terminal`]).
    pub attach_stdin: bool,
}

/// A started container and its monitor (a child of ours until we exit; wait for it to
/// know the container has exited and been cleaned up).
pub struct Started {
    pub container: Container,
    pub monitor: Child,
}

impl Containers<'_> {
    /// `start`: spawns the container's monitor and returns once the process runs (or the
    /// start failed: then the error is the runtime's, with 127 for a missing command).
    pub fn start(&self, name_or_id: &str, opts: &StartOptions) -> Result<Started> {
        let c = self.get(name_or_id)?;
        let id = c.id.clone();
        match self.start_found(c, opts) {
            // A file of its directory gone because another process (a prune) removed the
            // container since it was looked up: say that, not which file was missing.
            Err(Error::Io { .. }) if self.get(&id).is_err() => {
                Err(Error::NoSuchContainer(format!(
                    "no such container: {} (it was removed meanwhile)",
                    &id[..12.min(id.len())]
                )))
            }
            other => other,
        }
    }

    fn start_found(&self, c: Container, opts: &StartOptions) -> Result<Started> {
        if c.state == State::Running {
            return Err(Error::Conflict(format!(
                "container {} ({}) is already running",
                c.name,
                c.short_id()
            )));
        }
        let config = self.config(&c)?;
        self.runtime_for(&config)?; // a clear error before anything is spawned
        let dir = self.dir(&c.id);
        if config.open_stdin && !config.tty {
            make_fifo(&dir.join("stdin"))?;
        }
        let mut monitor =
            tracing::debug_span!("spawn monitor").in_scope(|| self.spawn_monitor(&c, opts))?;
        let mut answer = String::new();
        let mut ready = monitor.stdout.take().expect("piped");
        tracing::debug_span!("wait for monitor ready")
            .in_scope(|| ready.read_to_string(&mut answer))
            .ok();
        // Its monitor has it now (its lock keeps prune and recovery away); a monitor that
        // failed to start it may be removing it (`--rm`) and needs the creation lock.
        self.end_creation(&c.id);
        if let Some(rest) = answer.strip_prefix("err ") {
            let _ = monitor.wait();
            let (code, message) = rest.split_once(' ').unwrap_or(("125", rest));
            let message = message.trim().to_string();
            return Err(match code.parse::<i32>() {
                Ok(c @ (126 | 127)) => Error::Runtime(strata_runtime::Error::Exec {
                    message,
                    exit_code: c,
                }),
                _ => Error::Invalid(message),
            });
        }
        if answer.trim() != "ok" {
            let _ = monitor.wait();
            return Err(Error::Corrupt(format!(
                "the monitor of container {} died while starting it; see {}",
                c.short_id(),
                dir.join("monitor.log").display()
            )));
        }
        let container = self.get(&c.id).unwrap_or(c);
        Ok(Started { container, monitor })
    }

    fn spawn_monitor(&self, c: &Container, opts: &StartOptions) -> Result<Child> {
        let log_path = self.dir(&c.id).join("monitor.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .ctx_path("opening", &log_path)?;
        let mut cmd = Command::new(&opts.monitor);
        cmd.arg("--root").arg(self.stores.layers.root());
        cmd.arg("--storage-driver")
            .arg(self.stores.layers.driver().name());
        for o in &self.stores.options.driver_options {
            cmd.arg("--storage-opt").arg(o);
        }
        cmd.arg("__monitor");
        if opts.attach_stdin {
            cmd.arg("--attach-stdin");
        }
        // At debug level its timeline goes with ours (a `--rm` container's monitor.log is
        // removed with it); the price is a stderr held open as long as the container runs.
        let stderr = if tracing::enabled!(tracing::Level::DEBUG) {
            Stdio::inherit()
        } else {
            Stdio::from(log)
        };
        cmd.arg(&c.id)
            .env_remove("STRATA_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // Its own process group: no signal meant for our terminal's foreground (Ctrl-C,
        // a hangup) reaches it, and it outlives us. Not a session of its own, which only a
        // hook run between fork and exec could make: without one, the spawn is a vfork
        // (`posix_spawn`) instead of a fork of this process, cheaper from a large daemon.
        cmd.process_group(0);
        cmd.spawn()
            .ctx(|| format!("running the monitor {}", opts.monitor.display()))
    }
}
