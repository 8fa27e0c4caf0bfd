//! The vfs driver without privileges, end to end: the `strata` binary run as uid 65534 through
//! `setpriv` imports a busybox rootfs tar whose files are root-owned and that holds a setuid
//! file, a device node, a FIFO, hard links, a symlink, a read-only directory and
//! `user.*`/`trusted.*` xattrs; then mounts, changes, diffs and removes it. Needs root (to
//! drop to another user) and setpriv; skips with a message otherwise.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;
const BUSYBOX: &str = "/bin/busybox";

/// A store and a tarball owned by [`NOBODY`], and the commands to run as that user.
struct Rootless {
    dir: tempfile::TempDir,
}

impl Rootless {
    fn new() -> Rootless {
        let dir = tempfile::Builder::new()
            .prefix("strata-rootless-")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        Rootless { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `program args` as [`NOBODY`] with no supplementary groups.
    fn run_as_nobody(&self, program: &Path, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(program)
            .args(args)
            .env_remove("STRATA_ROOT")
            .env_remove("STRATA_STORAGE_DRIVER")
            .env("STRATA_LOG", "warn")
            .output()
            .unwrap()
    }

    /// Runs strata as [`NOBODY`] on this store with `driver`.
    fn strata_with(&self, driver: &str, root: &str, args: &[&str]) -> Output {
        let root = self.path(root);
        let mut all = vec!["--root", root.to_str().unwrap(), "--storage-driver", driver];
        all.extend_from_slice(args);
        self.run_as_nobody(Path::new(env!("CARGO_BIN_EXE_strata")), &all)
    }

    /// Runs strata with vfs and asserts success; returns stdout and stderr.
    fn strata(&self, args: &[&str]) -> (String, String) {
        let out = self.strata_with("vfs", "store", args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "strata {args:?} as uid {NOBODY} failed:\n{stderr}"
        );
        (stdout, stderr)
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn skip_reason() -> Option<&'static str> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root, cannot switch to another user");
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return Some("setpriv is not installed");
    }
    if !Path::new(BUSYBOX).is_file() {
        return Some("no /bin/busybox (install busybox-static)");
    }
    None
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A PAX extended header setting `records` on the entry that follows it.
fn pax(b: &mut tar::Builder<impl Write>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = [b" ", key.as_bytes(), b"=", value, b"\n"].concat();
        // The length counts its own digits.
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len += 1;
        }
        data.extend_from_slice(len.to_string().as_bytes());
        data.extend_from_slice(&body);
    }
    let mut h = header(tar::EntryType::XHeader, 0o644, data.len() as u64);
    b.append_data(&mut h, "PaxHeaders/x", &data[..]).unwrap();
}

/// A busybox rootfs as `docker export` would give it: everything owned by root.
fn busybox_tar(path: &Path) {
    use tar::EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (dir, mode) in [("bin/", 0o755), ("dev/", 0o755), ("etc/", 0o755)] {
        b.append_data(&mut header(Directory, mode, 0), dir, &[][..])
            .unwrap();
    }
    let busybox = fs::read(BUSYBOX).unwrap();
    pax(
        &mut b,
        &[
            ("SCHILY.xattr.user.strata", b"kept"),
            ("SCHILY.xattr.trusted.strata", b"skipped"),
        ],
    );
    let mut h = header(Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    let mut h = header(Link, 0o755, 0);
    b.append_link(&mut h, "bin/ls", "bin/busybox").unwrap();
    let mut h = header(Symlink, 0o777, 0);
    b.append_link(&mut h, "bin/sh", "busybox").unwrap();
    let su = b"#!/bin/sh\nexit 1\n";
    let mut h = header(Regular, 0o4755, su.len() as u64);
    b.append_data(&mut h, "bin/su", &su[..]).unwrap();
    for (name, kind, major, minor) in [("dev/null", Char, 1, 3), ("dev/loop0", Block, 7, 0)] {
        let mut h = header(kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        b.append_data(&mut h, name, &[][..]).unwrap();
    }
    let mut h = header(Link, 0o666, 0);
    b.append_link(&mut h, "dev/null-again", "dev/null").unwrap();
    b.append_data(&mut header(Fifo, 0o644, 0), "dev/initctl", &[][..])
        .unwrap();
    for (name, mode, text) in [
        ("etc/passwd", 0o644, &b"root:x:0:0:root:/root:/bin/sh\n"[..]),
        ("etc/shadow", 0o640, &b"root:*:19000:0:99999:7:::\n"[..]),
    ] {
        let mut h = header(Regular, mode, text.len() as u64);
        b.append_data(&mut h, name, text).unwrap();
    }
    // Read-only, like /usr on some distributions: its entries are created before its mode.
    b.append_data(&mut header(Directory, 0o555, 0), "usr/", &[][..])
        .unwrap();
    b.append_data(&mut header(Directory, 0o555, 0), "usr/share/", &[][..])
        .unwrap();
    let mut h = header(Regular, 0o444, 3);
    b.append_data(&mut h, "usr/share/motd", &b"hi\n"[..])
        .unwrap();
    b.into_inner().unwrap().sync_all().unwrap();
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

/// Whether some file under `dir` contains `needle` (the store records the diffID somewhere:
/// a config blob or the metadata database).
fn store_mentions(dir: &Path, needle: &[u8]) -> bool {
    fs::read_dir(dir).unwrap().flatten().any(|e| {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            store_mentions(&e.path(), needle)
        } else if ft.is_file() {
            let data = fs::read(e.path()).unwrap_or_default();
            data.windows(needle.len()).any(|w| w == needle)
        } else {
            false
        }
    })
}

#[test]
fn vfs_works_without_privileges() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED vfs_works_without_privileges: {why}");
        return;
    }
    let t = Rootless::new();
    let tar_path = t.path("busybox.tar");
    busybox_tar(&tar_path);
    let tar_str = tar_path.to_str().unwrap();

    // Import: devices skipped with one warning; the diffID is still the tar's digest.
    let (id, stderr) = t.strata(&["import", tar_str, "busybox:latest"]);
    assert!(!id.trim().is_empty(), "import printed no image id");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("device node"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "want one warning about device nodes:\n{stderr}"
    );
    assert!(warnings[0].contains("skipped 3 device node(s)"), "{stderr}");
    let diff_id = format!("sha256:{}", sha256_of(&tar_path));
    assert!(
        store_mentions(&t.path("store"), diff_id.as_bytes()),
        "the store does not record the tar's digest {diff_id} as the diffID"
    );

    let (images, _) = t.strata(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("busybox") && l.contains("latest")),
        "images does not list busybox:latest:\n{images}"
    );

