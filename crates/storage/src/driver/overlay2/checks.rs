//! The checks overlay2 runs when it opens, each failing with a clear error that points at
//! `--storage-driver vfs`.
//!
//! Cheap checks run every time: root, `overlay` in /proc/filesystems, not in a user namespace,
//! and the backing filesystem (statfs). The expensive ones (d_type, and a real test mount that
//! writes and deletes through an overlay) run once per kernel release and backing filesystem;
//! their success is cached in `<home>/.checks.json` so each CLI start does not remount.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::layout::is_whiteout;

use super::mount::{mount_overlay, unmount_all};
use super::{random_name, write_atomic, TMP_DIR};

const CACHE_FILE: &str = ".checks.json";
const REMEDY: &str = "use --storage-driver vfs instead";

/// What `strata info` shows about the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub backing_fs: String,
    pub d_type: bool,
    /// Always true: we mount with `redirect_dir=off` (and index, metacopy off), so an upper
    /// dir is always a faithful diff.
    pub native_diff: bool,
    /// Always false: we refuse to run in a user namespace, where overlay needs `userxattr`
    /// and `user.overlay.*` markers; overlay2's layers are all `OverlayXattrs::Trusted`.
    pub userxattr: bool,
}

/// The checks that need no home dir; run before creating it.
pub fn before_home() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Unsupported(format!(
            "overlay2 needs root to mount overlayfs; run strata as root, or {REMEDY}"
        )));
    }
    let filesystems =
        std::fs::read_to_string("/proc/filesystems").ctx(|| "reading /proc/filesystems".into())?;
    if !filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Err(Error::Unsupported(format!(
            "the kernel does not support overlayfs (no `overlay` in /proc/filesystems; try \
             `modprobe overlay`), or {REMEDY}"
        )));
    }
    if in_user_namespace()? {
        return Err(Error::Unsupported(format!(
            "strata runs in a user namespace, where overlayfs needs userxattr; overlay2 does not \
             support that yet: {REMEDY}"
        )));
    }
    Ok(())
}

/// The checks on `home` (which exists): backing filesystem, then the cached d_type and test
/// mount.
pub fn on_home(home: &Path) -> Result<Status> {
    let magic = rustix::fs::statfs(home).ctx_path("statfs of", home)?.f_type as u64;
    let backing_fs = fs_name(magic);
    if matches!(backing_fs.as_str(), "overlayfs" | "aufs" | "ecryptfs") {
        return Err(Error::Unsupported(format!(
            "overlay2 cannot use {} as its home: it is on {backing_fs}, which cannot be an \
             overlay's upper dir; put the store on ext4/xfs/btrfs (--root), or {REMEDY}",
            home.display()
        )));
    }
    let key = cache_key(magic);
    if read_cache(home).as_deref() != Some(key.as_str()) {
        probe(home)?;
        write_atomic(home, CACHE_FILE, key.as_bytes())?;
    }
    Ok(Status {
        backing_fs,
        d_type: true,
        native_diff: true,
        userxattr: false,
    })
}

/// Docker's names for backing filesystems (`strata info` "Backing Filesystem").
fn fs_name(magic: u64) -> String {
    let name = match magic {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x6175_6673 => "aufs",
        0xF15F => "ecryptfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0x6969 => "nfs",
        0x8584_58F6 => "ramfs",
        0x7371_7368 => "squashfs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "v9fs",
        0xFF53_4D42 | 0xFE53_4D42 => "cifs",
        0x5346_544E => "ntfs",
        0x4D44 => "msdos",
        _ => return format!("<unknown fs magic {magic:#x}>"),
    };
    name.to_string()
}

fn cache_key(magic: u64) -> String {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    serde_json::json!({ "kernel": release, "fs_magic": magic, "d_type": true, "mount": true })
        .to_string()
}

fn read_cache(home: &Path) -> Option<String> {
    std::fs::read_to_string(home.join(CACHE_FILE)).ok()
}

fn in_user_namespace() -> Result<bool> {
    let map = std::fs::read_to_string("/proc/self/uid_map")
        .ctx(|| "reading /proc/self/uid_map".into())?;
    let fields: Vec<&str> = map.split_whitespace().collect();
    Ok(fields != ["0", "0", "4294967295"])
}

/// The expensive checks, in a scratch dir under `<home>/.tmp` removed afterwards.
fn probe(home: &Path) -> Result<()> {
    let scratch = home.join(TMP_DIR).join(format!("check-{}", random_name()));
    std::fs::create_dir_all(&scratch).ctx_path("creating", &scratch)?;
    let result = check_d_type(&scratch).and_then(|()| test_mount(&scratch));
    let merged = scratch.join("merged");
    let cleanup = unmount_all(&merged).and_then(|()| crate::fs::remove_tree(&scratch));
    result.and(cleanup)
}

/// Overlay needs the file type in directory entries to find whiteouts quickly.
fn check_d_type(scratch: &Path) -> Result<()> {
    std::fs::write(scratch.join("probe"), b"").ctx_path("creating a file in", scratch)?;
    let fd = rustix::fs::open(
        scratch,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx_path("opening", scratch)?;
    let mut dir = rustix::fs::Dir::new(fd).ctx_path("reading", scratch)?;
    while let Some(entry) = dir.read() {
        let entry = entry.ctx_path("reading", scratch)?;
        if entry.file_name().to_bytes() == b"probe" {
            if entry.file_type() == rustix::fs::FileType::Unknown {
                return Err(Error::Unsupported(format!(
                    "the filesystem of {} does not report file types in directory entries \
                     (d_type), which overlayfs needs (xfs: format with -n ftype=1); {REMEDY}",
                    scratch.display()
                )));
            }
            return Ok(());
        }
    }
    Err(Error::Corrupt(format!(
        "created {}/probe but cannot list it",
        scratch.display()
    )))
}

/// Mounts a real overlay, writes and deletes through it, and checks what lands in upper.
fn test_mount(scratch: &Path) -> Result<()> {
    let dirs: Vec<PathBuf> = ["lower", "upper", "work", "merged"]
        .iter()
        .map(|d| scratch.join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).ctx_path("creating", d)?;
    }
    std::fs::write(dirs[0].join("old"), b"lower").ctx_path("writing in", &dirs[0])?;
    let upper = (dirs[1].clone(), dirs[2].clone());
    mount_overlay(
        std::slice::from_ref(&dirs[0]),
        Some(&upper),
        &dirs[3],
        false,
    )
    .map_err(|e| {
        Error::Unsupported(format!(
            "a test overlay mount under {} failed ({e}); {REMEDY}",
            scratch.display()
        ))
    })?;
    let merged = &dirs[3];
    std::fs::write(merged.join("new"), b"upper").ctx_path("writing through the overlay", merged)?;
    std::fs::remove_file(merged.join("old")).ctx_path("deleting through the overlay", merged)?;
    unmount_all(merged)?;
    let whiteout = rustix::fs::lstat(dirs[1].join("old"));
    let ok = std::fs::read(dirs[1].join("new")).ok().as_deref() == Some(b"upper".as_slice())
        && whiteout.is_ok_and(|st| is_whiteout(&st));
    if !ok {
        return Err(Error::Unsupported(format!(
            "a test overlay under {} did not record a write and a whiteout in its upper dir; \
             {REMEDY}",
            scratch.display()
        )));
    }
    Ok(())
}
