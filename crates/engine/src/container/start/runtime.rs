//! Steps 5 and 7 of a start, the runtime's: [`create`] then [`start`], or both at once with
//! [`run`] when nothing runs between them; and the container's streams, which the monitor
//! copies into the json-file log (for a terminal, through the relay of [`super::super::tty`]).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use strata_runtime::{Io, Runtime};
use strata_storage::error::IoContext;

use super::super::{logs, tty, Container, ContainerConfig};
use super::pid_file::{self, Launch};
use super::Attach;
use crate::error::Result;

/// Where a container's output goes, and where its input comes from.
pub(super) struct Streams {
    dir: PathBuf,
    log_path: PathBuf,
    log: Arc<Mutex<File>>,
    open_stdin: bool,
    attach: Attach,
}

impl Streams {
    /// Opens the container's json-file log.
    pub(super) fn open(
        dir: &Path,
        c: &Container,
        config: &ContainerConfig,
        attach: Attach,
    ) -> Result<Streams> {
        let log_path = logs::log_path(dir, &c.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log_path)
            .ctx_path("opening", &log_path)?;
        Ok(Streams {
            dir: dir.to_path_buf(),
            log_path,
            log: Arc::new(Mutex::new(log)),
            open_stdin: config.open_stdin,
            attach,
        })
    }

    /// Without a terminal: pipes for stdout and stderr, copied into the log, and stdin
    /// from the FIFO with `-i`.
    fn pipes(self) -> Result<(Io, Vec<JoinHandle<()>>)> {
        let log_path = &self.log_path;
        let (out_r, out_w) = std::io::pipe().ctx_path("creating a pipe for", log_path)?;
        let (err_r, err_w) = std::io::pipe().ctx_path("creating a pipe for", log_path)?;
        let copiers = vec![
            {
                let log = self.log.clone();
                std::thread::spawn(move || logs::copy_stream(out_r, "stdout", log))
            },
            {
                let log = self.log.clone();
                std::thread::spawn(move || logs::copy_stream(err_r, "stderr", log))
            },
        ];
        let stdin = if self.open_stdin {
            let fifo = self.dir.join("stdin");
            super::super::run::make_fifo(&fifo)?;
            // Read-only blocks until the attached CLI opens its end (and gives EOF when it
            // closes it); read-write keeps stdin open with nobody writing, as `-d -i` does.
            let file = OpenOptions::new()
                .read(true)
                .write(!self.attach.stdin)
                .open(&fifo)
                .ctx_path("opening", &fifo)?;
            Stdio::from(file)
        } else {
            Stdio::null()
        };
        let io = Io {
            stdin,
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
        };
        Ok((io, copiers))
    }
}

/// Steps 5-7 as one `runc run`, for a container without a terminal: returns once runc's pid
/// file shows the command runs. The container's pid, runc's (whose exit status is the
/// container's), and the log copiers.
pub(super) fn run(
    runtime: &Runtime,
    id: &str,
    bundle: &Path,
    streams: Streams,
) -> Result<(i32, i32, Vec<JoinHandle<()>>)> {
    let (io, copiers) = streams.pipes()?;
    let pid_file = bundle.join("pid");
    // A pid file left by an earlier start would read as this one having started.
    remove_if_present(&pid_file)?;
    let run = runtime.spawn_run(id, bundle, &pid_file, io)?;
    match pid_file::wait_started(&pid_file, run.pid)? {
        Launch::Started(pid) => Ok((pid, run.pid, copiers)),
        Launch::Failed(code) => Err(runtime.run_failure(&run, code).into()),
    }
}

/// A container the runtime created: its init's pid, and the log copiers (or the relay).
pub(super) struct Created {
    pub pid: i32,
    pub copiers: Vec<JoinHandle<()>>,
}

/// Step 5: `runc create`. With a terminal the runtime sends the pty master, whose relay
/// starts before the container runs, so no output is lost; the first client to attach gets
/// it from the first byte when the starter attaches (`Attach::stdin`).
pub(super) fn create(
    runtime: &Runtime,
    id: &str,
    bundle: &Path,
    tty: bool,
    streams: Streams,
) -> Result<Created> {
    let pid_file = bundle.join("pid");
    let copiers = if tty {
        let console = tty::ConsoleSocket::new()?;
        runtime.create(id, bundle, &pid_file, Some(console.path()), Io::null())?;
        let master = console.receive()?;
        let relay = tty::Relay::listen(&streams.dir)?;
        vec![relay.spawn(master, streams.log, streams.attach.stdin)]
    } else {
        let (io, copiers) = streams.pipes()?;
        runtime.create(id, bundle, &pid_file, None, io)?;
        copiers
    };
    let pid = tty::read_pid(&pid_file)?;
    Ok(Created { pid, copiers })
}

/// Step 7: `runc start` of the created container.
pub(super) fn start(runtime: &Runtime, id: &str) -> Result<()> {
    Ok(runtime.start(id)?)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(strata_storage::Error::io(format!("removing {}", path.display()), e).into())
        }
        _ => Ok(()),
    }
}
