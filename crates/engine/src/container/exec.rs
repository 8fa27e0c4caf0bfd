//! `exec`: another process in a running container, through the OCI runtime's own `exec`.
//!
//! The process is the container's main process as its spec describes it
//! ([`ContainerSpec::process`]: capabilities, rlimits, no-new-privileges) with the command,
//! environment, working directory, user and terminal of the exec. The user is resolved
//! against the container's own `/etc/passwd` and `/etc/group` (fd-relative in its root).

use std::path::PathBuf;

use strata_runtime::{resolve_user, ContainerSpec, Runtime};
use strata_storage::error::IoContext;

use super::tty::{self, TerminalProcess};
use crate::error::{Error, Result};
use crate::{Engine, State};

/// The OCI runtime used when a container does not name one.
pub const DEFAULT_RUNTIME: &str = "runc";

/// What `exec` runs, beyond the command.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// `-e NAME=VALUE`, added to (and overriding by name) the container's environment.
    pub env: Vec<String>,
    /// `-w`: the working directory (the container's otherwise).
    pub workdir: Option<String>,
    /// `-u`: user (the container's otherwise).
    pub user: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-d`: return once started.
    pub detach: bool,
}

impl Engine {
    /// The state directory the OCI runtime keeps strata's containers in:
    /// `<root>/runtime/<runtime>`. Every runtime call (monitor, exec, kill) uses this one.
    pub fn runtime_state_root(&self) -> PathBuf {
        self.layers.root().join("runtime").join(DEFAULT_RUNTIME)
    }

    /// `exec CONTAINER CMD...`: runs `argv` in the running container with the caller's
    /// standard streams; its exit code (0 at once with `detach`). A command that cannot be
    /// run is a [`strata_runtime::Error::Exec`] with Docker's 126 or 127.
    pub fn exec(&self, container: &str, argv: &[String], options: &ExecOptions) -> Result<i32> {
        let (c, runtime, path) = self.exec_process(container, argv, options)?;
        let result = runtime.exec(&c.id, &path, options.detach);
        let _ = std::fs::remove_file(&path);
        Ok(result?)
    }

    /// Starts `argv` in the running container with `io` as its stdio, for a caller that
    /// relays the streams (the API); [`SpawnedExec::wait`] gives its exit code.
    pub fn spawn_exec(
        &self,
        container: &str,
        argv: &[String],
        options: &ExecOptions,
        io: strata_runtime::Io,
    ) -> Result<SpawnedExec> {
        let (c, runtime, path) = self.exec_process(container, argv, options)?;
        let pid_file = path.with_extension("pid");
        match runtime.spawn_exec(&c.id, &path, &pid_file, io) {
            Ok(process) => Ok(SpawnedExec {
                process,
                files: [path, pid_file],
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e.into())
            }
        }
    }

    /// `exec -t`: starts `argv` in the running container on a new terminal whose master is
    /// returned for the caller to relay (see [`super::tty`]). Makes the calling process a
    /// child subreaper, so the process can be waited for with [`TerminalProcess::wait`].
    pub fn exec_terminal(
        &self,
        container: &str,
        argv: &[String],
        options: &ExecOptions,
    ) -> Result<TerminalProcess> {
        let options = ExecOptions {
            tty: true,
            ..options.clone()
        };
        let (c, runtime, path) = self.exec_process(container, argv, &options)?;
        let pid_file = path.with_extension("pid");
        let started = tty::ConsoleSocket::new().and_then(|console| {
            tty::become_subreaper()?;
            runtime.exec_with_console(&c.id, &path, console.path(), &pid_file)?;
            let master = console.receive()?;
            let pid = tty::read_pid(&pid_file)?;
            Ok(TerminalProcess {
                master: master.into(),
                pid,
            })
        });
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&pid_file);
        started
    }

    /// Checks the container runs and writes the OCI process of the exec into its directory
    /// (`exec-<random>.json`, for the caller to remove).
    fn exec_process(
        &self,
        container: &str,
        argv: &[String],
        options: &ExecOptions,
    ) -> Result<(crate::Container, Runtime, PathBuf)> {
        let c = self.container(container)?;
        if c.state != State::Running {
            return Err(Error::Conflict(format!(
                "container {} is not running (it is {}); start it first (strata start {})",
                c.name,
                c.state.as_str(),
                c.name
            )));
        }
        if argv.is_empty() {
            return Err(Error::Invalid("exec needs a command to run".into()));
        }
        let config = self.container_config(&c)?;
        let runtime = Runtime::find(DEFAULT_RUNTIME, &self.runtime_state_root())?;
        let rootfs = self.layers.mount_rw(&c.rw_layer)?;
        let spec = exec_spec(&c.id, rootfs, &config, argv, options);
        let released = self.layers.unmount_rw(&c.rw_layer, false);
        let mut spec = spec?;
        released?;
        if options.tty && !spec.env.iter().any(|e| e.starts_with("TERM=")) {
            spec.env.push("TERM=xterm".into());
        }
        let process = spec.process()?;
        let dir = self.container_dir(&c.id);
        let suffix = strata_sys::id::random_hex(8, "an exec process file")?;
        let path = dir.join(format!("exec-{suffix}.json"));
        let json = serde_json::to_vec(&process).expect("a process serialises");
        std::fs::write(&path, json).ctx_path("writing the exec process", &path)?;
        Ok((c, runtime, path))
    }
}

/// The container's spec with the exec's command, environment, directory, user and terminal.
fn exec_spec(
    id: &str,
    rootfs: PathBuf,
    config: &crate::ContainerConfig,
    argv: &[String],
    options: &ExecOptions,
) -> Result<ContainerSpec> {
    let user = options
        .user
        .clone()
        .or(config.user.clone())
        .unwrap_or_default();
    // No user is root, looked up like any other so that HOME comes from its passwd entry.
    let user = resolve_user(&rootfs, if user.is_empty() { "0" } else { &user })?;
    let mut spec = ContainerSpec::new(id, rootfs, argv.to_vec());
    for e in config.env.iter().chain(&options.env) {
        let key = e.split('=').next().unwrap_or(e);
        spec.env.retain(|old| old.split('=').next() != Some(key));
        // `-e NAME` without a value takes it from the caller's environment, as Docker.
        match (e.contains('='), std::env::var(e)) {
            (false, Ok(value)) => spec.env.push(format!("{e}={value}")),
            (false, Err(_)) => {}
            (true, _) => spec.env.push(e.clone()),
        }
    }
    if !spec.env.iter().any(|e| e.starts_with("HOME=")) {
        let home = user.home.clone().unwrap_or_else(|| "/".into());
        spec.env.push(format!("HOME={home}"));
    }
    spec.user = user;
    let workdir = options.workdir.clone().or(config.workdir.clone());
    spec.cwd = PathBuf::from(workdir.unwrap_or_else(|| "/".into()));
    if !spec.cwd.is_absolute() {
        return Err(Error::Invalid(format!(
            "exec -w {}: the working directory must be an absolute path",
            spec.cwd.display()
        )));
    }
    spec.terminal = options.tty;
    Ok(spec)
}

/// An exec started by [`Engine::spawn_exec`].
pub struct SpawnedExec {
    /// Take its `child`'s stdin, stdout and stderr to relay them.
    pub process: strata_runtime::ExecProcess,
    /// The process JSON and the pid file, removed after the wait.
    files: [PathBuf; 2],
}

impl SpawnedExec {
    /// The exec's pid in the host's namespace, once the runtime wrote it.
    pub fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.files[1]).ok()?;
        text.trim().parse().ok()
    }

    /// Waits for the command; its exit code, or the error that kept it from running.
    pub fn wait(self) -> Result<i32> {
        let SpawnedExec { process, files } = self;
        let code = process.wait();
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        Ok(code?)
    }
}
