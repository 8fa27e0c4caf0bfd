//! The driver conformance suite: one set of tests, written once against the `Driver` trait and
//! instantiated for every driver (`vfs::<test>`, `overlay2::<test>`). A driver proves itself by
//! passing it. Each test gets a fresh store root; layers are built by applying real tars and
//! containers' writable layers are changed through their real mounts.
//!
//! overlay2 tests skip (with a printed message) when not root or without kernel overlayfs;
//! tests that chown or mknod skip for every driver when not root.

mod harness;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use harness::tarball::{raw_entry, with_sparse_file, Attrs, TarBuilder};
use harness::tree::{self, assert_same_tree, get_xattr, snapshot};
use harness::*;
use strata_storage::driver::DiffFormat;
use strata_storage::Digest;

macro_rules! for_driver {
    ($driver:ident, [$($test:ident),* $(,)?]) => {
        mod $driver {
            $(
                #[test]
                fn $test() {
                    if let Some(fx) = crate::harness::Fixture::new(stringify!($driver)) {
                        super::$test(&fx)
                    }
                }
            )*
        }
    };
}

macro_rules! conformance {
    ($tests:tt) => {
        for_driver!(vfs, $tests);
        for_driver!(overlay2, $tests);
    };
}

conformance!([
    parent_chains,
    tar_whiteouts_hide_lower_entries,
    copy_up,
    delete_lower_file,
    recreated_dir_is_opaque,
    rename_lower_dir,
    hard_links_round_trip,
    symlinks_round_trip,
    xattrs_round_trip,
    modes_owners_times_round_trip,
    devices_round_trip,
    fifos_round_trip,
    sparse_files_stay_sparse,
    export_is_deterministic,
    changes_use_docker_diff_format,
    remove_layer,
    remove_mounted_layer,
    mount_is_idempotent,
    usage_grows_with_content,
    apply_stays_inside_the_layer,
]);

fn parent_chains(fx: &Fixture) {
    let mut l1 = TarBuilder::new();
    l1.dir("etc")
        .file("etc/os", b"L1")
        .file("common", b"L1")
        .dir("data");
    l1.file("data/one", b"1").file("only1", b"1");
    let mut l2 = TarBuilder::new();
    l2.file("common", b"L2")
        .dir("data")
        .file("data/two", b"2")
        .file("only2", b"2");
    let mut l3 = TarBuilder::new();
    l3.file("common", b"L3")
        .dir("data")
        .file("data/one", b"3")
        .file("only3", b"3");
    fx.layer("l1", None, &l1.finish());
    fx.layer("l2", Some("l1"), &l2.finish());
    fx.layer("l3", Some("l2"), &l3.finish());

    let top = fx.container("rw", "l3");
    assert_eq!(
        ls(&top),
        ["common", "data", "etc", "only1", "only2", "only3"]
    );
    assert_eq!(ls(&top.join("data")), ["one", "two"]);
    assert_eq!(read(&top.join("common")), "L3");
    assert_eq!(read(&top.join("data/one")), "3", "the top layer wins");
    assert_eq!(read(&top.join("data/two")), "2");
    assert_eq!(read(&top.join("etc/os")), "L1");

    let middle = fx.container("rw2", "l2");
    assert_eq!(ls(&middle), ["common", "data", "etc", "only1", "only2"]);
    assert_eq!(read(&middle.join("common")), "L2");
    assert_eq!(read(&middle.join("data/one")), "1");

    if fx.is_overlay2() {
        assert_eq!(
            ls(&fx.driver.diff_dir("l3")),
            ["common", "data", "only3"],
            "l3 holds only its changes"
        );
    }
    let mut ids = fx.driver.list().expect("list");
    ids.sort();
    assert_eq!(ids, ["l1", "l2", "l3", "rw", "rw2"]);
    assert!(!fx.driver.mounts("rw").expect("mounts").is_empty());
    assert_is_mounted_truthful(fx, "rw", &top);
}

