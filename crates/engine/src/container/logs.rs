//! Docker's json-file log, `containers/<id>/<id>-json.log`: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`. The monitor
//! writes it (one thread per stream, lines whole, at most 16 KiB each as Docker splits
//! them); `logs`, `start -a` and a foreground `run` read it, following it while the
//! container runs.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::IoContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's maximum log line; longer lines are split.
const MAX_LINE: usize = 16 * 1024;

/// One line of the log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

impl LogEntry {
    pub fn is_stderr(&self) -> bool {
        self.stream == "stderr"
    }
}

/// The log file of container `id` in its directory `dir`.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// Copies `input` into the shared log as `stream` lines until end of file.
pub fn copy_stream(input: impl Read, stream: &'static str, log: Arc<Mutex<File>>) {
    let mut reader = BufReader::with_capacity(MAX_LINE, input);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut reader, &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let entry = LogEntry {
            log: String::from_utf8_lossy(&line).into_owned(),
            stream: stream.into(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let mut json = serde_json::to_vec(&entry).expect("a log entry serialises");
        json.push(b'\n');
        // One write per entry under the lock: the two streams never interleave inside a line.
        let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&json) {
            tracing::warn!("writing the container log: {e}");
        }
    }
}

/// A line up to `\n` included, or [`MAX_LINE`] bytes, or what is left at end of file.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(line.len());
        }
        let room = MAX_LINE - line.len();
        let take = buf.iter().take(room).position(|b| *b == b'\n');
        let n = take.map(|i| i + 1).unwrap_or(buf.len().min(room));
        line.extend_from_slice(&buf[..n]);
        reader.consume(n);
        if take.is_some() || line.len() >= MAX_LINE {
            return Ok(line.len());
        }
    }
}

/// Reads a log from the start, remembering where it stopped so a follower can continue.
pub struct LogReader {
    file: Option<BufReader<File>>,
    path: PathBuf,
    /// A line written only in part so far.
    pending: Vec<u8>,
}

impl LogReader {
    pub fn new(path: PathBuf) -> LogReader {
        LogReader {
            file: None,
            path,
            pending: Vec::new(),
        }
    }

    /// A reader of `path`, creating the file if missing: a follower that opens it before the
    /// monitor starts keeps reading it even if `--rm` removes it right after the exit.
    pub fn create(path: PathBuf) -> Result<LogReader> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&path)
            .ctx_path("creating", &path)?;
        let mut reader = LogReader::new(path);
        reader.read_new()?; // opens it
        reader.rewind()?;
        Ok(reader)
    }

    /// The entries written since the last call (none if the file does not exist yet).
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(BufReader::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(format!("opening {}", self.path.display()), e)),
            }
        }
        let file = self.file.as_mut().expect("opened above");
        let mut entries = Vec::new();
        loop {
            let n = file
                .read_until(b'\n', &mut self.pending)
                .ctx_path("reading", &self.path)?;
            if n == 0 || !self.pending.ends_with(b"\n") {
                return Ok(entries);
            }
            if let Ok(entry) = serde_json::from_slice::<LogEntry>(&self.pending) {
                entries.push(entry);
            }
            self.pending.clear();
        }
    }

    /// Skips to the last `n` entries written so far (their start), for `--tail`.
    pub fn tail(&mut self, n: usize) -> Result<Vec<LogEntry>> {
        let mut all = self.read_new()?;
        let skip = all.len().saturating_sub(n);
        Ok(all.split_off(skip))
    }

    /// Rewinds to the start.
    pub fn rewind(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::Start(0)).ctx_path("seeking", &self.path)?;
        }
        self.pending.clear();
        Ok(())
    }
}

/// Sleeps until a log grows or a process ends, whichever first: a pidfd of the process
/// wakes it at the end; the log's size is looked at after pauses that double from 1 ms to
/// 50 ms while it stays the same. A follower reads what is new, checks the process, then
/// waits here; a write or an exit in between is not missed (the size differs, the pidfd
/// stays readable). Not inotify: closing an inotify instance waits for an SRCU grace
/// period, 5 to 20 ms here, which a short `run` would pay on its way out.
pub struct LogWaiter {
    log: File,
    seen: std::cell::Cell<u64>,
    process: Option<std::os::fd::OwnedFd>,
}

/// The first and the longest pause between two looks at the log.
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);
const LONGEST_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl LogWaiter {
    /// Watches `log`, which must exist: set up before the container starts, since a
    /// `--rm` container can end and be removed, log and all, before a later open.
    pub fn new(log: &Path) -> Result<LogWaiter> {
        let file = File::open(log).ctx_path("opening", log)?;
        let seen = file.metadata().ctx_path("reading", log)?.len();
        Ok(LogWaiter {
            log: file,
            seen: seen.into(),
            process: None,
        })
    }

    /// Also wakes when process `pid` ends (best a child of ours, whose pid cannot be reused
    /// before we reap it; another's pid could in theory be reused before this call).
    pub fn with_process(mut self, pid: u32) -> Result<LogWaiter> {
        let pid = rustix::process::Pid::from_raw(pid as i32)
            .ok_or_else(|| crate::Error::Corrupt(format!("invalid pid {pid}")))?;
        let process = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .ctx(|| format!("watching process {pid:?}"))?;
        self.process = Some(process);
        Ok(self)
    }

    /// Blocks until the log changed size or the process ended (or a signal came); says
    /// whether the process has ended.
    pub fn wait(&self) -> Result<bool> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut pause = FIRST_PAUSE;
        loop {
            let mut fds: Vec<PollFd> = self
                .process
                .iter()
                .map(|p| PollFd::new(p, PollFlags::IN))
                .collect();
            let timeout = Timespec::try_from(pause).expect("a short pause fits a timespec");
            match poll(&mut fds, Some(&timeout)) {
                Ok(n) if n > 0 => return Ok(true),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(false),
                Err(e) => return Err(Error::io("waiting for the log", e.into())),
            }
            let size = self
                .log
                .metadata()
                .map_err(|e| Error::io("reading the log's size", e))?
                .len();
            if size != self.seen.replace(size) {
                return Ok(false);
            }
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path(), "c");
        let log = Arc::new(Mutex::new(File::create(&path).unwrap()));
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input = b"one\ntwo".to_vec();
        input.push(b'\n');
        input.extend_from_slice(&long);
        copy_stream(&input[..], "stderr", log);
        let mut reader = LogReader::new(path);
        let entries = reader.read_new().unwrap();
        let logs: Vec<usize> = entries.iter().map(|e| e.log.len()).collect();
        assert_eq!(logs, [4, 4, MAX_LINE, 10]);
        assert!(entries.iter().all(|e| e.is_stderr()));
        assert_eq!(reader.read_new().unwrap(), []);
    }
}
