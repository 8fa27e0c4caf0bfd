//! Layers on layers: parent chains, whiteouts from tars, and a container's copy-up, deletion,
//! opaque directory and directory rename, each checked in the merged view, in the driver's
//! on-disk form, in `changes`, and through export -> apply.

use std::fs;
use std::path::Path;

use super::harness::*;
use super::tarball::TarBuilder;
use super::tree::get_xattr;
use crate::layout::DiffFormat;

pub fn parent_chains(fx: &Fixture) {
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
            ls(&fx.driver.dirs("l3").diff),
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

pub fn tar_whiteouts_hide_lower_entries(fx: &Fixture) {
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
    let dirs = fx.driver.dirs("l2");
    let diff = dirs.diff;
    if let DiffFormat::Overlay { xattrs } = dirs.format {
        assert_whiteout_device(&diff.join("gone"));
        assert_eq!(
            get_xattr(&diff.join("dir"), xattrs.opaque()).as_deref(),
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
        opaque || (fx.driver.dirs("l2").format == DiffFormat::FullCopy && each_child),
        "export of l2: {paths:?}"
    );
    assert_numeric_fields("export of l2", &export);
}

pub fn copy_up(fx: &Fixture) {
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
    let lower = fx.driver.dirs("base").diff;
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
            read(&fx.driver.dirs("c").diff.join("etc/passwd")),
            "changed",
            "the copy is in c's diff dir"
        );
    }
    assert_eq!(
        fx.changes("c", Some("base")),
        ["C /etc", "C /etc/hosts", "C /etc/passwd"]
    );
}

pub fn delete_lower_file(fx: &Fixture) {
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
        read(&fx.driver.dirs("base").diff.join("etc/gone")),
        "bye",
        "the lower layer is untouched"
    );
    if fx.is_overlay2() {
        assert_whiteout_device(&fx.driver.dirs("c").diff.join("etc/gone"));
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
        assert_whiteout_device(&fx.driver.dirs("copy").diff.join("etc/gone"));
    }
    assert_numeric_fields("export with a whiteout", &exported);
}

pub fn recreated_dir_is_opaque(fx: &Fixture) {
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
    if let DiffFormat::Overlay { xattrs } = fx.driver.dirs("c").format {
        let upper = fx.driver.dirs("c").diff.join("dir");
        assert_eq!(
            get_xattr(&upper, xattrs.opaque()).as_deref(),
            Some(&b"y"[..])
        );
    }
    let export = fx.export("c", Some("base"));
    let paths = tar_paths(&export);
    // overlay2 knows the dir was recreated (opaque xattr) and must say so with the marker. A
    // full-copy diff cannot tell "recreated" from "emptied" and may instead white out
    // each old child, which hides the same entries.
    let opaque = paths.contains(&"dir/.wh..wh..opq".to_string());
    let each_child = ["dir/.wh.a", "dir/.wh.b", "dir/.wh.sub"]
        .iter()
        .all(|w| paths.contains(&w.to_string()));
    if fx.driver.dirs("c").format.is_overlay() {
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
    if let DiffFormat::Overlay { xattrs } = fx.driver.dirs("copy").format {
        let upper = fx.driver.dirs("copy").diff.join("dir");
        assert_eq!(
            get_xattr(&upper, xattrs.opaque()).as_deref(),
            Some(&b"y"[..])
        );
    }
    assert_numeric_fields("export of a recreated dir", &export);
}

pub fn rename_lower_dir(fx: &Fixture) {
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
        read(&fx.driver.dirs("base").diff.join("old/f1")),
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
