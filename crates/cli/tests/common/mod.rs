//! Helpers for the end-to-end tests of the `strata` binary: a store in a temporary directory
//! (optionally on a small tmpfs), running the binary against it, building tarballs, and
//! checking that a failed command left nothing behind on disk or in the mount table.

#![allow(dead_code)] // Not every test binary uses every helper.

/// Instantiates each listed test `fn name(driver: &str)` once per storage driver, as
/// `vfs::name` and `overlay2::name` (the overlay2 ones skip with a message when not root).
#[allow(unused_macros)]
macro_rules! per_driver {
    ($($name:ident),* $(,)?) => {
        mod vfs {
            $( #[test] fn $name() { super::$name("vfs") } )*
        }
        mod overlay2 {
            $( #[test] fn $name() { super::$name("overlay2") } )*
        }
    };
}

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_strata");

#[allow(unused_imports)] // Not every test binary uses every helper.
pub use strata_testkit::{can_run_containers, gzip, is_root, zstd, BUSYBOX};

/// A store under a fresh temporary directory: `<tmp>/root` is the store, `<tmp>/input` holds
/// the tarballs a test feeds it (never inside the store, so a leftover is always the store's).
pub struct Store {
    pub dir: TempDir,
    pub root: PathBuf,
    pub input: PathBuf,
    pub driver: &'static str,
    /// The store root is itself a mount point (a tmpfs): not a leftover.
    root_is_mount: bool,
}

impl Store {
    /// A store for `driver`, or `None` (after saying why) when the driver needs root and the
    /// test does not run as root.
    pub fn new(driver: &'static str) -> Option<Store> {
        if driver == "overlay2" && !is_root() {
            eprintln!("SKIP: overlay2 needs root (kernel overlayfs mounts); run the tests as root");
            return None;
        }
        Some(Store::create(driver))
    }

    /// A store for `driver` whether or not this process could use it (to test the refusal).
    pub fn create(driver: &'static str) -> Store {
        let dir = tempfile::Builder::new()
            .prefix("strata-cli-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        let input = dir.path().join("input");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&input).unwrap();
        Store {
            dir,
            root,
            input,
            driver,
            root_is_mount: false,
        }
    }

    /// A store whose root is a tmpfs of `size` (`16m`), unmounted when the store drops.
    pub fn on_tmpfs(driver: &'static str, size: &str) -> Option<Store> {
        if !is_root() {
            eprintln!("SKIP: mounting a tmpfs as the store root needs root");
            return None;
        }
        let mut store = Store::new(driver)?;
        let data = std::ffi::CString::new(format!("size={size},mode=0755")).unwrap();
        rustix::mount::mount(
            "tmpfs",
            &store.root,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .expect("mounting a tmpfs for the store root");
        store.root_is_mount = true;
        Some(store)
    }

    /// The binary with this store's root and driver, and none of the caller's STRATA_* settings.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("STRATA_ROOT")
            .env_remove("STRATA_STORAGE_DRIVER")
            .env_remove("STRATA_LOG")
            .arg("--root")
            .arg(&self.root)
            .arg("--storage-driver")
            .arg(self.driver)
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, b"")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_with_stdin(self.cmd(args), stdin)
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        expect_ok(args, self.run(args))
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        expect_ok(args, self.run_stdin(args, stdin))
    }

    /// Runs a command that must fail; returns its standard error.
    pub fn fail(&self, args: &[&str]) -> String {
        expect_fail(args, self.run(args))
    }

    /// Writes `bytes` as the input file `name`; returns its path as a string for `args`.
    pub fn input_file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.input.join(name);
        fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// Imports `tar` from a file as `reference`; returns the image id.
    pub fn import(&self, tar: &[u8], reference: &str) -> String {
        let file = self.input_file("import.tar", tar);
        let id = self.ok(&["import", &file, reference]).trim().to_string();
        assert_image_id(&id);
        id
    }

    pub fn image_ids(&self) -> Vec<String> {
        lines(&self.ok(&["images", "-q"]))
    }

    pub fn layer_names(&self) -> Vec<String> {
        lines(&self.ok(&["layers", "-q"]))
    }

    /// The value of `Key: value` in `strata info`.
    pub fn info_value(&self, key: &str) -> String {
        let out = self.ok(&["info"]);
        let prefix = format!("{key}: ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key:?} in `strata info`:\n{out}"))
            .to_string()
    }

    /// The driver's layer directories (and, for overlay2, short links and staging entries):
    /// every name here is a layer's data or part of one.
    pub fn layer_dirs(&self) -> Vec<String> {
        match self.driver {
            "overlay2" => {
                let home = self.root.join("overlay2");
                let mut found: Vec<String> = list(&home)
                    .into_iter()
                    .filter(|n| n != "l" && !n.starts_with('.'))
                    .collect();
                found.extend(list(&home.join("l")).into_iter().map(|n| format!("l/{n}")));
                found.extend(
                    list(&home.join(".tmp"))
                        .into_iter()
                        .map(|n| format!(".tmp/{n}")),
                );
                found
            }
            _ => list(&self.root.join("vfs").join("dir")),
        }
    }

    /// Mount points strictly inside the store root.
    pub fn mounts_inside(&self) -> Vec<PathBuf> {
        mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&self.root) && (m != &self.root || !self.root_is_mount))
            .collect()
    }

    /// Asserts that the store holds nothing: checked on disk first (any later `strata` run
    /// may tidy up at open and hide what a failed command left), then through the binary.
    pub fn assert_clean(&self, after: &str) {
        let layers = self.layer_dirs();
        assert!(
            layers.is_empty(),
            "{after}: layer data left in the store: {layers:?}"
        );
        let tmp = list(&self.root.join("tmp"));
        assert!(
            tmp.is_empty(),
            "{after}: staging left in {}/tmp: {tmp:?}",
            self.root.display()
        );
        let blobs = list(&self.root.join("blobs").join("sha256"));
        assert!(blobs.is_empty(), "{after}: blobs left: {blobs:?}");
        let mounts = self.mounts_inside();
        assert!(
            mounts.is_empty(),
            "{after}: mounts left under the store: {mounts:?}"
        );
        assert_eq!(
            self.image_ids(),
            Vec::<String>::new(),
            "{after}: images left"
        );
        assert_eq!(
            self.layer_names(),
            Vec::<String>::new(),
            "{after}: writable layers left"
        );
        assert_eq!(
            self.info_value("Layers"),
            "0",
            "{after}: `info` counts layers"
        );
    }
}

