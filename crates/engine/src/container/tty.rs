//! Terminals (`-t`): the OCI runtime allocates a pty inside the container and hands its
//! master to us over a unix socket (`--console-socket`, SCM_RIGHTS), as conmon and
//! containerd's shim receive it.
//!
//! For a container the monitor owns the master and relays it: pty output goes to the
//! json-file log (stream `stdout`, as Docker logs a tty) and to every client attached to
//! `containers/<id>/attach.sock`; clients send framed input and resizes back
//! ([`FRAME_DATA`], [`FRAME_RESIZE`]: 1-byte type, 4-byte big-endian length, payload).
//! For `exec -t` the master goes to the calling process itself ([`Engine::exec_terminal`]).

use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use strata_storage::error::IoContext;

use super::{logs, Container};
use crate::error::{Error, Result};
use crate::Engine;

/// Client → monitor: bytes for the terminal's input.
pub const FRAME_DATA: u8 = 0;
/// Client → monitor: a new window size, rows then columns, each a big-endian `u16`.
pub const FRAME_RESIZE: u8 = 1;

/// How long the monitor holds a terminal's output for the client that started it (the
/// output then waits in the pty, so the client sees it from the first byte).
const FIRST_CLIENT_WAIT: Duration = Duration::from_secs(10);

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)
}

/// The payload of a [`FRAME_RESIZE`].
pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let [r0, r1] = rows.to_be_bytes();
    let [c0, c1] = cols.to_be_bytes();
    [r0, r1, c0, c1]
}