fn tar_whiteouts_hide_lower_entries(fx: &Fixture) {
    let mut l1 = TarBuilder::new();
    l1.file("gone", b"x")
        .file("kept", b"k")
        .dir("dir")
        .file("dir/a", b"a")
        .dir("dir/sub")
        .file("dir/sub/b", b"b");
    let mut l2 = TarBuilder::new();
    l2.whiteout("gone")
        .dir("dir")
        .opaque("dir")
        .file("dir/c", b"c");
    fx.layer("l1", None, &l1.finish());
    fx.layer("l2", Some("l1"), &l2.finish());

    let merged = fx.container("rw", "l2");
    assert_eq!(ls(&merged), ["dir", "kept"]);
    assert_eq!(ls(&merged.join("dir")), ["c"]);
    let diff = fx.driver.diff_dir("l2");
    if fx.is_overlay2() {
        assert_whiteout_device(&diff.join("gone"));
        assert_eq!(
            get_xattr(&diff.join("dir"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
        assert!(
            !exists(&diff.join(".wh.gone")),
            "tar whiteouts are converted, not copied"
        );
    } else {
        assert!(!exists(&diff.join("gone")) && !exists(&diff.join(".wh.gone")));
    }
    let export = fx.export("l2", Some("l1"));
    let paths = tar_paths(&export);
    assert!(
        paths.contains(&".wh.gone".to_string()),
        "export of l2: {paths:?}"
    );
    let each_child = ["dir/.wh.a", "dir/.wh.sub"]
        .iter()
        .all(|w| paths.contains(&w.to_string()));
    let opaque = paths.contains(&"dir/.wh..wh..opq".to_string());
    assert!(
        opaque || (fx.driver.diff_format() == DiffFormat::Naive && each_child),
        "export of l2: {paths:?}"
    );
    assert_numeric_fields("export of l2", &export);
}

fn copy_up(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("etc")
        .file("etc/passwd", b"root:x:0:0")
        .file("etc/hosts", b"127.0.0.1 localhost\n");
    fx.layer("base", None, &base.finish());
    let merged = fx.container("c", "base");

    fs::write(merged.join("etc/passwd"), "changed").expect("write through the mount");
    let mut hosts = fs::OpenOptions::new()
        .append(true)
        .open(merged.join("etc/hosts"))
        .expect("open append");
    std::io::Write::write_all(&mut hosts, b"::1 localhost\n").expect("append");
    drop(hosts);

    assert_eq!(read(&merged.join("etc/passwd")), "changed");
    assert_eq!(
        read(&merged.join("etc/hosts")),
        "127.0.0.1 localhost\n::1 localhost\n",
        "copy-up keeps content"
    );
    let lower = fx.driver.diff_dir("base");
    assert_eq!(
        read(&lower.join("etc/passwd")),
        "root:x:0:0",
        "the lower layer is untouched"
    );
    assert_eq!(read(&lower.join("etc/hosts")), "127.0.0.1 localhost\n");
    let sibling = fx.container("c2", "base");
    assert_eq!(
        read(&sibling.join("etc/passwd")),
        "root:x:0:0",
        "a sibling container is untouched"
    );
    if fx.is_overlay2() {
        assert_eq!(
            read(&fx.driver.diff_dir("c").join("etc/passwd")),
            "changed",
            "the copy is in c's diff dir"
        );
    }
    assert_eq!(
        fx.changes("c", Some("base")),
        ["C /etc", "C /etc/hosts", "C /etc/passwd"]
    );
}

fn delete_lower_file(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/gone", b"bye");
    fx.layer("base", None, &base.finish());
    let merged = fx.container("c", "base");

    fs::remove_file(merged.join("etc/gone")).expect("rm through the mount");
    assert!(!exists(&merged.join("etc/gone")));
    assert_eq!(ls(&merged.join("etc")), ["passwd"]);
    assert_eq!(
        read(&fx.driver.diff_dir("base").join("etc/gone")),
        "bye",
        "the lower layer is untouched"
    );
    if fx.is_overlay2() {
        assert_whiteout_device(&fx.driver.diff_dir("c").join("etc/gone"));
    }
    assert_eq!(fx.changes("c", Some("base")), ["C /etc", "D /etc/gone"]);
    let exported = fx.export("c", Some("base"));
    let export = tar_entries(&exported);
    let whiteout = export.iter().find(|e| e.path == "etc/.wh.gone");
    let whiteout = whiteout.unwrap_or_else(|| panic!("no etc/.wh.gone in export: {export:?}"));
    assert!(
        whiteout.kind == tar::EntryType::Regular && whiteout.size == 0,
        "{whiteout:?}"
    );

    let copy = fx.round_trip("c", Some("base"), "copy");
    assert_eq!(
        ls(&copy.join("etc")),
        ["passwd"],
        "the whiteout survives export -> apply"
    );
    if fx.is_overlay2() {
        assert_whiteout_device(&fx.driver.diff_dir("copy").join("etc/gone"));
    }
    assert_numeric_fields("export with a whiteout", &exported);
}

fn recreated_dir_is_opaque(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("dir")
        .file("dir/a", b"a")
        .file("dir/b", b"b")
        .dir("dir/sub")
        .file("dir/sub/c", b"c");
    fx.layer("base", None, &base.finish());
    let merged = fx.container("c", "base");

    fs::remove_dir_all(merged.join("dir")).expect("rm -r through the mount");
    fs::create_dir(merged.join("dir")).expect("mkdir through the mount");
    fs::write(merged.join("dir/new"), "new").expect("write");
    assert_eq!(ls(&merged.join("dir")), ["new"], "old children are gone");
    if fx.is_overlay2() {
        let upper = fx.driver.diff_dir("c").join("dir");
        assert_eq!(
            get_xattr(&upper, "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
    }
    let export = fx.export("c", Some("base"));
    let paths = tar_paths(&export);
    // overlay2 knows the dir was recreated (opaque xattr) and must say so with the marker. A
    // naive (full-copy) diff cannot tell "recreated" from "emptied" and may instead white out
    // each old child, which hides the same entries.
    let opaque = paths.contains(&"dir/.wh..wh..opq".to_string());
    let each_child = ["dir/.wh.a", "dir/.wh.b", "dir/.wh.sub"]
        .iter()
        .all(|w| paths.contains(&w.to_string()));
    if fx.driver.diff_format() == DiffFormat::Overlay {
        assert!(opaque, "export has no dir/.wh..wh..opq: {paths:?}");
    } else {
        assert!(
            opaque || each_child,
            "export hides the old children neither way: {paths:?}"
        );
    }
    assert!(paths.contains(&"dir/new".to_string()), "export: {paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p == "dir/a" || p.starts_with("dir/sub")),
        "export: {paths:?}"
    );
    assert!(fx
        .changes("c", Some("base"))
        .contains(&"A /dir/new".to_string()));

    let copy = fx.round_trip("c", Some("base"), "copy");
    assert_eq!(
        ls(&copy.join("dir")),
        ["new"],
        "opacity survives export -> apply"
    );
    if fx.is_overlay2() {
        let upper = fx.driver.diff_dir("copy").join("dir");
        assert_eq!(
            get_xattr(&upper, "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
    }
    assert_numeric_fields("export of a recreated dir", &export);
}

fn rename_lower_dir(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("old")
        .file("old/f1", b"one")
        .dir("old/sub")
        .file("old/sub/f2", b"two")
        .file("keep", b"k");
    fx.layer("base", None, &base.finish());
    let merged = fx.container("c", "base");

    if move_path(&merged.join("old"), &merged.join("new")) {
        println!("rename of a lower dir failed with EXDEV: copied then deleted, as mv does");
    }
    let check = |root: &Path| {
        assert_eq!(ls(root), ["keep", "new"]);
        assert_eq!(read(&root.join("new/f1")), "one");
        assert_eq!(read(&root.join("new/sub/f2")), "two");
    };
    check(&merged);
    assert_eq!(
        read(&fx.driver.diff_dir("base").join("old/f1")),
        "one",
        "the lower layer is untouched"
    );
    let changes = fx.changes("c", Some("base"));
    assert!(
        changes.contains(&"D /old".to_string()) && changes.contains(&"A /new".to_string()),
        "{changes:?}"
    );
    check(&fx.round_trip("c", Some("base"), "copy"));
}

/// Applies `tar` as layer `a`, checks it, exports it into a fresh layer `b`, and asserts that
/// `a`, `b` and both their merged views are the same tree, each passing `check`.
fn assert_round_trip(fx: &Fixture, tar: &[u8], check: impl Fn(&str, &Path)) {
    fx.layer("a", None, tar);
    let a_dir = fx.driver.diff_dir("a");
    check("layer a", &a_dir);
    let a = snapshot(&a_dir);
    let a_merged = fx.container("a-rw", "a");
    check("merged view of a", &a_merged);
    assert_same_tree("layer a vs its merged view", &a, &snapshot(&a_merged));

    let b_merged = fx.round_trip("a", None, "b");
    let b_dir = fx.driver.diff_dir("b");
    check("layer b (export of a, applied)", &b_dir);
    check("merged view of b", &b_merged);
    assert_same_tree("layer a vs layer b", &a, &snapshot(&b_dir));
    assert_same_tree("layer a vs merged view of b", &a, &snapshot(&b_merged));
}

fn hard_links_round_trip(fx: &Fixture) {
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

fn symlinks_round_trip(fx: &Fixture) {
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

fn xattrs_round_trip(fx: &Fixture) {
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

fn modes_owners_times_round_trip(fx: &Fixture) {
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

fn devices_round_trip(fx: &Fixture) {
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
fn fifos_round_trip(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.dir("run").fifo("run/fifo", Attrs::mode(0o600));
    assert_round_trip(fx, &tar.finish(), |what, root| {
        let fifo = tree::node(&root.join("run/fifo"));
        assert_eq!((fifo.kind, fifo.mode), ('p', 0o600), "{what}");
    });
}

fn sparse_files_stay_sparse(fx: &Fixture) {
    const SIZE: u64 = 1 << 30;
    let mut prefix = TarBuilder::new();
    prefix.dir("big");
    fx.layer_from(
        "a",
        None,
        &mut with_sparse_file(prefix.finish_open(), "big/sparse", SIZE),
    );
    let check = |what: &str, root: &Path| {
        let path = root.join("big/sparse");
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{what}: stat: {e}"));
        assert_eq!(meta.len(), SIZE, "{what}");
        let on_disk = meta.blocks() * 512;
        assert!(
            on_disk < 16 << 20,
            "{what}: a 1 GiB file with one data byte takes {on_disk} bytes on disk"
        );
        let mut last = [0u8; 1];
        fs::File::open(&path)
            .expect("open")
            .read_exact_at(&mut last, SIZE - 1)
            .expect("read last byte");
        assert_eq!(last, [1], "{what}");
    };
    check("layer a", &fx.driver.diff_dir("a"));
    check("merged view of a", &fx.container("a-rw", "a"));

    // Export -> apply streams through a pipe: no 1 GiB buffer.
    let (mut reader, mut writer) = std::io::pipe().expect("pipe");
    std::thread::scope(|s| {
        let exporter = s.spawn(move || fx.driver.export("a", None, &mut writer));
        fx.layer_from("b", None, &mut reader);
        exporter.join().expect("export thread").expect("export a");
    });
    check("layer b (export of a, applied)", &fx.driver.diff_dir("b"));
    check("merged view of b", &fx.container("b-rw", "b"));
}

fn export_is_deterministic(fx: &Fixture) {
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

fn changes_use_docker_diff_format(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/gone", b"x")
        .file("etc/keep", b"k");
    base.dir("usr").dir("usr/bin").file("usr/bin/x", b"x");
    fx.layer("base", None, &base.finish());
    let base_changes = fx.changes("base", None);
    for added in ["A /etc", "A /etc/passwd", "A /usr/bin/x"] {
        assert!(
            base_changes.contains(&added.to_string()),
            "changes of a base layer: {base_changes:?}"
        );
    }

    let merged = fx.container("c", "base");
    fs::write(merged.join("etc/new"), "n").expect("write");
    fs::remove_file(merged.join("etc/gone")).expect("rm");
    fs::write(merged.join("etc/passwd"), "changed").expect("write");
    fs::create_dir(merged.join("opt")).expect("mkdir");
    fs::write(merged.join("opt/app"), "a").expect("write");
    let expected = [
        "C /etc",
        "D /etc/gone",
        "A /etc/new",
        "C /etc/passwd",
        "A /opt",
        "A /opt/app",
    ];
    assert_eq!(fx.changes("c", Some("base")), expected);
}

fn remove_layer(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    let tar = tar.finish();
    fx.layer("x", None, &tar);
    fx.layer("y", Some("x"), &tar);
    let layer_dir = fx.driver.home().join("y");
    let short_link = if fx.is_overlay2() {
        let short = read(&layer_dir.join("link"));
        let link = fx.driver.home().join("l").join(short.trim());
        assert!(
            exists(&link),
            "overlay2 short link {} missing",
            link.display()
        );
        Some(link)
    } else {
        None
    };
    let diff = fx.driver.diff_dir("y");
    fx.driver.remove("y").expect("remove y");
    assert!(!exists(&diff), "{} left behind", diff.display());
    if fx.is_overlay2() {
        assert!(!exists(&layer_dir), "{} left behind", layer_dir.display());
    }
    if let Some(link) = short_link {
        assert!(!exists(&link), "short link {} left behind", link.display());
    }
    assert_eq!(fx.driver.list().expect("list"), ["x"]);
    fx.driver
        .remove("y")
        .expect("removing a missing layer is not an error");
    assert_eq!(
        read(&fx.driver.diff_dir("x").join("f")),
        "f",
        "the parent is untouched"
    );
}

fn remove_mounted_layer(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let merged = fx.container("c", "base");
    fs::write(merged.join("g"), "g").expect("write");
    let diff = fx.driver.diff_dir("c");
    fx.driver.remove("c").expect("remove a mounted layer");
    let left: Vec<_> = mount_points_under(&fx.root);
    assert!(left.is_empty(), "mounts left after remove: {left:?}");
    assert!(!exists(&diff), "{} left behind", diff.display());
    assert_eq!(fx.driver.list().expect("list"), ["base"]);
}

fn mount_is_idempotent(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let first = fx.container("c", "base");
    assert_eq!(fx.driver.mount("c").expect("mount again"), first);
    assert_is_mounted_truthful(fx, "c", &first);
    if fx.is_overlay2() {
        assert!(fx.driver.is_mounted("c").expect("is_mounted"));
    }
    fs::write(first.join("g"), "g").expect("write");
    fx.driver.unmount("c").expect("unmount");
    fx.driver.unmount("c").expect("unmount again");
    assert!(!fx.driver.is_mounted("c").expect("is_mounted"));
    assert!(
        !mount_points_under(&fx.root).contains(&first),
        "{} still mounted",
        first.display()
    );
    let again = fx.driver.mount("c").expect("mount after unmount");
    assert_eq!(
        read(&again.join("g")),
        "g",
        "writes persist across unmount/mount"
    );
    assert_eq!(read(&again.join("f")), "f");
}

fn usage_grows_with_content(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let merged = fx.container("c", "base");
    let before = fx.driver.usage("c").expect("usage");
    fs::write(merged.join("big"), noise(1 << 20, 3)).expect("write 1 MiB");
    fs::File::open(merged.join("big"))
        .expect("open")
        .sync_all()
        .expect("fsync");
    let after = fx.driver.usage("c").expect("usage");
    assert!(
        after.bytes >= before.bytes + (1 << 20),
        "usage bytes {before:?} -> {after:?} after a 1 MiB file"
    );
    assert!(
        after.inodes > before.inodes,
        "usage inodes {before:?} -> {after:?} after a new file"
    );
}

fn apply_stays_inside_the_layer(fx: &Fixture) {
    // A benign tar applies, so that refusing the hostile ones below means something.
    let mut benign = TarBuilder::new();
    benign.dir("d").symlink("d/abs", "/").file("d/f", b"f");
    fx.layer("benign", None, &benign.finish());
    let outside = fx.root.join("outside");
    fs::create_dir(&outside).expect("mkdir outside");
    fs::write(outside.join("secret"), "s").expect("write secret");

    let mut through_symlink = TarBuilder::new();
    through_symlink
        .symlink("escape", outside.to_str().expect("utf-8"))
        .dir("escape")
        .file("escape/pwned", b"x");
    let _ = try_layer(fx, "esc1", &through_symlink.finish());
    assert!(
        !exists(&outside.join("pwned")),
        "apply followed an absolute symlink out of the layer"
    );

    let up = "../".repeat(
        fx.driver
            .diff_dir("esc2")
            .strip_prefix(&fx.root)
            .expect("under root")
            .components()
            .count(),
    );
    let _ = try_layer(fx, "esc2", &raw_entry(&format!("{up}pwned-dotdot"), b"x"));
    assert!(
        !exists(&fx.root.join("pwned-dotdot")),
        "apply followed `..` out of the layer"
    );

    let mut hardlink = TarBuilder::new();
    hardlink.hardlink("hl", &format!("{up}outside/secret"));
    if try_layer(fx, "esc3", &hardlink.finish()).is_ok() {
        let hl = fx.driver.diff_dir("esc3").join("hl");
        let secret_ino = fs::metadata(outside.join("secret")).expect("stat").ino();
        assert!(
            !exists(&hl) || fs::symlink_metadata(&hl).expect("lstat").ino() != secret_ino,
            "hard link out of the layer"
        );
    }
    assert_eq!(ls(&outside), ["secret"]);
}

/// Creates `id` and applies `tar`, returning apply's result (hostile tars may be refused).
fn try_layer(fx: &Fixture, id: &str, tar: &[u8]) -> strata_storage::Result<()> {
    fx.driver.create(id, None, false).expect("create");
    fx.driver.apply(id, &mut &tar[..]).map(drop)
}

/// `is_mounted` says whether a kernel mount is active at the path `mount` returned (vfs mounts
/// nothing: its layer dir is already the full tree).
fn assert_is_mounted_truthful(fx: &Fixture, id: &str, path: &Path) {
    let kernel = mount_points_under(&fx.root).iter().any(|p| p == path);
    assert_eq!(
        fx.driver.is_mounted(id).expect("is_mounted"),
        kernel,
        "is_mounted({id}) vs /proc/self/mountinfo"
    );
}

fn assert_whiteout_device(path: &Path) {
    let node = tree::node(path);
    assert_eq!(
        (node.kind, node.rdev),
        ('c', 0),
        "{} is not a 0/0 whiteout device",
        path.display()
    );
}

/// Checks the harness itself (tar builder, tree snapshots) against GNU tar, so that a failure
/// above points at a driver, not at the tests.
#[test]
fn harness_matches_gnu_tar() {
    if !is_root()
        || std::process::Command::new("tar")
            .arg("--version")
            .output()
            .is_err()
    {
        println!("skipped: harness self-check needs root and GNU tar");
        return;
    }
    let mut tar = TarBuilder::new();
    tar.dir_with(
        "d",
        Attrs::mode(0o750).owner(1234, 5678).mtime(1_111_111_111),
    );
    tar.file_with(
        "d/f",
        b"hello",
        Attrs::mode(0o4755)
            .owner(1234, 5678)
            .xattr("user.k", b"v\0w"),
    );
    tar.hardlink("d/h", "d/f")
        .symlink("d/s", "/abs/target")
        .char_device("d/null", 1, 3, Attrs::mode(0o666));
    tar.fifo("d/p", Attrs::mode(0o600))
        .whiteout("d/gone")
        .opaque("d");
    let bytes = tar.finish();
    let paths = tar_paths(&bytes);
    assert_eq!(
        paths,
        [
            "d",
            "d/f",
            "d/h",
            "d/s",
            "d/null",
            "d/p",
            "d/.wh.gone",
            "d/.wh..wh..opq"
        ]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("t.tar"), &bytes).expect("write tar");
    fs::create_dir(dir.path().join("x")).expect("mkdir");
    let status = std::process::Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--same-owner",
            "-xpf",
            "../t.tar",
        ])
        .current_dir(dir.path().join("x"))
        .status()
        .expect("run tar");
    assert!(status.success());
    let t = snapshot(&dir.path().join("x"));
    let d = &t["d"];
    assert_eq!(
        (d.mode, d.uid, d.gid, d.mtime),
        (0o750, 1234, 5678, 1_111_111_111)
    );
    let f = &t["d/f"];
    assert_eq!((f.mode, f.uid, f.size), (0o4755, 1234, 5));
    assert_eq!(
        f.xattrs.get("user.k").map(Vec::as_slice),
        Some(&b"v\0w"[..])
    );
    assert_eq!(t["d/h"].hardlink_of.as_deref(), Some("d/f"));
    assert_eq!(t["d/s"].link.as_deref(), Some(Path::new("/abs/target")));
    assert_eq!(
        (t["d/null"].kind, t["d/null"].rdev),
        ('c', rustix::fs::makedev(1, 3))
    );
    assert_eq!(t["d/p"].kind, 'p');
    assert_same_tree(
        "a tree against itself",
        &t,
        &snapshot(&dir.path().join("x")),
    );

    let mut prefix = TarBuilder::new();
    prefix.dir("big");
    let mut sparse = Vec::new();
    std::io::Read::read_to_end(
        &mut with_sparse_file(prefix.finish_open(), "big/s", 3 << 20),
        &mut sparse,
    )
    .expect("read");
    let entries = tar_entries(&sparse);
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.path.as_str(), e.size))
            .collect::<Vec<_>>(),
        [("big", 0), ("big/s", 3 << 20)]
    );
}
