//! Early writeback. A layer is made durable by one `syncfs` once it is complete; with nothing
//! written to disk before that (the kernel's own writeback waits for seconds or for gigabytes
//! of dirty pages), that final sync starts from zero and the whole disk write is serial after
//! the apply. Here a background thread calls `syncfs` every [`BATCH`] bytes applied, so the
//! disk works while the archive is still being parsed and the final sync finds little left.

use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use rustix::fs::{self as rfs, Mode, OFlags};

use crate::fs::Root;

/// Bytes of file data between two background syncs.
const BATCH: u64 = 32 << 20;

pub(super) struct Writeback {
    /// A readable fd on the target's filesystem (`syncfs` refuses `O_PATH` fds); `None` if it
    /// could not be opened: then nothing is started early, and nothing else changes.
    fs: Option<OwnedFd>,
    pending: u64,
    running: Option<JoinHandle<()>>,
}

impl Writeback {
    pub(super) fn new(root: &Root) -> Self {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Writeback {
            fs: rfs::openat(root.as_fd(), ".", flags, Mode::empty()).ok(),
            pending: 0,
            running: None,
        }
    }

    /// Counts `bytes` of data written; starts a background sync when a batch is due and the
    /// previous one is done.
    pub(super) fn wrote(&mut self, bytes: u64) {
        self.pending += bytes;
        if self.pending < BATCH || self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some(fd) = self.fs.as_ref().and_then(|fd| fd.try_clone().ok()) else {
            return;
        };
        self.pending = 0;
        // Best effort: the final sync reports any error that matters.
        self.running = Some(std::thread::spawn(move || {
            let _ = rfs::syncfs(&fd);
        }));
    }
}

impl Drop for Writeback {
    /// The caller's own sync comes next; do not leave a thread behind it.
    fn drop(&mut self) {
        if let Some(thread) = self.running.take() {
            let _ = thread.join();
        }
    }
}
