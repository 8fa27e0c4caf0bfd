//! End-to-end tests of terminals (`run -t`, `run -it`, `start -a`, `exec -t`, `logs` of a
//! tty container, resizes) through the real runc with a busybox image. `-it` is driven
//! through a pty this test opens, as a user's terminal would. They need root, runc and a
//! static busybox; without them they skip, saying so.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{self, LocalModes, Winsize};

const BUSYBOX: &str = "/bin/busybox";

/// The tests look for leftovers in `/tmp` (console sockets): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> Option<Store> {
    if !is_root() {
        eprintln!("SKIP: running containers needs root");
        return None;
    }
    let runc = std::process::Command::new("runc").arg("--version").output();
    if !runc.map(|o| o.status.success()).unwrap_or(false) || !Path::new(BUSYBOX).exists() {
        eprintln!("SKIP: needs runc in PATH and a static {BUSYBOX}");
        return None;
    }
    let s = Store::new("overlay2")?;
    s.import(&busybox_tar(), "bb");
    Some(s)
}

/// /bin/busybox with the applets these tests use, and root in /etc/passwd.
fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if link.is_empty() {
            b.append_data(&mut h, path, data).unwrap();
        } else {
            b.append_link(&mut h, path, link).unwrap();
        }
    };
    add("bin", tar::EntryType::Directory, 0o755, b"", "");
    add("etc", tar::EntryType::Directory, 0o755, b"", "");
    let busybox = std::fs::read(BUSYBOX).unwrap();
    add("bin/busybox", tar::EntryType::Regular, 0o755, &busybox, "");
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    add("etc/passwd", tar::EntryType::Regular, 0o644, passwd, "");
    for applet in ["sh", "tty", "stty", "test", "echo", "sleep", "cat", "true"] {
        let path = format!("bin/{applet}");
        add(&path, tar::EntryType::Symlink, 0o777, b"", "busybox");
    }
    b.into_inner().unwrap()
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// No container, socket, console directory, mount or process of this store is left.
fn assert_nothing_left(s: &Store) {
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "", "containers left");
    let containers = s.root.join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    let consoles: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("strata-console-")
        })
        .map(|e| e.path())
        .collect();
    assert!(consoles.is_empty(), "console sockets left: {consoles:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(s.root.to_str().unwrap()),
        "a mount is left"
    );
    assert_eq!(processes_of(s), Vec::<String>::new(), "processes left");
}

/// Command lines of live processes naming this store (monitors, strata clients).
fn processes_of(s: &Store) -> Vec<String> {
    let root = s.root.to_str().unwrap().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = text(&cmdline).replace('\0', " ");
        if cmdline.contains(&root) {
            found.push(cmdline);
        }
    }
    found
}

