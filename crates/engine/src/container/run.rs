//! Running containers from the CLI's side: `start` (spawning the monitor, see
//! [`super::monitor`]), `stop`, `kill`, `wait`, and the recovery of containers whose monitor
//! died. The state of record is the `containers` row, which only the monitor (or recovery,
//! holding the dead monitor's lock) moves to `running` and `exited`.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use strata_runtime::Runtime;
use strata_storage::error::IoContext;

use super::{now_nanos, store, Container, ContainerConfig, State};
use crate::error::{Error, Result};
use crate::Engine;

/// How `start` runs the monitor.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// The strata binary, run as `strata __monitor`.
    pub monitor: PathBuf,
    /// The caller will write the container's stdin into its FIFO ([`Engine::stdin_fifo`]),
    /// or, for a container with a terminal, attach to it ([`Engine::attach_terminal`]).
    pub attach_stdin: bool,
}

/// A started container and its monitor (a child of ours until we exit; wait for it to
/// know the container has exited and been cleaned up).
pub struct Started {
    pub container: Container,
    pub monitor: Child,
}

/// How often waits poll the record.
const POLL: Duration = Duration::from_millis(10);

impl Engine {
    /// `start`: spawns the container's monitor and returns once the process runs (or the
    /// start failed: then the error is the runtime's, with 127 for a missing command).
    pub fn start_container(&self, name_or_id: &str, opts: &StartOptions) -> Result<Started> {
        let c = self.container(name_or_id)?;
        if c.state == State::Running {
            return Err(Error::Conflict(format!(
                "container {} ({}) is already running",
                c.name,
                c.short_id()
            )));
        }
        let config = self.container_config(&c)?;
        self.runtime_for(&config)?; // a clear error before anything is spawned
        let dir = self.container_dir(&c.id);
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
        let container = self.container(&c.id).unwrap_or(c);
        Ok(Started { container, monitor })
    }

