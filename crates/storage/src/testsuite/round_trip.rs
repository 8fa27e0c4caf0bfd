//! apply -> export -> apply round trips: hard links, symlinks, xattrs, modes, owners, times,
//! devices, FIFOs and sparse files survive into a fresh layer and both merged views; exports
//! are deterministic and apply's diffID is the sha256 of the bytes.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::harness::*;
use super::tarball::{with_sparse_file, Attrs, TarBuilder};
use super::tree::{self, assert_same_tree, get_xattr, snapshot};
use crate::Digest;

/// Applies `tar` as layer `a`, checks it, exports it into a fresh layer `b`, and asserts that
/// `a`, `b` and both their merged views are the same tree, each passing `check`.
fn assert_round_trip(fx: &Fixture, tar: &[u8], check: impl Fn(&str, &Path)) {
    fx.layer("a", None, tar);
    let a_dir = fx.driver.dirs("a").diff;
    check("layer a", &a_dir);
    let a = snapshot(&a_dir);
    let a_merged = fx.container("a-rw", "a");
    check("merged view of a", &a_merged);
    assert_same_tree("layer a vs its merged view", &a, &snapshot(&a_merged));

    let b_merged = fx.round_trip("a", None, "b");
    let b_dir = fx.driver.dirs("b").diff;
    check("layer b (export of a, applied)", &b_dir);
    check("merged view of b", &b_merged);
    assert_same_tree("layer a vs layer b", &a, &snapshot(&b_dir));
    assert_same_tree("layer a vs merged view of b", &a, &snapshot(&b_merged));
}

pub fn hard_links_round_trip(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir("hl")
        .file("hl/a", b"shared")
        .hardlink("hl/b", "hl/a")
        .dir("other")
        .hardlink("other/c", "hl/a");
    tar.file("hl/single", b"alone");
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let ino = |p: &str| fs::symlink_metadata(root.join(p)).expect("lstat").ino();
        assert_eq!(
            ino("hl/a"),
            ino("hl/b"),
            "{what}: hl/b is a hard link of hl/a"
        );
        assert_eq!(
            ino("hl/a"),
            ino("other/c"),
            "{what}: other/c is a hard link of hl/a"
        );
        assert_ne!(ino("hl/a"), ino("hl/single"), "{what}");
        assert_eq!(
            fs::symlink_metadata(root.join("hl/a"))
                .expect("lstat")
                .nlink(),
            3,
            "{what}"
        );
    });
}

pub fn symlinks_round_trip(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir("target").file("target/file", b"t").dir("sym");
    tar.symlink("sym/rel", "../target/file")
        .symlink("sym/abs", "/etc/passwd");
    tar.symlink("sym/dangling", "/does/not/exist")
        .symlink("sym/dir", "../target");
    tar.symlink("sym/self", "self");
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let target = |p: &str| {
            fs::read_link(root.join(p)).unwrap_or_else(|e| panic!("{what}: readlink {p}: {e}"))
        };
        assert_eq!(target("sym/rel"), Path::new("../target/file"), "{what}");
        assert_eq!(
            target("sym/abs"),
            Path::new("/etc/passwd"),
            "{what}: absolute targets kept verbatim"
        );
        assert_eq!(
            target("sym/dangling"),
            Path::new("/does/not/exist"),
            "{what}"
        );
        assert_eq!(target("sym/dir"), Path::new("../target"), "{what}");
        assert_eq!(target("sym/self"), Path::new("self"), "{what}");
        assert_eq!(read(&root.join("sym/rel")), "t", "{what}");
    });
}