/// Sockets in a container's directory.
fn sockets_in(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_socket())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn tty_without_a_local_terminal() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = setup() else { return };
    // Output comes through the container's pty (CRLF line ends), the code propagates.
    let script = "tty; test -t 0 && test -t 1 && echo yes; echo \"TERM=$TERM\"; exit 4";
    let o = s.run(&["run", "--rm", "-t", "bb", "sh", "-c", script]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "/dev/pts/0\r\nyes\r\nTERM=xterm\r\n");

    // -it needs a terminal on our side, as in Docker; nothing is created.
    let o = s.run(&["run", "--rm", "-it", "bb", "sh"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("the input device is not a TTY"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");

    // The log of a tty container holds its output as stdout; no socket stays behind.
    let o = s.run(&["run", "--name", "logged", "-t", "bb", "echo", "to the log"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let logs = s.run(&["logs", "logged"]);
    assert_eq!(text(&logs.stdout), "to the log\r\n");
    assert_eq!(text(&logs.stderr), "");
    let id = only_container_id(&s);
    assert_eq!(
        sockets_in(&s.root.join("containers").join(&id)),
        Vec::<String>::new()
    );

    // start -a of a stopped tty container runs it again, attached.
    let o = s.run(&["start", "-a", "logged"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "to the log\r\n");
    s.ok(&["rm", "logged"]);

    // A detached tty container: its output is logged without anyone attached; exec -t
    // gets a terminal of its own, exec without -t none.
    s.ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "bg",
        "bb",
        "sh",
        "-c",
        "echo up; sleep 100",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&s.run(&["logs", "bg"]).stdout).contains("up") {
        assert!(
            Instant::now() < deadline,
            "no output logged from a detached -t container"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = s.run(&[
        "exec",
        "-t",
        "bg",
        "sh",
        "-c",
        "tty; test -t 1 && echo yes; exit 7",
    ]);
    assert_eq!(code(&o), 7, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("/dev/pts/") && out.ends_with("\r\nyes\r\n"),
        "{out:?}"
    );
    let o = s.run(&["exec", "bg", "sh", "-c", "test -t 1 || echo no tty"]);
    assert_eq!(text(&o.stdout), "no tty\n");
    let o = s.run(&["exec", "-it", "bg", "true"]);
    assert!(text(&o.stderr).contains("the input device is not a TTY"));
    s.ok(&["rm", "-f", "bg"]);
    assert_nothing_left(&s);
}

/// The id of the only container.
fn only_container_id(s: &Store) -> String {
    let dir = std::fs::read_dir(s.root.join("containers")).unwrap();
    let ids: Vec<_> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

/// A pty whose slave is the standard streams (and controlling terminal) of a strata
/// command, and whose master the test reads and types into.
struct Terminal {
    master: Arc<std::fs::File>,
    slave: String,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn spawn(
        mut cmd: std::process::Command,
        rows: u16,
        cols: u16,
    ) -> (Terminal, std::process::Child) {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave_name = name.to_str().unwrap().to_string();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave_name)
            .unwrap();
        termios::tcsetwinsize(&slave, size(rows, cols)).unwrap();
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // Its own session with the pty as controlling terminal, so that resizes signal it.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd); // our copies of the slave
        let master = Arc::new(std::fs::File::from(master));
        let output = Arc::new(Mutex::new(Vec::new()));
        {
            let (master, output) = (master.clone(), output.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = (&*master).read(&mut buf) {
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        (
            Terminal {
                master,
                slave: slave_name,
                output,
            },
            child,
        )
    }

    fn type_line(&self, line: &str) {
        (&*self.master)
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
    }

    /// Waits until the output contains `what` (after `from`); the output's length after it.
    fn expect(&self, what: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = text(&self.output.lock().unwrap());
            if let Some(at) = out.get(from..).and_then(|o| o.find(what)) {
                return from + at + what.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} in the terminal output:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn wait_child(child: &mut std::process::Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn interactive_through_a_real_terminal() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = setup() else { return };
    let cmd = s.cmd(&["run", "--rm", "-it", "--name", "it", "bb", "sh"]);
    let (term, mut child) = Terminal::spawn(cmd, 33, 101);
    let mut at = term.expect("# ", 0);
    // Our size reached the container's terminal at once, and follows a resize.
    term.type_line("stty size");
    at = term.expect("33 101", at);
    termios::tcsetwinsize(&*term.master, size(40, 120)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        term.type_line("stty size");
        let out = text(&term.output.lock().unwrap());
        if out[at..].contains("40 120") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resize did not reach the container:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    at = term.output.lock().unwrap().len();
    // Keys go through raw: the container's own terminal echoes and runs the line.
    term.type_line("echo hi; exit 5");
    term.expect("\r\nhi\r\n", at);
    assert_eq!(wait_child(&mut child), 5);
    // Our terminal is back in canonical mode with echo.
    let slave = std::fs::File::open(&term.slave).unwrap();
    let modes = termios::tcgetattr(&slave).unwrap().local_modes;
    assert!(
        modes.contains(LocalModes::ICANON | LocalModes::ECHO),
        "the terminal was left raw: {modes:?}"
    );
    // exec -it, through the same kind of terminal.
    s.ok(&["run", "-d", "-t", "--name", "bg", "bb", "sleep", "100"]);
    let cmd = s.cmd(&["exec", "-it", "bg", "sh"]);
    let (term, mut child) = Terminal::spawn(cmd, 25, 90);
    let at = term.expect("# ", 0);
    term.type_line("stty size; exit 3");
    term.expect("25 90", at);
    assert_eq!(wait_child(&mut child), 3);
    s.ok(&["rm", "-f", "bg"]);
    assert_nothing_left(&s);
}
