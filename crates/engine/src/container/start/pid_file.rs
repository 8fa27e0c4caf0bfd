//! Waiting for the runtime to have started a container's command: `runc run` writes its pid
//! file (a temporary file renamed into place) once the command runs, and exits without
//! writing it when the start fails. The monitor sleeps on a pidfd of the runc process, waking
//! every millisecond to look for the pid file. An inotify watch would wake it at the rename
//! instead, but closing an inotify instance waits for an SRCU grace period, which costs more
//! than polling over a whole start (figures in `bench/README.md`).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags, WaitOptions};
use strata_storage::error::IoContext;

use crate::error::{Error, Result};

/// How often the pid file is looked for while runc starts the container.
const POLL_STEP: Duration = Duration::from_millis(1);

/// How a launch ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    /// The command runs (or ran: it may be over already) with this host pid.
    Started(i32),
    /// runc exited with this code (and was reaped) before starting the command.
    Failed(i32),
}

/// Waits until `pid_file` appears or the runtime process `runtime_pid` (a child of ours)
/// exits.
pub(crate) fn wait_started(pid_file: &Path, runtime_pid: i32) -> Result<Launch> {
    let pid = Pid::from_raw(runtime_pid)
        .ok_or_else(|| Error::Corrupt(format!("invalid runtime pid {runtime_pid}")))?;
    let exited =
        pidfd_open(pid, PidfdFlags::empty()).ctx(|| "watching the runtime process".into())?;
    loop {
        if let Some(pid) = read_pid(pid_file)? {
            return Ok(Launch::Started(pid));
        }
        if readable_within(&exited, POLL_STEP)? {
            // It may have written the file just before exiting (a command that ended at once).
            if let Some(pid) = read_pid(pid_file)? {
                return Ok(Launch::Started(pid));
            }
            return Ok(Launch::Failed(reap(pid)?));
        }
    }
}

fn read_pid(path: &Path) -> Result<Option<i32>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse::<i32>()
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(strata_storage::Error::io(format!("reading {}", path.display()), e).into()),
    }
}

/// Whether `fd` becomes readable within `timeout`.
fn readable_within(fd: &OwnedFd, timeout: Duration) -> Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let timeout = Timespec::try_from(timeout).expect("a short timeout fits a timespec");
    match poll(&mut fds, Some(&timeout)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(strata_storage::Error::io("waiting for the runtime", e.into()).into()),
    }
}

/// The exit code of child `pid` (128+N for signal N), reaping it.
fn reap(pid: Pid) -> Result<i32> {
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                return Ok(match status.terminating_signal() {
                    Some(signal) => 128 + signal,
                    None => status.exit_status().unwrap_or(0),
                })
            }
            Ok(None) | Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(strata_storage::Error::io("waiting for the runtime", e.into()).into())
            }
        }
    }
}
