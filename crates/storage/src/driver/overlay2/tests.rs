//! overlay2 tests: real layers on disk and, as root, real overlay mounts. Diff dirs are filled
//! with std::fs directly so these tests do not depend on archive apply.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Instant;

use super::*;
use crate::mountinfo;

/// A driver in a temp dir; unmounts whatever is left under it before the dir is deleted.
struct Fixture {
    _tmp: tempfile::TempDir,
    d: Overlay2,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for point in mountinfo::mounts_under(&self.d.home).unwrap_or_default() {
            let _ = mount::unmount_all(&point);
        }
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A checked driver, or None (with a message) when not root.
fn mounted_fixture(test: &str) -> Option<Fixture> {
    if !is_root() {
        eprintln!("skipping {test}: overlay2 mounts need root");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = Overlay2::open(&tmp.path().join("overlay2"), &[]).unwrap();
    Some(Fixture { _tmp: tmp, d })
}

/// A driver whose open-time checks are skipped, for tests that do not mount.
fn data_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let home = Overlay2::make_home(&tmp.path().join("overlay2")).unwrap();
    let status = Status {
        backing_fs: "test".into(),
        d_type: true,
        native_diff: true,
        userxattr: false,
    };
    Fixture {
        _tmp: tmp,
        d: Overlay2 { home, status },
    }
}

fn put(d: &Overlay2, id: &str, rel: &str, contents: &str) {
    let path = d.dirs(id).diff.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn link_of(d: &Overlay2, id: &str) -> String {
    read(d.home.join(id).join("link"))
}

/// base (ro) <- mid (ro) <- top (writable), with files that overlap.
fn three_layers(d: &Overlay2) {
    d.create("base", None, LayerKind::ReadOnly).unwrap();
    put(d, "base", "a", "base-a");
    put(d, "base", "dir/x", "base-x");
    d.create("mid", Some("base"), LayerKind::ReadOnly).unwrap();
    put(d, "mid", "a", "mid-a");
    put(d, "mid", "b", "mid-b");
    d.create("top", Some("mid"), LayerKind::Writable).unwrap();
}

#[test]
fn layout_files_and_links() {
    let f = data_fixture();
    let d = &f.d;
    three_layers(d);
    for id in ["base", "mid", "top"] {
        let link = link_of(d, id);
        assert!(check_short(&link).is_ok(), "{id}: bad link {link:?}");
        let target = std::fs::read_link(d.home.join("l").join(&link)).unwrap();
        assert_eq!(target, PathBuf::from(format!("../{id}/diff")));
        assert!(d.home.join(id).join("diff").is_dir() && d.home.join(id).join("merged").is_dir());
    }
    assert!(!d.home.join("base/lower").exists());
    assert!(!d.home.join("base/work").exists() && !d.home.join("mid/work").exists());
    assert!(d.home.join("top/work").is_dir());
    assert_eq!(
        read(d.home.join("mid/lower")),
        format!("l/{}", link_of(d, "base"))
    );
    let expected = format!("l/{}:l/{}", link_of(d, "mid"), link_of(d, "base"));
    assert_eq!(read(d.home.join("top/lower")), expected);
    assert_eq!(d.list().unwrap(), vec!["base", "mid", "top"]);
    assert!(std::fs::read_dir(d.home.join(".tmp"))
        .unwrap()
        .next()
        .is_none());
    assert!(matches!(
        d.create("mid", None, LayerKind::ReadOnly),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        d.create("../x", None, LayerKind::ReadOnly),
        Err(Error::Conflict(_))
    ));
}

#[test]
fn mounts_data() {
    let f = data_fixture();
    let d = &f.d;
    three_layers(d);
    d.create("alone", None, LayerKind::Writable).unwrap();
    let l = |id: &str| d.home.join("l").join(link_of(d, id)).display().to_string();
    let h = |rel: &str| d.home.join(rel).display().to_string();
    let flags = ["index=off", "redirect_dir=off", "metacopy=off"].map(String::from);

    let top = &d.mounts("top").unwrap()[0];
    assert_eq!(
        (top.fs_type.as_str(), top.source.as_str()),
        ("overlay", "overlay")
    );
    let mut want = vec![
        format!("lowerdir={}:{}", l("mid"), l("base")),
        format!("upperdir={}", h("top/diff")),
        format!("workdir={}", h("top/work")),
    ];
    want.extend(flags.clone());
    assert_eq!(top.options, want);

    let mid = &d.mounts("mid").unwrap()[0];
    let mut want = vec![
        format!("lowerdir={}:{}", l("mid"), l("base")),
        "ro".to_string(),
    ];
    want.extend(flags.clone());
    assert_eq!(mid.options, want);

    let base = &d.mounts("base").unwrap()[0];
    assert_eq!(base.fs_type, "bind");
    assert_eq!(base.source, h("base/diff"));
    assert_eq!(base.options, vec!["ro", "rbind"]);

    let alone = &d.mounts("alone").unwrap()[0];
    assert_eq!(alone.options[0], format!("lowerdir={}", h("alone/empty")));
    assert!(matches!(d.mounts("nope"), Err(Error::NotFound(_))));
}

#[test]
fn diff_view_resolves_and_checks_parent() {
    let f = data_fixture();
    let d = &f.d;
    three_layers(d);
    match d.diff_view("top", Some("mid")).unwrap() {
        DiffView::Overlay {
            upper,
            lowers,
            xattrs,
        } => {
            assert_eq!(xattrs, OverlayXattrs::Trusted);
            assert_eq!(upper, d.home.join("top/diff"));
            assert_eq!(
                lowers,
                vec![d.home.join("mid/diff"), d.home.join("base/diff")]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(d.diff_view("base", None).unwrap(), DiffView::Overlay { lowers, .. } if lowers.is_empty())
    );
    let err = d.diff_view("top", Some("base")).unwrap_err().to_string();
    assert!(err.contains("is not a child of layer base"), "{err}");
    assert!(d.diff_view("top", None).is_err());
    assert!(d.diff_view("base", Some("mid")).is_err());
}

#[test]
fn create_failures_leave_nothing() {
    let f = data_fixture();
    let d = &f.d;
    let err = d
        .create("orphan", Some("missing"), LayerKind::ReadOnly)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("parent layer missing does not exist"),
        "{err}"
    );
    // Fail after the scratch dir is built: make l/ a file so the short link cannot be made.
    std::fs::remove_dir(d.home.join("l")).unwrap();
    std::fs::write(d.home.join("l"), b"").unwrap();
    assert!(d.create("late", None, LayerKind::Writable).is_err());
    std::fs::remove_file(d.home.join("l")).unwrap();
    std::fs::create_dir(d.home.join("l")).unwrap();
    assert!(d.list().unwrap().is_empty());
    assert!(std::fs::read_dir(d.home.join(".tmp"))
        .unwrap()
        .next()
        .is_none());
    assert!(std::fs::read_dir(d.home.join("l"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn usage_counts_hard_links_once() {
    let f = data_fixture();
    let d = &f.d;
    d.create("u", None, LayerKind::ReadOnly).unwrap();
    put(d, "u", "sub/big", &"x".repeat(10_000));
    std::fs::hard_link(
        d.dirs("u").diff.join("sub/big"),
        d.dirs("u").diff.join("again"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.dirs("u").diff.join("sym")).unwrap();
    let usage = d.usage("u").unwrap();
    // diff, sub, big (once), sym
    assert_eq!(usage.inodes, 4);
    assert!(usage.bytes >= 10_000 && usage.bytes < 40_000, "{usage:?}");
}

#[test]
fn cleanup_removes_dangling_links_and_scratch() {
    let f = data_fixture();
    let d = &f.d;
    d.create("keep", None, LayerKind::ReadOnly).unwrap();
    std::os::unix::fs::symlink("../gone/diff", d.home.join("l/AAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .unwrap();
    std::fs::create_dir_all(d.home.join(".tmp/create-x-1/diff")).unwrap();
    d.maintenance().unwrap().cleanup().unwrap();
    let links: Vec<_> = std::fs::read_dir(d.home.join("l")).unwrap().collect();
    assert_eq!(links.len(), 1);
    assert!(d.home.join("l").join(link_of(d, "keep")).exists());
    assert!(std::fs::read_dir(d.home.join(".tmp"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn storage_opts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Overlay2::open(tmp.path(), &["overlay2.size=1G".into()])
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("supports no --storage-opt"),
        "{err}"
    );
}

#[test]
fn chain_mounts_as_union_with_copy_up_whiteout_and_opaque() {
    let Some(f) = mounted_fixture("chain_mounts_as_union") else {
        return;
    };
    let d = &f.d;
    three_layers(d);
    let merged = d.mount("top", Durability::Durable).unwrap();
    assert_eq!(merged, d.home.join("top/merged"));
    assert_eq!(read(merged.join("a")), "mid-a");
    assert_eq!(read(merged.join("b")), "mid-b");
    assert_eq!(read(merged.join("dir/x")), "base-x");

    // Copy-up: the write lands in top's diff; the lower file is untouched.
    std::fs::write(merged.join("a"), "top-a").unwrap();
    assert_eq!(read(d.dirs("top").diff.join("a")), "top-a");
    assert_eq!(read(d.dirs("mid").diff.join("a")), "mid-a");

    // Delete: a 0/0 char device whiteout in diff.
    std::fs::remove_file(merged.join("b")).unwrap();
    let meta = std::fs::symlink_metadata(d.dirs("top").diff.join("b")).unwrap();
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
    assert!(d.dirs("mid").diff.join("b").exists());

    // Remove a lower dir and make it again: opaque.
    std::fs::remove_file(merged.join("dir/x")).unwrap();
    std::fs::remove_dir(merged.join("dir")).unwrap();
    std::fs::create_dir(merged.join("dir")).unwrap();
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(
        d.dirs("top").diff.join("dir"),
        "trusted.overlay.opaque",
        &mut value,
    )
    .unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(std::fs::read_dir(merged.join("dir"))
        .unwrap()
        .next()
        .is_none());
    d.unmount("top").unwrap();

    // A read-only layer with parents and a base layer mount read-only.
    for id in ["mid", "base"] {
        let m = d.mount(id, Durability::Durable).unwrap();
        assert!(m.join("a").exists());
        let err = std::fs::write(m.join("new"), "x").unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::ROFS.raw_os_error())
        );
        d.unmount(id).unwrap();
    }
}

#[test]
fn mount_and_unmount_are_idempotent_and_remove_cleans_up() {
    let Some(f) = mounted_fixture("mount_idempotent") else {
        return;
    };
    let d = &f.d;
    three_layers(d);
    d.create("alone", None, LayerKind::Writable).unwrap();
    assert!(!d.is_mounted("top").unwrap());
    let first = d.mount("top", Durability::Durable).unwrap();
    assert_eq!(d.mount("top", Durability::Durable).unwrap(), first);
    assert_eq!(d.dirs("top").mount_point, first);
    let stacked = mountinfo::mount_points()
        .unwrap()
        .iter()
        .filter(|m| **m == first)
        .count();
    assert_eq!(stacked, 1);
    assert!(d.is_mounted("top").unwrap());
    d.unmount("top").unwrap();
    d.unmount("top").unwrap();
    assert!(!d.is_mounted("top").unwrap());

    std::fs::write(
        d.mount("alone", Durability::Durable).unwrap().join("f"),
        "x",
    )
    .unwrap();
    assert_eq!(read(d.dirs("alone").diff.join("f")), "x");

    d.mount("top", Durability::Durable).unwrap();
    let link = d.home.join("l").join(link_of(d, "top"));
    d.remove("top").unwrap();
    assert!(mountinfo::mounts_under(&d.home.join("top"))
        .unwrap()
        .is_empty());
    assert!(!d.home.join("top").exists() && std::fs::symlink_metadata(&link).is_err());
    d.remove("top").unwrap();
    d.unmount("top").unwrap();
    assert!(!d.is_mounted("top").unwrap());
}

#[test]
fn five_hundred_layers_mount_and_501_are_created_but_not_mounted() {
    let Some(f) = mounted_fixture("five_hundred_layers") else {
        return;
    };
    let d = &f.d;
    let mut parent: Option<String> = None;
    for i in 0..500 {
        let id = format!("layer{i:03}");
        d.create(&id, parent.as_deref(), LayerKind::ReadOnly)
            .unwrap();
        put(d, &id, &format!("file{i:03}"), &i.to_string());
        parent = Some(id);
    }
    d.create("rw", parent.as_deref(), LayerKind::Writable)
        .unwrap();
    let start = Instant::now();
    let merged = d.mount("rw", Durability::Durable).unwrap();
    let took = start.elapsed();
    println!("500-layer overlay mount took {took:?}");
    assert_eq!(std::fs::read_dir(&merged).unwrap().count(), 500);
    assert_eq!(read(merged.join("file000")), "0");
    assert_eq!(read(merged.join("file499")), "499");
    d.unmount("rw").unwrap();

    // A read-only layer on 500 would need 501 lowers to mount: created and filled all the
    // same (loading a deep image must work); only its mount is refused, saying how.
    d.create("layer500", parent.as_deref(), LayerKind::ReadOnly)
        .unwrap();
    put(d, "layer500", "file500", "500");
    let err = d
        .mount("layer500", Durability::Durable)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("501 lower layers") && err.contains("at most 500"),
        "{err}"
    );
    assert!(err.contains("export") && err.contains("vfs"), "{err}");
    assert!(!d.is_mounted("layer500").unwrap());
    d.create("rw501", Some("layer500"), LayerKind::Writable)
        .unwrap();
    let err = d
        .mount("rw501", Durability::Durable)
        .unwrap_err()
        .to_string();
    assert!(err.contains("501 lower layers"), "{err}");
    // And a lower file edited to 501 entries is refused at mount.
    let lower = d.home.join("rw/lower");
    let text = format!("{}:l/{}", read(lower.clone()), link_of(d, "rw"));
    std::fs::write(&lower, text).unwrap();
    let err = d.mount("rw", Durability::Durable).unwrap_err().to_string();
    assert!(err.contains("501 lower layers"), "{err}");
    assert!(!d.is_mounted("rw").unwrap());
}

#[test]
fn classic_mount_fallback_works_and_refuses_over_a_page() {
    let Some(f) = mounted_fixture("classic_mount_fallback") else {
        return;
    };
    let d = &f.d;
    three_layers(d);
    let Plan::Overlay { lowers, upper } = d.plan("top").unwrap() else {
        panic!()
    };
    let target = d.home.join("top/merged");
    mount::mount_overlay_classic(&lowers, upper.as_ref(), &target, false).unwrap();
    assert_eq!(read(target.join("a")), "mid-a");
    mount::unmount_all(&target).unwrap();

    let many: Vec<PathBuf> = (0..200).map(|_| lowers[0].clone()).collect();
    let err = mount::mount_overlay_classic(&many, upper.as_ref(), &target, false).unwrap_err();
    assert!(err.to_string().contains("page mount(2) accepts"), "{err}");
    assert!(!d.is_mounted("top").unwrap());
}

#[test]
fn open_checks_are_cached_and_status_reported() {
    if !is_root() {
        eprintln!("skipping open_checks_are_cached: overlay2 needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("overlay2");
    let start = Instant::now();
    let d = Overlay2::open(&home, &[]).unwrap();
    let cold = start.elapsed();
    let start = Instant::now();
    Overlay2::open(&home, &[]).unwrap();
    let warm = start.elapsed();
    println!("overlay2 open checks: {cold:?} without cache, {warm:?} with cache");
    assert!(home.join(".checks.json").exists());
    assert!(mountinfo::mounts_under(&home).unwrap().is_empty());
    let status = d.status();
    assert_eq!(
        status[0],
        ("Backing Filesystem".to_string(), "extfs".to_string())
    );
    assert_eq!(
        &status[1..],
        &[
            ("Supports d_type".to_string(), "true".to_string()),
            ("Native Overlay Diff".to_string(), "true".to_string()),
            ("userxattr".to_string(), "false".to_string()),
        ]
    );
}

#[test]
fn mount_errors_name_the_broken_lower() {
    let Some(f) = mounted_fixture("mount_errors_name_the_broken_lower") else {
        return;
    };
    let d = &f.d;
    three_layers(d);
    std::fs::remove_dir_all(d.dirs("base").diff).unwrap();
    let err = d.mount("top", Durability::Durable).unwrap_err().to_string();
    println!("broken-lower mount error: {err}");
    assert!(
        err.contains("adding lower") && err.contains(&link_of(d, "base")),
        "{err}"
    );
    assert!(!d.is_mounted("top").unwrap());
}