pub fn xattrs_round_trip(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir_with("x", Attrs::mode(0o755).xattr("user.dir", b"1"));
    tar.file_with(
        "x/f",
        b"data",
        Attrs::mode(0o644)
            .xattr("user.greeting", b"hello")
            .xattr("user.bin", b"\0\x01\xff"),
    );
    tar.file("x/plain", b"no xattrs");
    assert_round_trip(fx, &tar.finish(), |what, root| {
        assert_eq!(
            get_xattr(&root.join("x"), "user.dir").as_deref(),
            Some(&b"1"[..]),
            "{what}"
        );
        assert_eq!(
            get_xattr(&root.join("x/f"), "user.greeting").as_deref(),
            Some(&b"hello"[..]),
            "{what}"
        );
        assert_eq!(
            get_xattr(&root.join("x/f"), "user.bin").as_deref(),
            Some(&b"\0\x01\xff"[..]),
            "{what}"
        );
        assert!(tree::xattrs(&root.join("x/plain")).is_empty(), "{what}");
    });
}

pub fn modes_owners_times_round_trip(fx: &Fixture) {
    if !fx.require_root("chown to 1234:5678") {
        return;
    }
    let mut tar = TarBuilder::new();
    tar.dir_with("bin", Attrs::mode(0o755).mtime(1_234_567_890));
    tar.file_with("bin/su", b"su", Attrs::mode(0o4755).owner(1234, 5678));
    tar.file_with("bin/sg", b"sg", Attrs::mode(0o2711));
    tar.dir_with("tmp", Attrs::mode(0o1777));
    tar.file_with(
        "secret",
        b"s",
        Attrs::mode(0o600).owner(1234, 5678).mtime(1_000_000_000),
    );
    tar.dir_with(
        "home",
        Attrs::mode(0o750).owner(1234, 5678).mtime(1_111_111_111),
    );
    tar.file_with("home/f", b"f", Attrs::mode(0o640).owner(1234, 5678));
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let n = |p: &str| tree::node(&root.join(p));
        assert_eq!(
            (n("bin/su").mode, n("bin/su").uid, n("bin/su").gid),
            (0o4755, 1234, 5678),
            "{what}: setuid after chown"
        );
        assert_eq!(n("bin/sg").mode, 0o2711, "{what}");
        assert_eq!(n("tmp").mode, 0o1777, "{what}: sticky");
        assert_eq!(
            (n("secret").mode, n("secret").uid, n("secret").gid),
            (0o600, 1234, 5678),
            "{what}"
        );
        assert_eq!(n("secret").mtime, 1_000_000_000, "{what}");
        assert_eq!(
            (n("home").mode, n("home").uid, n("home").mtime),
            (0o750, 1234, 1_111_111_111),
            "{what}"
        );
        assert_eq!(
            n("bin").mtime,
            1_234_567_890,
            "{what}: dir mtime restored after its children"
        );
    });
}

pub fn devices_round_trip(fx: &Fixture) {
    if !fx.require_root("mknod of a char device") {
        return;
    }
    let mut tar = TarBuilder::new();
    tar.dir("dev")
        .char_device("dev/null", 1, 3, Attrs::mode(0o666));
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let null = tree::node(&root.join("dev/null"));
        assert_eq!(
            (null.kind, null.rdev, null.mode),
            ('c', rustix::fs::makedev(1, 3), 0o666),
            "{what}"
        );
    });
}

/// The FIFO's header leaves the device number fields empty (NUL), as `tar::Builder` and
/// other writers do for non-device entries: they mean nothing for a FIFO.
pub fn fifos_round_trip(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir("run").fifo("run/fifo", Attrs::mode(0o600));
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let fifo = tree::node(&root.join("run/fifo"));
        assert_eq!((fifo.kind, fifo.mode), ('p', 0o600), "{what}");
    });
}

const SPARSE_SIZE: u64 = 1 << 30;

/// A 1 GiB file of zeros with a final 1, sent as a plain regular tar entry (as `docker export`
/// and Go's archive/tar write it): apply must skip the zeros, not write 1 GiB.
pub fn zero_filled_entry_applies_sparse(fx: &Fixture) {
    let mut prefix = TarBuilder::new();
    prefix.dir("big");
    let mut tar = with_sparse_file(prefix.finish_open(), "big/sparse", SPARSE_SIZE);
    assert_sparse_round_trip(fx, &mut tar);
}

