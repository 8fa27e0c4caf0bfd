//! The suite's fixture: a fresh driver per test in its own tempdir (whose mounts are
//! detached when the test ends, pass or fail), layer helpers that go through the `Driver`
//! trait and the archive functions only, and readers for exported tars.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::tree;
use crate::archive::{self, ApplyReport};
use crate::changes;
use crate::driver::{self, Driver, Durability, LayerKind};

pub use strata_testkit::is_root;

pub fn kernel_has_overlayfs() -> bool {
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
}

/// One driver on a fresh, empty store root.
pub struct Fixture {
    pub driver: Box<dyn Driver>,
    pub root: PathBuf,
    // Declared last so it is dropped (deleted) after the mounts are detached in `drop`.
    _dir: tempfile::TempDir,
}

/// Opens built-in driver `name` (see [`driver::open`]) on the store root `root`, or gives
/// `None` (with a printed reason) when this machine cannot run it.
pub fn open_builtin(name: &str, root: &Path) -> Option<Box<dyn Driver>> {
    if name == "overlay2" && !(is_root() && kernel_has_overlayfs()) {
        println!("skipped: overlay2 needs root and kernel overlayfs");
        return None;
    }
    let driver = driver::open(name, root, &[])
        .unwrap_or_else(|e| panic!("opening driver {name} at {}: {e}", root.display()));
    assert_eq!(driver.name(), name);
    Some(driver)
}

impl Fixture {
    /// The driver `open` gives on a fresh root, or `None` when it gives none (this machine
    /// cannot run it).
    pub fn new(open: &dyn Fn(&Path) -> Option<Box<dyn Driver>>) -> Option<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("strata-conformance-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        let driver = open(&root)?;
        Some(Fixture {
            driver,
            root,
            _dir: dir,
        })
    }

    pub fn is_overlay2(&self) -> bool {
        self.driver.name() == "overlay2"
    }

    /// False (with a printed reason) when not root; for tests that chown or mknod.
    pub fn require_root(&self, why: &str) -> bool {
        if !is_root() {
            println!("skipped: {} test needs root ({why})", self.driver.name());
        }
        is_root()
    }

    /// Creates read-only layer `id` on `parent` and applies `tar` into it.
    pub fn layer(&self, id: &str, parent: Option<&str>, tar: &[u8]) -> ApplyReport {
        self.layer_from(id, parent, &mut &tar[..])
    }

    pub fn layer_from(&self, id: &str, parent: Option<&str>, tar: &mut dyn Read) -> ApplyReport {
        self.driver
            .create(id, parent, LayerKind::ReadOnly)
            .unwrap_or_else(|e| panic!("create layer {id}: {e}"));
        self.apply(id, tar)
            .unwrap_or_else(|e| panic!("apply into layer {id}: {e}"))
    }

    /// Applies `tar` into the fresh layer `id`, as the layer store does.
    pub fn apply(&self, id: &str, tar: &mut dyn Read) -> crate::Result<ApplyReport> {
        let dirs = self.driver.dirs(id);
        archive::apply(&dirs.diff, dirs.format, tar)
    }

    /// Creates writable layer `id` on `parent`, mounts it and returns the merged dir.
    pub fn container(&self, id: &str, parent: &str) -> PathBuf {
        self.driver
            .create(id, Some(parent), LayerKind::Writable)
            .unwrap_or_else(|e| panic!("create writable {id}: {e}"));
        self.driver
            .mount(id, Durability::Durable)
            .unwrap_or_else(|e| panic!("mount {id}: {e}"))
    }

    /// `id`'s changes against `parent` as an exported tar.
    pub fn export(&self, id: &str, parent: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        self.driver
            .diff_view(id, parent)
            .and_then(|view| archive::export(&view, &mut out))
            .unwrap_or_else(|e| panic!("export {id}: {e}"));
        out
    }

    /// `docker diff` lines for `id` against `parent`.
    pub fn changes(&self, id: &str, parent: Option<&str>) -> Vec<String> {
        let changes = self
            .driver
            .diff_view(id, parent)
            .and_then(|view| changes::changes(&view))
            .unwrap_or_else(|e| panic!("changes {id}: {e}"));
        changes.iter().map(|c| c.to_string()).collect()
    }