impl Drop for Store {
    /// Unmounts whatever is left under the root, deepest first (the tmpfs root last), so that
    /// a failed test neither leaks mounts nor keeps the temporary directory from going away.
    fn drop(&mut self) {
        let mut mounts: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&self.root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in mounts {
            let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

pub fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running the strata binary");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // A writer thread: the binary may stop reading early (a bad stream) and must not deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

pub fn expect_ok(args: &[&str], out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`strata {}` failed ({}):\n{stderr}",
        args.join(" "),
        out.status
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Asserts a failure reported the strata way: non-zero exit, `strata: error: ...` on standard
/// error, nothing on standard output (no id, no path a script could pick up).
pub fn expect_fail(args: &[&str], out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let cmd = format!("strata {}", args.join(" "));
    assert!(
        !out.status.success(),
        "`{cmd}` succeeded but should fail; stdout:\n{stdout}"
    );
    assert!(
        stderr.contains("strata: error: "),
        "`{cmd}`: no `strata: error:` on stderr:\n{stderr}"
    );
    assert!(
        stdout.trim().is_empty(),
        "`{cmd}` failed but printed on stdout:\n{stdout}"
    );
    stderr
}

/// Asserts `stderr` mentions each of `needles` (case-insensitive).
pub fn assert_mentions(stderr: &str, needles: &[&str]) {
    let lower = stderr.to_lowercase();
    for n in needles {
        assert!(
            lower.contains(&n.to_lowercase()),
            "error does not mention {n:?}:\n{stderr}"
        );
    }
}

/// Asserts `stderr` mentions at least one of `needles` (case-insensitive).
pub fn assert_mentions_any(stderr: &str, needles: &[&str]) {
    let lower = stderr.to_lowercase();
    assert!(
        needles.iter().any(|n| lower.contains(&n.to_lowercase())),
        "error mentions none of {needles:?}:\n{stderr}"
    );
}

pub fn assert_image_id(id: &str) {
    let hex = id
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not an image id: {id:?}"));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "not an image id: {id:?}"
    );
}

pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:")[..12].to_string()
}

pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

/// Names in `dir`, sorted; empty if it does not exist.
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every mount point in this mount namespace, from `/proc/self/mountinfo` (octal escapes
/// such as `\040` decoded).
pub fn mount_points() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Tarballs built entry by entry, with fixed owners (0:0) and times, as GNU tar writes them.
pub struct Tar<W: Write> {
    builder: tar::Builder<W>,
}

pub const MTIME: u64 = 1_700_000_000;

impl Tar<Vec<u8>> {
    pub fn new() -> Self {
        Tar::to(Vec::new())
    }
}

impl<W: Write> Tar<W> {
    pub fn to(out: W) -> Self {
        Tar {
            builder: tar::Builder::new(out),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.builder.append_data(&mut h, path, io::empty()).unwrap();
        self
    }

    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_from(path, data.len() as u64, data)
    }

    pub fn file_from(mut self, path: &str, size: u64, data: impl Read) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, size);
        self.builder.append_data(&mut h, path, data).unwrap();
        self
    }

    /// A file whose name is written as given, `..` included (the tar crate refuses to write
    /// such names through its checked setters, which is the point of a hostile archive).
    pub fn raw_file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    pub fn finish(self) -> W {
        self.builder.into_inner().unwrap()
    }
}

/// The base image of the happy-path tests: a few files and directories to change, delete and
/// make opaque.
pub fn rootfs_tar() -> Vec<u8> {
    Tar::new()
        .dir("bin")
        .file("bin/sh", b"#!not really a shell\n")
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/gone", b"to be deleted\n")
        .file("etc/keep", b"untouched\n")
        .dir("srv")
        .dir("srv/low")
        .file("srv/low/old-1", b"old 1\n")
        .file("srv/low/old-2", b"old 2\n")
        .finish()
}

/// Deterministic incompressible bytes (xorshift), `len` of them.
pub struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    pub fn new(seed: u64, len: u64) -> Noise {
        Noise {
            state: seed | 1,
            left: len,
        }
    }

    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        Noise::new(seed, len as u64).read_to_end(&mut v).unwrap();
        v
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize) / 8 * 8;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A root filesystem of the static busybox with links for `applets`, /etc/passwd, /data.
pub fn busybox_tar(applets: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h
    };
    for d in ["bin", "etc", "data"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, &[][..]).unwrap();
    }
    let bin = fs::read(BUSYBOX).unwrap();
    for (path, data) in [
        ("bin/busybox", &bin[..]),
        ("etc/passwd", &b"root:x:0:0:root:/root:/bin/sh\n"[..]),
        ("etc/group", &b"root:x:0:\n"[..]),
    ] {
        let mut h = header(tar::EntryType::Regular, 0o755, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    for applet in applets {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}
