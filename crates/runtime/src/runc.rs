//! Drives an OCI runtime binary (runc, or a compatible one) through its command line.
//!
//! Every call passes `--root <state_root>`, so strata's containers live in their own runtime
//! state directory and never mix with Docker's or anyone else's, and `--log <file>
//! --log-format json`, so a failure is reported with the runtime's own last error line
//! rather than a bare exit status. Exit codes follow Docker: a process killed by signal N is
//! 128+N, a command that is not found is 127, one that cannot be executed 126.

use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};
use serde::Deserialize;

use crate::error::{Error, Result};

/// An OCI runtime binary and the state directory it keeps our containers in.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    pub state_root: PathBuf,
}

/// The standard streams the runtime (and, for `create`, the container) is given.
#[derive(Debug)]
pub struct Io {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Io {
    pub fn inherit() -> Io {
        Io {
            stdin: Stdio::inherit(),
            stdout: Stdio::inherit(),
            stderr: Stdio::inherit(),
        }
    }

    pub fn null() -> Io {
        Io {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }

    /// No input; output captured for messages.
    fn capture() -> Io {
        Io {
            stdin: Stdio::null(),
            stdout: Stdio::piped(),
            stderr: Stdio::piped(),
        }
    }
}

/// A container's lifecycle state as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

/// What `runc state` says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct State {
    pub id: String,
    pub status: Status,
    /// The container's init process on the host; 0 once it has stopped.
    pub pid: i32,
    pub bundle: PathBuf,
}

/// One finished runtime invocation.
struct Call {
    status: ExitStatus,
    stdout: Vec<u8>,
    /// The `msg` of the runtime's last error log line, or its stderr.
    error: Option<String>,
}

impl Runtime {
    /// Finds the runtime `name` (a command looked up in `PATH`, or a path) and creates
    /// `state_root` if needed.
    pub fn find(name: &str, state_root: &Path) -> Result<Runtime> {
        let binary = lookup(name).ok_or_else(|| {
            Error::NotFound(format!(
                "OCI runtime {name} not found in PATH: install it (apt-get install {name}) or pass --runtime"
            ))
        })?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(state_root)
            .map_err(|e| {
                Error::io(
                    format!("creating runtime state dir {}", state_root.display()),
                    e,
                )
            })?;
        Ok(Runtime {
            binary,
            state_root: state_root.to_path_buf(),
        })
    }

    /// Creates the container from `bundle` without starting its command; its init's pid is
    /// written to `pid_file`. With a terminal, the pty master is sent to `console_socket`;
    /// otherwise the container's stdio is `io`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        io: Io,
    ) -> Result<()> {
        let mut args: Vec<&OsStr> = vec!["create".as_ref(), "--bundle".as_ref(), bundle.as_ref()];
        args.extend(["--pid-file".as_ref(), pid_file.as_os_str()]);
        if let Some(socket) = console_socket {
            args.extend(["--console-socket".as_ref(), socket.as_os_str()]);
        }
        args.push(id.as_ref());
        self.checked(id, &args, io).map(drop)
    }

    /// Starts the command of a created container.
    pub fn start(&self, id: &str) -> Result<()> {
        self.checked(id, &["start".as_ref(), id.as_ref()], Io::capture())
            .map(drop)
    }

    /// Creates, starts and waits for the container with the caller's stdio, deletes it, and
    /// returns its exit code (128+N when killed by signal N).
    pub fn run_foreground(&self, id: &str, bundle: &Path) -> Result<i32> {
        let args: [&OsStr; 4] = [
            "run".as_ref(),
            "--bundle".as_ref(),
            bundle.as_ref(),
            id.as_ref(),
        ];
        let call = self.call(id, &args, Io::inherit())?;
        match call.error {
            Some(message) if !call.status.success() => Err(self.failure(id, "run", message)),
            _ => Ok(exit_code(call.status)),
        }
    }

