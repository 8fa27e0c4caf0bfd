//! A sha256 of a stream computed on its own thread: the writer only fills buffers, so a
//! commit's copy (reads and writes in the kernel) and its hashing (CPU) overlap instead of
//! adding up.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Bytes handed to the hashing thread at a time.
const BLOCK: usize = 1 << 20;
/// Blocks in flight: enough to ride out scheduling hiccups, little memory.
const DEPTH: usize = 4;

/// Hashes what is written to it; [`HashThread::finish`] gives the digest and byte count.
pub(super) struct HashThread {
    buf: Vec<u8>,
    count: u64,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Sha256>>,
}

impl HashThread {
    pub(super) fn new() -> io::Result<HashThread> {
        let (full, blocks) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let (recycle, empty) = mpsc::sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = std::thread::Builder::new()
            .name("commit-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for block in blocks {
                    hasher.update(&block);
                    // The writer may be gone (an error): the block is then simply dropped.
                    let _ = recycle.try_send(block);
                }
                hasher
            })?;
        Ok(HashThread {
            buf: Vec::with_capacity(BLOCK),
            count: 0,
            full: Some(full),
            empty,
            thread: Some(thread),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(BLOCK),
        };
        let block = std::mem::replace(&mut self.buf, next);
        let gone = || io::Error::other("the hashing thread stopped");
        self.full
            .as_ref()
            .ok_or_else(gone)?
            .send(block)
            .map_err(|_| gone())
    }

    /// The sha256 of everything written, and its length.
    pub(super) fn finish(mut self) -> io::Result<(Digest, u64)> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        drop(self.full.take());
        let thread = self.thread.take().expect("joined once");
        let hasher = thread
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        let digest = format!("sha256:{:x}", hasher.finalize())
            .parse()
            .map_err(io::Error::other)?;
        Ok((digest, self.count))
    }
}

impl Write for HashThread {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.count += n as u64;
        if self.buf.len() == BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for HashThread {
    /// Abandoned on an error path: stop the thread and wait for it.
    fn drop(&mut self) {
        drop(self.full.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_digest_as_one_thread() {
        for len in [0usize, 1, BLOCK - 1, BLOCK, 3 * BLOCK + 17, 9 * BLOCK] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
            let mut h = HashThread::new().unwrap();
            for chunk in data.chunks(8192 + 5) {
                h.write_all(chunk).unwrap();
            }
            assert_eq!(h.finish().unwrap(), (Digest::of_bytes(&data), len as u64));
        }
    }
}