    /// Exports `id` against `parent`, applies that into a new layer `copy` on `parent`, and
    /// mounts a writable layer `<copy>-rw` on it, returning its merged dir.
    pub fn round_trip(&self, id: &str, parent: Option<&str>, copy: &str) -> PathBuf {
        let tar = self.export(id, parent);
        self.layer(copy, parent, &tar);
        self.container(&format!("{copy}-rw"), copy)
    }
}

impl Drop for Fixture {
    /// Detaches whatever is still mounted under the root, so a failed test leaves neither
    /// mounts nor an undeletable tempdir behind.
    fn drop(&mut self) {
        let mut points = mount_points_under(&self.root);
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for point in points {
            let _ = rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// Mount points at or below `dir`, from /proc/self/mountinfo.
pub fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).expect("ascii");
            out.push(u8::from_str_radix(octal, 8).expect("octal escape"));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 mount point")
}

/// What `mv` does: rename, and when the kernel refuses with EXDEV (overlayfs without
/// redirect_dir renaming a lower directory), copy then delete. Returns whether it copied.
pub fn move_path(from: &Path, to: &Path) -> bool {
    match fs::rename(from, to) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            copy_tree(from, to).unwrap_or_else(|e| panic!("copy {} for mv: {e}", from.display()));
            fs::remove_dir_all(from)
                .unwrap_or_else(|e| panic!("rm {} for mv: {e}", from.display()));
            true
        }
        Err(e) => panic!("rename {} -> {}: {e}", from.display(), to.display()),
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions())
    } else if meta.file_type().is_symlink() {
        symlink(fs::read_link(from)?, to)
    } else {
        fs::copy(from, to).map(drop)
    }
}

/// One entry of an exported tar, path normalised (`etc/passwd`, no `./`, no trailing `/`).
#[derive(Clone, Debug)]
pub struct TarEntry {
    pub path: String,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub content: Vec<u8>,
    /// Whether every numeric header field (mode, uid, gid, mtime, size) parses: strict
    /// readers such as the `tar` crate refuse an entry whose fields are left empty.
    pub numeric_fields_ok: bool,
}

pub fn tar_entries(tar: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().expect("read tar") {
        let mut entry = entry.expect("tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let header = entry.header().clone();
        let link = entry
            .link_name()
            .expect("link name")
            .map(|l| l.to_string_lossy().into_owned());
        let mut content = Vec::new();
        if header.entry_type() == tar::EntryType::Regular && header.size().unwrap_or(0) < (1 << 20)
        {
            entry.read_to_end(&mut content).expect("entry content");
        }
        let numeric_fields_ok = header.mode().is_ok()
            && header.uid().is_ok()
            && header.gid().is_ok()
            && header.mtime().is_ok()
            && header.size().is_ok();
        out.push(TarEntry {
            path,
            kind: header.entry_type(),
            mode: header.mode().unwrap_or(u32::MAX),
            uid: header.uid().unwrap_or(u64::MAX),
            gid: header.gid().unwrap_or(u64::MAX),
            mtime: header.mtime().unwrap_or(u64::MAX),
            size: header.size().unwrap_or(0),
            link,
            content,
            numeric_fields_ok,
        });
    }
    out
}

pub fn tar_paths(tar: &[u8]) -> Vec<String> {
    tar_entries(tar).into_iter().map(|e| e.path).collect()
}

/// Asserts every entry of an exported tar has well-formed numeric header fields.
pub fn assert_numeric_fields(what: &str, tar: &[u8]) {
    let bad: Vec<String> = tar_entries(tar)
        .into_iter()
        .filter(|e| !e.numeric_fields_ok)
        .map(|e| e.path)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: entries with empty or malformed uid/gid/mode/mtime header fields: {bad:?}"
    );
}

/// Names in `dir`, sorted.
pub fn ls(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Deterministic pseudo-random bytes (xorshift), for content that does not compress or dedupe.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `is_mounted` says whether a kernel mount is active at the path `mount` returned (vfs mounts
/// nothing: its layer dir is already the full tree).
pub fn assert_is_mounted_truthful(fx: &Fixture, id: &str, path: &Path) {
    let kernel = mount_points_under(&fx.root).iter().any(|p| p == path);
    assert_eq!(
        fx.driver.is_mounted(id).expect("is_mounted"),
        kernel,
        "is_mounted({id}) vs /proc/self/mountinfo"
    );
}

pub fn assert_whiteout_device(path: &Path) {
    let node = tree::node(path);
    assert_eq!(
        (node.kind, node.rdev),
        ('c', 0),
        "{} is not a 0/0 whiteout device",
        path.display()
    );
}