/// The same file as a GNU sparse entry (`tar::Builder` from a real sparse file).
pub fn gnu_sparse_entry_round_trips_sparse(fx: &Fixture) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = fs::File::create(dir.path().join("sparse")).expect("create");
    file.set_len(SPARSE_SIZE).expect("set_len");
    file.write_all_at(&[1], SPARSE_SIZE - 1)
        .expect("write last byte");
    let mut builder = tar::Builder::new(Vec::new());
    builder.sparse(true);
    builder
        .append_path_with_name(dir.path().join("sparse"), "big/sparse")
        .expect("append");
    let tar = builder.into_inner().expect("finish");
    let entries = tar_entries(&tar);
    assert_eq!(
        entries[0].kind,
        tar::EntryType::GNUSparse,
        "the harness made no sparse entry"
    );
    assert_sparse_round_trip(fx, &mut &tar[..]);
}

/// Applies `input` as layer `a`, exports it into `b` (streamed through a pipe: no 1 GiB
/// buffer), and checks the file stays small on disk in both and in their merged views.
fn assert_sparse_round_trip(fx: &Fixture, input: &mut dyn std::io::Read) {
    fx.layer_from("a", None, input);
    assert_small_sparse_file("layer a", &fx.driver.dirs("a").diff);
    assert_small_sparse_file("merged view of a", &fx.container("a-rw", "a"));
    let (mut reader, mut writer) = std::io::pipe().expect("pipe");
    std::thread::scope(|s| {
        let exporter = s.spawn(move || {
            let view = fx.driver.diff_view("a", None)?;
            crate::archive::export(&view, &mut writer)
        });
        fx.layer_from("b", None, &mut reader);
        exporter.join().expect("export thread").expect("export a");
    });
    assert_small_sparse_file("layer b (export of a, applied)", &fx.driver.dirs("b").diff);
    assert_small_sparse_file("merged view of b", &fx.container("b-rw", "b"));
}

fn assert_small_sparse_file(what: &str, root: &Path) {
    let path = root.join("big/sparse");
    let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{what}: stat: {e}"));
    assert_eq!(meta.len(), SPARSE_SIZE, "{what}");
    let on_disk = meta.blocks() * 512;
    assert!(
        on_disk < 16 << 20,
        "{what}: a 1 GiB file with one data byte takes {on_disk} bytes on disk"
    );
    let mut last = [0u8; 1];
    let file = fs::File::open(&path).expect("open");
    file.read_exact_at(&mut last, SPARSE_SIZE - 1)
        .expect("read last byte");
    assert_eq!(last, [1], "{what}");
}

pub fn export_is_deterministic(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/group", b"root")
        .dir("usr")
        .dir("usr/bin");
    tar.file_with(
        "usr/bin/app",
        &noise(100_000, 7),
        Attrs::mode(0o755).xattr("user.k", b"v"),
    );
    tar.symlink("usr/bin/alias", "app")
        .hardlink("usr/bin/hard", "usr/bin/app");
    fx.layer("a", None, &tar.finish());

    let first = fx.export("a", None);
    let second = fx.export("a", None);
    assert_eq!(
        Digest::of_bytes(&first),
        Digest::of_bytes(&second),
        "two exports of one layer differ"
    );
    let report = fx.layer("b", None, &first);
    assert_eq!(
        report.diff_id,
        Digest::of_bytes(&first),
        "apply's diffID is the sha256 of the tar"
    );
    assert_eq!(report.tar_size, first.len() as u64);
    assert_eq!(
        Digest::of_bytes(&fx.export("b", None)),
        Digest::of_bytes(&first),
        "export(apply(export(a))) != export(a)"
    );

    let merged = fx.container("c", "a");
    fs::write(merged.join("etc/passwd"), "changed").expect("write");
    fs::remove_file(merged.join("etc/group")).expect("rm");
    let first = fx.export("c", Some("a"));
    assert_eq!(
        Digest::of_bytes(&first),
        Digest::of_bytes(&fx.export("c", Some("a"))),
        "exports of a container differ"
    );
}
