//! The caller's side of a container terminal (`run -t`, `start -a` of a `-t` container,
//! `exec -t`), as Docker's client does it: our own terminal in raw mode while attached
//! (restored on every way out, signals included), our input copied to the container's
//! terminal with `-i`, its output to our standard output, our window size sent at once and
//! on every SIGWINCH. The commands around it end with the container's exit code as ours.
//!
//! A container's terminal is reached through its monitor's `attach.sock` (input and sizes
//! as frames, see [`strata_engine::container::tty`]); an `exec -t`'s pty master is ours.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use rustix::termios::{self, OptionalActions, Termios};
use strata_engine::container::tty::{self, FRAME_DATA, FRAME_RESIZE};
use strata_engine::{Container, Engine};

/// Docker's refusal of `-i -t` when our input is not a terminal.
pub fn check_input(interactive: bool) -> Result<()> {
    if interactive && !io::stdin().is_terminal() {
        bail!("the input device is not a TTY; run without -t, or from a terminal");
    }
    Ok(())
}

/// Relays `c`'s terminal (through its monitor's attach socket) until its output ends.
pub fn relay_terminal(engine: &Engine, c: &Container, interactive: bool) -> Result<()> {
    let stream = engine.containers().attach_terminal(c)?;
    let input = Arc::new(Mutex::new(stream.try_clone()?));
    {
        let input = input.clone();
        let send_size = move || {
            if let Some((rows, cols)) = local_size() {
                let mut s = input.lock().unwrap_or_else(|p| p.into_inner());
                let _ = tty::write_frame(&mut *s, FRAME_RESIZE, &tty::resize_payload(rows, cols));
            }
        };
        send_size();
        handle_signals(send_size);
    }
    let raw = RawMode::enter(interactive)?;
    if interactive {
        std::thread::spawn(move || {
            copy_input(|chunk| {
                let mut s = input.lock().unwrap_or_else(|p| p.into_inner());
                tty::write_frame(&mut *s, FRAME_DATA, chunk)
            })
        });
    }
    let copied = copy_output(stream);
    drop(raw);
    copied
}

/// Relays a pty master of ours (an `exec -t`'s) until the last process on its terminal is
/// gone.
pub fn relay_pty(master: &File, interactive: bool) -> Result<()> {
    let reader = PtyReader(master.try_clone()?);
    let master = Arc::new(master.try_clone()?);
    {
        let master = master.clone();
        let send_size = move || {
            if let Some((rows, cols)) = local_size() {
                let _ = tty::set_size(&master, rows, cols);
            }
        };
        send_size();
        handle_signals(send_size);
    }
    let raw = RawMode::enter(interactive)?;
    if interactive {
        std::thread::spawn(move || copy_input(|chunk| (&*master).write_all(chunk)));
    }
    let copied = copy_output(reader);
    drop(raw);
    copied
}

/// Our window size: of standard output, else of standard input, if either is a terminal.
fn local_size() -> Option<(u16, u16)> {
    [
        termios::tcgetwinsize(io::stdout()),
        termios::tcgetwinsize(io::stdin()),
    ]
    .into_iter()
    .flatten()
    .find(|w| w.ws_row > 0 && w.ws_col > 0)
    .map(|w| (w.ws_row, w.ws_col))
}

/// Copies our standard input chunk by chunk (a keypress is sent as it comes) until end of
/// input or until `send` fails.
fn copy_input(mut send: impl FnMut(&[u8]) -> io::Result<()>) {
    let mut buf = [0u8; 4096];
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if send(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Copies the terminal's output to our standard output, unbuffered, until it ends.
fn copy_output(mut from: impl Read) -> Result<()> {
    let mut out = io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

/// A pty master whose end (EIO once the last process on the terminal is gone) reads as end
/// of file.
struct PtyReader(File);

impl Read for PtyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            other => other,
        }
    }
}

/// The settings of our terminal before raw mode, for whoever restores them first (the
/// guard, or the signal thread on the way out).
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Our standard input in raw mode (keys go to the container as typed, ^C included) until
/// dropped.
struct RawMode;

impl RawMode {
    fn enter(interactive: bool) -> Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !interactive || !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Some(RawMode))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, &saved);
    }
}

/// Takes SIGWINCH (calling `on_resize`) and the terminating signals (restoring our terminal,
/// then exiting with 128+N; the container keeps running, as when Docker's client dies) on a
/// thread of their own. Threads spawned after this inherit the blocked mask.
fn handle_signals(on_resize: impl Fn() + Send + 'static) {
    let signals = [
        libc::SIGWINCH,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ];
    // SAFETY: plain libc calls on a local, initialised signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut signal = 0;
        // SAFETY: `set` is initialised; sigwait only writes `signal`.
        if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
            return;
        }
        if signal == libc::SIGWINCH {
            on_resize();
            continue;
        }
        restore_terminal();
        std::process::exit(128 + signal);
    });
}
