//! A `strata daemon` for the API tests: the real binary (built by `cargo test --workspace`
//! next to this test's executable) started on a socket and store in a temporary
//! directory, stopped with SIGTERM when dropped; raw HTTP over its socket for what clients
//! would hide; and a busybox image to run.

#![allow(dead_code)] // Not every test binary uses every helper.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod docker;
pub mod load;

#[allow(unused_imports)] // Not every test binary uses every helper.
pub use strata_testkit::{can_run_containers, is_root, BUSYBOX};

/// The strata binary of this build (`target/<profile>/strata`), if it was built.
pub fn strata_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?; // target/<profile>/deps/<test> → target/<profile>
    let bin = profile_dir.join("strata");
    if !bin.is_file() {
        return None;
    }
    warn_if_stale(&bin);
    Some(bin)
}

/// `cargo test -p strata-api` does not rebuild the binary: say so when sources are newer.
fn warn_if_stale(bin: &Path) {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newer = |dir: PathBuf| {
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if entry.metadata().and_then(|m| m.modified()).ok() > built {
                    return Some(path);
                }
            }
        }
        None
    };
    for krate in ["api", "cli", "engine", "image", "storage", "runtime"] {
        if let Some(path) = newer(crates.join(krate).join("src")) {
            eprintln!(
                "WARNING: {} is newer than {}: run cargo build -p strata first (cargo test --workspace does)",
                path.display(),
                bin.display()
            );
            return;
        }
    }
}

pub struct Daemon {
    pub dir: TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    pub binary: PathBuf,
    pub driver: &'static str,
    child: Option<Child>,
}

impl Daemon {
    /// A daemon on a fresh store (overlay2 as root, vfs otherwise), or `None` after saying
    /// why it cannot run here.
    pub fn start() -> Option<Daemon> {
        let Some(binary) = strata_binary() else {
            eprintln!(
                "SKIP: the strata binary is not built next to this test; run cargo build -p strata (cargo test --workspace does)"
            );
            return None;
        };
        let driver = if is_root() { "overlay2" } else { "vfs" };
        let dir = tempfile::Builder::new()
            .prefix("strata-api-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        let socket = dir.path().join("api.sock");
        let mut daemon = Daemon {
            root,
            socket,
            binary,
            driver,
            dir,
            child: None,
        };
        daemon.spawn();
        Some(daemon)
    }

    /// Starts (or restarts) the daemon process and waits until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(["--storage-driver", self.driver, "daemon", "-H"])
            .arg(format!("unix://{}", self.socket.display()))
            .env_remove("STRATA_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting strata daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "the daemon did not listen within 20 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the daemon to exit; its exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn docker(&self) -> bollard::Docker {
        bollard::Docker::connect_with_unix(
            self.socket.to_str().unwrap(),
            60,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("bollard client")
    }

    /// The daemonless CLI on the same store.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(["--storage-driver", self.driver])
            .args(args)
            .env_remove("STRATA_ROOT")
            .output()
            .expect("running strata")
    }

    /// One raw HTTP/1.1 request: status, headers (lower-case names), body.
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> Response {
        raw_request(&self.socket, method, path, &[], body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        // Containers a failed test left: removed through the CLI (unmounts included).
        if let Ok(out) = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(["--storage-driver", self.driver, "ps", "-a", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.cli(&["rm", "-f", id]);
            }
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Docker's error shape: `{"message": ...}`.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", String::from_utf8_lossy(&self.body)))
            .to_string()
    }
}

pub fn raw_request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = UnixStream::connect(socket).expect("connecting to the daemon");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server refusing a body may answer and close before the body is all sent.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// A rootfs tarball: /bin/busybox with applet links, /etc/passwd and /etc/group.
pub fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if let Some(target) = link {
            h.set_link_name(target).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    for d in ["bin", "etc", "tmp"] {
        add(d, tar::EntryType::Directory, 0o755, &[], None);
    }
    let busybox = std::fs::read(BUSYBOX).unwrap_or_else(|_| b"#!/bin/false\n".to_vec());
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &busybox,
        None,
    );
    for applet in ["sh", "echo", "cat", "sleep", "true", "ls"] {
        add(
            &format!("bin/{applet}"),
            tar::EntryType::Symlink,
            0o777,
            &[],
            Some("busybox"),
        );
    }
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
        None,
    );
    add(
        "etc/group",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:\n",
        None,
    );
    b.into_inner().unwrap()
}

/// Imports the busybox rootfs as `reference` through the API; the image ID.
pub fn import_busybox(daemon: &Daemon, reference: &str) -> String {
    let (repo, tag) = reference.split_once(':').unwrap_or((reference, "latest"));
    let path = format!(
        "/v1.47/images/create?fromSrc=-&repo={repo}&tag={tag}&changes=CMD%20%5B%22sh%22%5D"
    );
    let response = raw_request(
        &daemon.socket,
        "POST",
        &path,
        &[("Content-Type", "application/x-tar")],
        &busybox_tar(),
    );
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let status = String::from_utf8_lossy(&response.body).to_string();
    let line: serde_json::Value = serde_json::from_str(status.lines().last().unwrap()).unwrap();
    line["status"].as_str().unwrap().to_string()
}