/// A unix socket the runtime sends the pty master to, in a private directory of its own
/// (short enough for `sun_path` wherever the store lives), removed on drop.
pub(crate) struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub(crate) fn new() -> Result<ConsoleSocket> {
        let suffix = strata_sys::id::random_hex(8, "a console socket")?;
        let dir = std::env::temp_dir().join(format!("strata-console-{suffix}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .ctx_path("creating", &dir)?;
        let path = dir.join("sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(
                    strata_storage::Error::io(format!("binding {}", path.display()), e).into(),
                );
            }
        };
        Ok(ConsoleSocket {
            dir,
            path,
            listener,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent (it connects and sends during `create`/`exec
    /// --detach`, before it exits, so the connection is already queued).
    pub(crate) fn receive(&self) -> Result<OwnedFd> {
        let missing = |why: String| {
            Error::Runtime(strata_runtime::Error::Runtime {
                message: format!("the runtime did not send the container's terminal: {why}"),
            })
        };
        self.listener
            .set_nonblocking(true)
            .ctx_path("configuring", &self.path)?;
        let (stream, _) = self.listener.accept().map_err(|e| missing(e.to_string()))?;
        stream
            .set_nonblocking(false)
            .ctx_path("configuring", &self.path)?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        rustix::net::recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
            .map_err(|e| missing(e.to_string()))?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        Err(missing("no descriptor in its message".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` with a path to `path` short enough for a unix socket address: `path` itself, or
/// `/proc/self/fd/N/<name>` through an `O_PATH` descriptor of its directory.
fn short_socket_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = rustix::fs::open(parent, flags, Mode::empty())?;
    f(&Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name))
}

/// The attached clients' write ends, and a signal for the first one.
#[derive(Default)]
struct Clients {
    streams: Mutex<(Vec<UnixStream>, bool)>,
    arrived: Condvar,
}

impl Clients {
    fn add(&self, stream: UnixStream) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        s.0.push(stream);
        s.1 = true;
        self.arrived.notify_all();
    }

    fn wait_first(&self, timeout: Duration) {
        let s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.arrived.wait_timeout_while(s, timeout, |s| !s.1);
    }

    /// Sends `bytes` to every client, dropping those that went away.
    fn broadcast(&self, bytes: &[u8]) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        s.0.retain_mut(|c| c.write_all(bytes).is_ok());
    }

    fn close_all(&self) {
        let mut s = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for c in s.0.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The pty master as a reader for the log copier that hands every chunk to the clients
/// too; the end of the terminal (EIO once no process holds the slave) is end of file, so
/// a last line without a newline is still logged.
struct Tee {
    master: Arc<File>,
    clients: Arc<Clients>,
    hold_for_client: bool,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.hold_for_client) {
            self.clients.wait_first(FIRST_CLIENT_WAIT);
        }
        match (&*self.master).read(buf) {
            Ok(n) => {
                self.clients.broadcast(&buf[..n]);
                Ok(n)
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// The monitor's relay of a container's terminal; see the module documentation.
pub(crate) struct Relay {
    socket: PathBuf,
    listener: UnixListener,
}

impl Relay {
    /// Listens on `containers/<id>/attach.sock` (before the container starts, so a client
    /// can connect as soon as `start` returns).
    pub(crate) fn listen(dir: &Path) -> Result<Relay> {
        let socket = dir.join("attach.sock");
        let _ = std::fs::remove_file(&socket); // a dead monitor's
        let listener = short_socket_path(&socket, |p| UnixListener::bind(p))
            .ctx_path("listening on", &socket)?;
        Ok(Relay { socket, listener })
    }

    /// Relays `master` until the terminal ends, then closes the clients and removes the
    /// socket. With `hold_for_client` the output waits for the first client.
    pub(crate) fn spawn(
        self,
        master: OwnedFd,
        log: Arc<Mutex<File>>,
        hold_for_client: bool,
    ) -> JoinHandle<()> {
        let master = Arc::new(File::from(master));
        let clients = Arc::new(Clients::default());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acceptor = {
            let (master, clients, done) = (master.clone(), clients.clone(), done.clone());
            let listener = self.listener;
            std::thread::spawn(move || accept_clients(listener, master, clients, &done))
        };
        let socket = self.socket;
        std::thread::spawn(move || {
            let tee = Tee {
                master: master.clone(),
                clients: clients.clone(),
                hold_for_client,
            };
            logs::copy_stream(tee, "stdout", log);
            // Wake the acceptor with a connection of our own, then let it see `done`.
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = short_socket_path(&socket, |p| UnixStream::connect(p));
            let _ = acceptor.join();
            clients.close_all();
            let _ = std::fs::remove_file(&socket);
        })
    }
}

fn accept_clients(
    listener: UnixListener,
    master: Arc<File>,
    clients: Arc<Clients>,
    done: &std::sync::atomic::AtomicBool,
) {
    for stream in listener.incoming() {
        if done.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        clients.add(stream);
        let master = master.clone();
        // Ends when the client goes or `close_all` shuts its socket down.
        std::thread::spawn(move || read_frames(reader, &master));
    }
}

/// Applies a client's frames to the terminal until it disconnects.
fn read_frames(mut client: UnixStream, master: &File) {
    let mut header = [0u8; 5];
    let mut payload = Vec::new();
    loop {
        if client.read_exact(&mut header).is_err() {
            return;
        }
        let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
        payload.resize(len.min(1 << 20), 0);
        if len > payload.len() || client.read_exact(&mut payload).is_err() {
            return;
        }
        match header[0] {
            FRAME_DATA if (&*master).write_all(&payload).is_err() => return,
            FRAME_RESIZE if payload.len() == 4 => {
                let rows = u16::from_be_bytes([payload[0], payload[1]]);
                let cols = u16::from_be_bytes([payload[2], payload[3]]);
                let _ = set_size(master, rows, cols);
            }
            _ => {} // unknown frames are skipped, for newer clients
        }
    }
}

/// Sets the window size of a terminal (the container's processes get SIGWINCH).
pub fn set_size(master: &File, rows: u16, cols: u16) -> io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(master, size)?)
}

/// A process of `exec -t`: the master of its terminal, and its pid (a descendant of ours,
/// which [`Engine::exec_terminal`] made a child subreaper so that it can be waited for).
pub struct TerminalProcess {
    pub master: File,
    pub pid: i32,
}

impl TerminalProcess {
    /// Waits for the process; its exit code (128+N when killed by signal N).
    pub fn wait(&self) -> Result<i32> {
        Ok(strata_runtime::wait_exit_code(self.pid)?)
    }
}

impl Engine {
    /// The socket clients attach to a running `-t` container's terminal with.
    pub fn attach_socket(&self, c: &Container) -> PathBuf {
        self.container_dir(&c.id).join("attach.sock")
    }

    /// Connects to a running `-t` container's terminal: raw output comes back on the
    /// stream; input and resizes go as frames ([`write_frame`]).
    pub fn attach_terminal(&self, c: &Container) -> Result<UnixStream> {
        let socket = self.attach_socket(c);
        short_socket_path(&socket, |p| UnixStream::connect(p)).map_err(|e| {
            Error::Conflict(format!(
                "cannot attach to the terminal of container {} ({}): {e}; is it running with -t?",
                c.name,
                c.short_id()
            ))
        })
    }
}

/// Makes the calling process a child subreaper, so a process the runtime starts detached
/// is reparented to it and can be waited for.
pub(crate) fn become_subreaper() -> Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| strata_storage::Error::io("becoming a child subreaper", e.into()).into())
}

/// Reads `pid_file` as written by the runtime.
pub(crate) fn read_pid(pid_file: &Path) -> Result<i32> {
    std::fs::read_to_string(pid_file)
        .ctx_path("reading", pid_file)?
        .trim()
        .parse::<i32>()
        .map_err(|e| Error::Corrupt(format!("{}: {e}", pid_file.display())))
}
