//! `strata __monitor ID` (hidden): the per-container monitor the engine spawns; it runs in
//! `strata_engine::container::monitor`.

use clap::Args;
use strata_engine::EngineOptions;

#[derive(Args)]
pub struct MonitorArgs {
    #[arg(long)]
    pub attach_stdin: bool,
    pub id: String,
}

/// `strata __monitor ID`: stdout is the ready pipe to the starter; it is moved to another
/// descriptor and /dev/null put in its place, so nothing else writes into the pipe.
pub fn monitor(options: &EngineOptions, args: &MonitorArgs) -> i32 {
    use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
    let stdout = std::io::stdout();
    let ready = match rustix::io::fcntl_dupfd_cloexec(stdout.as_fd(), 3) {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return 125,
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let mut fd1 = unsafe { rustix::fd::OwnedFd::from_raw_fd(1) };
        let _ = rustix::io::dup2(&null, &mut fd1);
        let _ = fd1.into_raw_fd();
    }
    strata_engine::container::monitor::run(options, &args.id, args.attach_stdin, ready)
}