    /// Spawns `run` (no `--detach`): one runtime process that creates the container, starts
    /// its command with `io` as its stdio, waits for it, deletes it (state and cgroups) and
    /// exits with its exit code (128+N when killed by signal N). That is one runtime
    /// invocation where `create`, `start` and `delete` take three. The container's pid is
    /// written to `pid_file` once its command runs: until then it has not started, and an
    /// exit of the runtime before that is a failure to start ([`Runtime::run_failure`]).
    pub fn spawn_run(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        io: Io,
    ) -> Result<RunProcess> {
        let (child, log) = self.spawn_logged(
            id,
            ["run".as_ref(), "--bundle".as_ref(), bundle.as_os_str()],
            pid_file,
            io,
        )?;
        Ok(RunProcess {
            pid: child.id() as i32,
            id: id.to_string(),
            log,
        })
    }

    /// Spawns `runc COMMAND ARG ARG --pid-file PID_FILE ID` with `io` as its stdio and its
    /// errors in a log file of its own (read back by [`last_error`]).
    fn spawn_logged(
        &self,
        id: &str,
        command: [&OsStr; 3],
        pid_file: &Path,
        io: Io,
    ) -> Result<(std::process::Child, LogFile)> {
        let log = LogFile::new(&self.state_root, id);
        let child = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(&log.0)
            .args(["--log-format", "json"])
            .args(command)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .stdin(io.stdin)
            .stdout(io.stdout)
            .stderr(io.stderr)
            .spawn()
            .map_err(|e| Error::io(format!("running {}", self.binary.display()), e))?;
        Ok((child, log))
    }

    /// The error of a [`Runtime::spawn_run`] whose runtime process ended with `code` before
    /// the container's command started (127 for a command not found, as `create` gives).
    pub fn run_failure(&self, run: &RunProcess, code: i32) -> Error {
        let message = last_error(&run.log.0)
            .unwrap_or_else(|| format!("exited with status {code} before starting the container"));
        self.failure(&run.id, "run", message)
    }