    fn spawn_monitor(&self, c: &Container, opts: &StartOptions) -> Result<Child> {
        let log_path = self.container_dir(&c.id).join("monitor.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .ctx_path("opening", &log_path)?;
        let mut cmd = Command::new(&opts.monitor);
        cmd.arg("--root").arg(self.layers.root());
        cmd.arg("--storage-driver").arg(self.layers.driver().name());
        for o in &self.options.driver_options {
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
        // (`posix_spawn`) instead of a fork of this process, a millisecond less from a daemon.
        cmd.process_group(0);
        Ok(cmd
            .spawn()
            .ctx(|| format!("running the monitor {}", opts.monitor.display()))?)
    }

    /// The FIFO `-i` containers read their stdin from, created if missing.
    pub fn stdin_fifo(&self, c: &Container) -> Result<PathBuf> {
        let path = self.container_dir(&c.id).join("stdin");
        make_fifo(&path)?;
        Ok(path)
    }

    /// The json-file log of a container.
    pub fn log_path(&self, c: &Container) -> PathBuf {
        super::logs::log_path(&self.container_dir(&c.id), &c.id)
    }

    /// `stop`: SIGTERM, then SIGKILL after `timeout`; returns the container as it ended.
    pub fn stop_container(&self, name_or_id: &str, timeout: Duration) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != State::Running {
            return Ok(c);
        }
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        let _ = runtime.kill(&c.id, strata_sys::signal::SIGTERM, false);
        if let Some(done) = self.wait_stopped(&c.id, timeout)? {
            return Ok(done);
        }
        let _ = runtime.kill(&c.id, strata_sys::signal::SIGKILL, true);
        self.wait_stopped(&c.id, Duration::from_secs(30))?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "container {} did not stop after SIGKILL",
                    c.short_id()
                ))
            })
    }

    /// `kill -s SIGNAL`.
    pub fn kill_container(&self, name_or_id: &str, signal: i32) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != State::Running {
            return Err(Error::Conflict(format!(
                "cannot kill container {} ({}): it is not running",
                c.name,
                c.short_id()
            )));
        }
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        runtime.kill(&c.id, signal, false)?;
        Ok(c)
    }

    /// `wait`: blocks until the container is not running (nor about to be); its exit code.
    pub fn wait_container(&self, name_or_id: &str) -> Result<i64> {
        let c = self.container(name_or_id)?;
        loop {
            match self.layers.read(|conn| store::get(conn, &c.id))? {
                Some(now) if matches!(now.state, State::Exited | State::Dead) => {
                    return Ok(now.exit_code.unwrap_or(0))
                }
                Some(now) if now.state == State::Created && !self.monitor_alive(&c.id) => {
                    return Ok(now.exit_code.unwrap_or(0))
                }
                Some(_) => std::thread::sleep(POLL),
                None => return Err(super::store::not_found(name_or_id)),
            }
        }
    }

    /// Polls until container `id` left `running` and its monitor finished (or `timeout`).
    pub(super) fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<Option<Container>> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.layers.read(|conn| store::get(conn, id))?;
            let stopped = now.as_ref().is_none_or(|c| c.state != State::Running);
            if stopped && !self.monitor_alive(id) {
                return Ok(Some(now.unwrap_or_else(|| gone(id))));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether a monitor holds container `id`'s lock.
    pub(crate) fn monitor_alive(&self, id: &str) -> bool {
        let dir = self.container_dir(id);
        // No directory, no lock file: no monitor.
        dir.is_dir() && matches!(monitor_lock(&dir, false), Ok(None))
    }

    /// The runtime a container runs with (its state kept under `<root>/runtime/<name>`).
    pub(crate) fn runtime_for(&self, config: &ContainerConfig) -> Result<Runtime> {
        let name = config.runtime_name();
        let base = Path::new(name).file_name().unwrap_or(name.as_ref());
        let state = self.layers.root().join("runtime").join(base);
        Ok(Runtime::find(name, &state)?)
    }

    /// Kills a running container and waits for its monitor (for `rm -f`).
    pub(crate) fn kill_and_wait(&self, c: &Container) -> Result<()> {
        if let Ok(runtime) = self.runtime_for(&self.container_config(c)?) {
            let _ = runtime.kill(&c.id, strata_sys::signal::SIGKILL, true);
        }
        if self.wait_stopped(&c.id, Duration::from_secs(30))?.is_none() {
            return Err(Error::Conflict(format!(
                "container {} is still running after SIGKILL",
                c.short_id()
            )));
        }
        Ok(())
    }

    /// At open: a `running` container whose monitor is gone is killed if its process
    /// survived (137), else recorded with 255 (the code is lost); its runtime state is
    /// deleted and its layer unmounted, so the record is true and `rm` has nothing extra.
    pub(crate) fn recover_running(&self, c: &Container) -> Result<()> {
        let Some(_lock) = monitor_lock(&self.container_dir(&c.id), false)? else {
            return Ok(()); // its monitor is alive
        };
        let Some(now) = self.layers.read(|conn| store::get(conn, &c.id))? else {
            return Ok(());
        };
        if now.state != State::Running {
            return Ok(()); // the monitor finished between our listing and the lock
        }
        tracing::warn!(
            "the monitor of container {} ({}) is gone: recording it as exited",
            c.name,
            c.short_id()
        );
        let mut code = 255;
        if let Ok(runtime) = self.runtime_for(&self.container_config(c)?) {
            if let Ok(state) = runtime.state(&c.id) {
                if state.status == strata_runtime::Status::Running {
                    code = 137;
                }
            }
            delete_runtime_state(&runtime, &c.id);
        }
        if let Err(e) = self.layers.unmount_rw(&c.rw_layer, false) {
            tracing::warn!("unmounting container {}: {e}", c.short_id());
        }
        self.layers
            .write(|tx| store::set_exited(tx.sql(), &c.id, code, now_nanos()))
    }
}

fn gone(id: &str) -> Container {
    Container {
        id: id.into(),
        name: String::new(),
        image: String::new(),
        rw_layer: id.into(),
        created: 0,
        state: State::Exited,
        pid: None,
        exit_code: None,
        started_at: None,
        finished_at: None,
    }
}

/// `containers/<id>/monitor.lock`, taken exclusively; `None` if someone holds it (or, for
/// `wait`, it was taken when `block`).
pub(crate) fn monitor_lock(dir: &Path, block: bool) -> Result<Option<File>> {
    let path = dir.join("monitor.lock");
    let file = match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
    {
        Ok(f) => f,
        // No directory: no monitor either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(strata_storage::Error::io(format!("opening {}", path.display()), e).into())
        }
    };
    let op = if block {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match flock(&file, op) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => {
            Err(strata_storage::Error::io(format!("locking {}", path.display()), e.into()).into())
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

pub(crate) fn make_fifo(path: &Path) -> Result<()> {
    match rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(strata_storage::Error::io(
            format!("creating FIFO {}", path.display()),
            e.into(),
        )
        .into()),
    }
}
