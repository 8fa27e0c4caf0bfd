//! Early writeback. A new layer is made durable by one `syncfs` once it is complete; with
//! nothing written to disk before that (the kernel's own writeback waits for seconds or for
//! gigabytes of dirty pages), that sync starts from zero and the whole disk write comes after
//! the work, serially. While a layer is being written (applied from a tar, or copied by a
//! commit), a background thread calls `syncfs` on its filesystem every [`PERIOD`], so the disk
//! works alongside and the final sync finds little left.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::fs::{self as rfs, Mode, OFlags};

const PERIOD: Duration = Duration::from_millis(100);

/// Syncs a filesystem in the background until dropped.
pub struct Writeback {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Starts syncing the filesystem of directory `dir` (best effort: if it cannot be opened
    /// nothing starts, and the caller's final sync does all the work as before).
    pub fn start(dir: BorrowedFd<'_>) -> Writeback {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        // `syncfs` refuses `O_PATH` descriptors: open the directory for reading.
        let Ok(fs) = rfs::openat(dir, ".", flags, Mode::empty()) else {
            return Writeback {
                stop: None,
                thread: None,
            };
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || sync_until(fs, stopped));
        Writeback {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

fn sync_until(fs: OwnedFd, stopped: mpsc::Receiver<()>) {
    // The first sync waits a period: a small layer is done before it and costs nothing.
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
        // Errors are the final sync's to report.
        let _ = rfs::syncfs(fs.as_fd());
    }
}

impl Drop for Writeback {
    /// Stops the thread (waiting out a sync in progress, which the caller's own final sync
    /// would wait for anyway).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