    /// Sends `signal` to the container's init, or to all its processes with `all`.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let signal = signal.to_string();
        let mut args: Vec<&OsStr> = vec!["kill".as_ref()];
        if all {
            args.push("--all".as_ref());
        }
        args.extend([OsStr::new(id), OsStr::new(&signal)]);
        self.checked(id, &args, Io::capture()).map(drop)
    }

    /// Freezes every process of the running container (its cgroup freezer): they stay in
    /// memory but run no instruction until [`Runtime::resume`].
    pub fn pause(&self, id: &str) -> Result<()> {
        self.checked(id, &["pause".as_ref(), id.as_ref()], Io::capture())
            .map(drop)
    }

    /// Thaws a container frozen by [`Runtime::pause`].
    pub fn resume(&self, id: &str) -> Result<()> {
        self.checked(id, &["resume".as_ref(), id.as_ref()], Io::capture())
            .map(drop)
    }

    /// Deletes a stopped container (any container with `force`, killing it first), removing
    /// its runtime state and cgroups.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut args: Vec<&OsStr> = vec!["delete".as_ref()];
        if force {
            args.push("--force".as_ref());
        }
        args.push(id.as_ref());
        self.checked(id, &args, Io::capture()).map(drop)
    }

    /// Removes the per-call logs of container `id` left by runtime processes whose caller
    /// died (a [`RunProcess`] removes its own when dropped).
    pub fn remove_logs(&self, id: &str) {
        let prefix = format!(".log-{id}-");
        let Ok(dir) = std::fs::read_dir(&self.state_root) else {
            return;
        };
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The container's state.
    pub fn state(&self, id: &str) -> Result<State> {
        let out = self.checked(id, &["state".as_ref(), id.as_ref()], Io::capture())?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            message: format!("{}: unreadable state of container {id}: {e}", self.name()),
        })
    }

    /// Every container in our state directory.
    pub fn list(&self) -> Result<Vec<State>> {
        let args: [&OsStr; 3] = ["list".as_ref(), "--format".as_ref(), "json".as_ref()];
        let out = self.checked("", &args, Io::capture())?;
        let list: Option<Vec<State>> =
            serde_json::from_slice(&out).map_err(|e| Error::Runtime {
                message: format!("{}: unreadable container list: {e}", self.name()),
            })?;
        Ok(list.unwrap_or_default())
    }

    /// Runs the process described by the OCI process JSON at `process` in the running
    /// container, with the caller's stdio. Returns its exit code, or 0 at once with `detach`.
    pub fn exec(&self, id: &str, process: &Path, detach: bool) -> Result<i32> {
        let mut args: Vec<&OsStr> = vec!["exec".as_ref(), "--process".as_ref(), process.as_ref()];
        if detach {
            args.push("--detach".as_ref());
        }
        args.push(id.as_ref());
        let call = self.call(id, &args, Io::inherit())?;
        match call.error {
            Some(message) if !call.status.success() => Err(self.failure(id, "exec", message)),
            _ => Ok(exit_code(call.status)),
        }
    }

    /// Starts the process at `process` in the running container with `io` as its stdio,
    /// its pid written to `pid_file`; the returned runtime process waits for it and exits
    /// with its code. For callers that relay the streams themselves (the API's exec).
    pub fn spawn_exec(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        io: Io,
    ) -> Result<ExecProcess> {
        let (child, log) = self.spawn_logged(
            id,
            ["exec".as_ref(), "--process".as_ref(), process.as_os_str()],
            pid_file,
            io,
        )?;
        Ok(ExecProcess {
            child,
            id: id.to_string(),
            log,
            runtime: self.clone(),
        })
    }

    /// Starts the process at `process` (which asks for a terminal) in the running container
    /// detached, sending its pty master to `console_socket` and writing its pid to
    /// `pid_file`; the caller relays the terminal and waits for the process (as a subreaper).
    pub fn exec_with_console(
        &self,
        id: &str,
        process: &Path,
        console_socket: &Path,
        pid_file: &Path,
    ) -> Result<()> {
        let args: [&OsStr; 9] = [
            "exec".as_ref(),
            "--process".as_ref(),
            process.as_ref(),
            "--detach".as_ref(),
            "--console-socket".as_ref(),
            console_socket.as_ref(),
            "--pid-file".as_ref(),
            pid_file.as_ref(),
            id.as_ref(),
        ];
        self.checked(id, &args, Io::null()).map(drop)
    }

    /// Runs the runtime and turns a failure into an error.
    fn checked(&self, id: &str, args: &[&OsStr], io: Io) -> Result<Vec<u8>> {
        let verb = args[0].to_string_lossy().into_owned();
        let call = self.call(id, args, io)?;
        if call.status.success() {
            return Ok(call.stdout);
        }
        let message = call
            .error
            .unwrap_or_else(|| format!("exited with {}", call.status));
        Err(self.failure(id, &verb, message))
    }

    fn call(&self, id: &str, args: &[&OsStr], io: Io) -> Result<Call> {
        let log = LogFile::new(&self.state_root, id);
        let output = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(&log.0)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(io.stdin)
            .stdout(io.stdout)
            .stderr(io.stderr)
            .output()
            .map_err(|e| Error::io(format!("running {}", self.binary.display()), e))?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let error = last_error(&log.0).or((!stderr.is_empty()).then_some(stderr));
        Ok(Call {
            status: output.status,
            stdout: output.stdout,
            error,
        })
    }

    /// Classifies the runtime's message: a command that cannot be executed, a container that
    /// does not exist, or a runtime failure.
    fn failure(&self, id: &str, verb: &str, message: String) -> Error {
        if let Some((command, why)) = exec_failure(&message) {
            let exit_code = if why.contains("permission denied") {
                126
            } else {
                127
            };
            return Error::Exec {
                message: format!("container {id}: cannot run {command:?}: {why}"),
                exit_code,
            };
        }
        if message.contains("does not exist") {
            return Error::NotFound(format!(
                "container {id} does not exist in {} state {}",
                self.name(),
                self.state_root.display()
            ));
        }
        Error::Runtime {
            message: format!("{} {verb} {id}: {message}", self.name()),
        }
    }

    fn name(&self) -> String {
        let name = self.binary.file_name().unwrap_or(self.binary.as_os_str());
        name.to_string_lossy().into_owned()
    }
}

