//! Waiting, without polling, for `runc run` to have started a container's command: runc
//! writes its pid file (a temporary file renamed into place) once the command runs, and
//! exits without writing it when the start fails. The monitor sleeps in `poll` on an
//! inotify watch of the bundle directory and on a pidfd of the runc process, whichever
//! comes first.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags, WaitOptions};
use strata_storage::error::IoContext;

use crate::error::{Error, Result};

/// How a launch ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Launch {
    /// The command runs (or ran: it may be over already) with this host pid.
    Started(i32),
    /// runc exited with this code (and was reaped) before starting the command.
    Failed(i32),
}

/// Waits until `pid_file` (in `dir`) appears or the runtime process `runtime_pid` (a child
/// of ours) exits.
pub(crate) fn wait_started(dir: &Path, pid_file: &Path, runtime_pid: i32) -> Result<Launch> {
    let watch =
        inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ctx_path("watching", dir)?;
    inotify::add_watch(&watch, dir, WatchFlags::MOVED_TO | WatchFlags::CLOSE_WRITE)
        .ctx_path("watching", dir)?;
    let pid = Pid::from_raw(runtime_pid)
        .ok_or_else(|| Error::Corrupt(format!("invalid runtime pid {runtime_pid}")))?;
    let exited =
        pidfd_open(pid, PidfdFlags::empty()).ctx(|| "watching the runtime process".into())?;
    loop {
        // Checked after the watch exists: a file renamed in before it is seen here.
        if let Some(pid) = read_pid(pid_file)? {
            return Ok(Launch::Started(pid));
        }
        if readable(&exited)? {
            // It may have written the file just before exiting (a command that ended at once).
            if let Some(pid) = read_pid(pid_file)? {
                return Ok(Launch::Started(pid));
            }
            return Ok(Launch::Failed(reap(pid)?));
        }
        wait_either(&watch, &exited)?;
        drain(&watch);
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

fn readable(fd: &OwnedFd) -> Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    match poll(&mut fds, Some(&rustix::event::Timespec::default())) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(strata_storage::Error::io("polling the runtime process", e.into()).into()),
    }
}

fn wait_either(a: &OwnedFd, b: &OwnedFd) -> Result<()> {
    let mut fds = [PollFd::new(a, PollFlags::IN), PollFd::new(b, PollFlags::IN)];
    match poll(&mut fds, None) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(e) => Err(strata_storage::Error::io("waiting for the runtime", e.into()).into()),
    }
}

/// Empties the inotify queue (non-blocking): only the wake-up mattered.
fn drain(watch: &OwnedFd) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
    while let Ok((n, _)) = rustix::io::read(watch, &mut buf[..]) {
        if n.is_empty() {
            break;
        }
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