    // Mount: a directory whose files the user can read and run.
    let (mounted, _) = t.strata(&["mount", "--name", "w", "busybox"]);
    let merged = PathBuf::from(mounted.trim());
    check_tree(&t, &merged);

    // Changes made by the user show in diff.
    let busybox = merged.join("bin/busybox");
    let script = format!(
        "echo nobody:x:65534:65534::/:/bin/sh >> {m}/etc/passwd && echo new > {m}/etc/new \
         && rm {m}/etc/shadow",
        m = merged.display()
    );
    let out = t.run_as_nobody(&busybox, &["sh", "-c", &script]);
    assert!(
        out.status.success(),
        "changing the mount: {:?}",
        texts(&out)
    );
    let (diff, _) = t.strata(&["diff", "w"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in ["C /etc", "C /etc/passwd", "A /etc/new", "D /etc/shadow"] {
        assert!(lines.contains(&want), "diff lacks {want:?}:\n{diff}");
    }

    t.strata(&["umount", "w"]);
    t.strata(&["rm", "-f", "w"]);
    t.strata(&["rmi", "busybox"]);
    let (images, _) = t.strata(&["images", "-q"]);
    assert!(images.trim().is_empty(), "images left after rmi:\n{images}");
    let (info, _) = t.strata(&["info"]);
    assert!(info.contains("Layers: 0"), "layers left after rmi:\n{info}");

    // overlay2 cannot work unprivileged, and says to use vfs.
    let out = t.strata_with("overlay2", "store-overlay", &["images"]);
    let (_, stderr) = texts(&out);
    assert!(!out.status.success(), "overlay2 as uid {NOBODY} succeeded");
    assert!(
        stderr.contains("vfs"),
        "the overlay2 error does not point at vfs:\n{stderr}"
    );
}

/// What an unprivileged apply gives: the user owns everything, modes (setuid, read-only
/// directories) are kept, devices are absent, the FIFO, links and `user.*` xattr are there.
fn check_tree(t: &Rootless, merged: &Path) {
    let out = t.run_as_nobody(
        &merged.join("bin/busybox"),
        &["cat", &format!("{}/etc/passwd", merged.display())],
    );
    assert_eq!(
        texts(&out).0,
        "root:x:0:0:root:/root:/bin/sh\n",
        "{:?}",
        texts(&out)
    );
    let out = t.run_as_nobody(&merged.join("bin/sh"), &["-c", "echo ran"]);
    assert_eq!(
        texts(&out).0,
        "ran\n",
        "running busybox as the user: {:?}",
        texts(&out)
    );

    let meta = |p: &str| fs::symlink_metadata(merged.join(p)).unwrap();
    for p in [
        "bin",
        "bin/busybox",
        "bin/su",
        "etc/passwd",
        "dev/initctl",
        "usr/share/motd",
    ] {
        assert_eq!(
            (meta(p).uid(), meta(p).gid()),
            (NOBODY, NOBODY),
            "owner of {p}"
        );
    }
    assert_eq!(meta("bin/su").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(meta("usr").mode() & 0o7777, 0o555, "read-only dir mode");
    assert_eq!(meta("usr/share").permissions().mode() & 0o7777, 0o555);
    assert_eq!(
        meta("bin/ls").ino(),
        meta("bin/busybox").ino(),
        "hard link kept"
    );
    assert_eq!(
        fs::read_link(merged.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(meta("dev/initctl").file_type().is_fifo(), "FIFO created");
    for p in ["dev/null", "dev/loop0", "dev/null-again"] {
        assert!(!merged.join(p).exists(), "device {p} created unprivileged");
    }
    let xattr = |name: &str| {
        Command::new("getfattr")
            .args(["--only-values", "-n", name])
            .arg(merged.join("bin/busybox"))
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    assert_eq!(xattr("user.strata"), b"kept", "user.* xattr applied");
    assert!(
        xattr("trusted.strata").is_empty(),
        "trusted.* xattr applied unprivileged"
    );
}