/// An exec started by [`Runtime::spawn_exec`]: take the child's pipes, then [`wait`].
///
/// [`wait`]: ExecProcess::wait
#[derive(Debug)]
pub struct ExecProcess {
    pub child: std::process::Child,
    id: String,
    log: LogFile,
    runtime: Runtime,
}

impl ExecProcess {
    /// The command's exit code (128+N when killed by signal N), or the runtime's error
    /// when the command could not run (126 or 127 for a command not executable or found).
    pub fn wait(mut self) -> Result<i32> {
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("waiting for {} exec", self.runtime.name()), e))?;
        if !status.success() {
            if let Some(message) = last_error(&self.log.0) {
                return Err(self.runtime.failure(&self.id, "exec", message));
            }
        }
        Ok(exit_code(status))
    }
}

/// A runtime process started by [`Runtime::spawn_run`]: the caller waits for `pid` (its
/// child) itself; the runtime's log is kept until this is dropped, for error messages.
#[derive(Debug)]
pub struct RunProcess {
    pub pid: i32,
    id: String,
    log: LogFile,
}

/// Waits for `pid` (a child, or a descendant when we are its subreaper) and returns its exit
/// code, 128+N for a process killed by signal N.
pub fn wait_exit_code(pid: i32) -> Result<i32> {
    let target =
        Pid::from_raw(pid).ok_or_else(|| Error::Invalid(format!("invalid process id {pid}")))?;
    loop {
        match rustix::process::waitpid(Some(target), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                return Ok(match status.terminating_signal() {
                    Some(signal) => 128 + signal,
                    None => status.exit_status().unwrap_or(0),
                })
            }
            Ok(None) => continue,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::io(format!("waiting for process {pid}"), e.into())),
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(125)
}

/// `exec: "cmd": why` in a runtime message: the command and the reason it could not run.
fn exec_failure(message: &str) -> Option<(String, String)> {
    let rest = &message[message.find("exec: \"")? + 7..];
    let (command, why) = rest.split_once("\": ")?;
    let cannot_run = [
        "executable file not found",
        "no such file or directory",
        "permission denied",
    ];
    cannot_run
        .iter()
        .any(|c| why.contains(c))
        .then(|| (command.to_string(), why.to_string()))
}

/// The `msg` of the last `error`/`fatal` line of a runtime's JSON log.
fn last_error(log: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .find(|l| l.level == "error" || l.level == "fatal")
        .map(|l| l.msg)
}

fn lookup(name: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        return executable(Path::new(name)).then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// A per-call log file beside the runtime's state (a plain file, which `runc list` skips),
/// removed when the call is done.
#[derive(Debug)]
struct LogFile(PathBuf);

impl LogFile {
    fn new(state_root: &Path, id: &str) -> LogFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!(".log-{id}-{}-{n}", std::process::id());
        LogFile(state_root.join(name))
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_name_the_command() {
        let msg = r#"runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH"#;
        let (cmd, why) = exec_failure(msg).unwrap();
        assert_eq!(cmd, "nope");
        assert!(why.starts_with("executable file not found"));
        assert!(exec_failure("runc create failed: cgroup busy").is_none());
    }

    #[test]
    fn a_missing_runtime_says_how_to_get_one() {
        let dir = std::env::temp_dir();
        let err = Runtime::find("no-such-runtime-xyz", &dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OCI runtime no-such-runtime-xyz not found in PATH"),
            "{err}"
        );
    }
}
