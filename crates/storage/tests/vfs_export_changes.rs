//! The vfs driver, layer export and change listing on real trees: files, links, devices,
//! xattrs and whiteouts made with real syscalls, tars read back with the tar crate.
//! Tests that need root (chown, trusted.* xattrs, mknod) skip with a message otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags};
use sha2::{Digest as _, Sha256};
use strata_storage::driver::{self, Durability, LayerKind};
use strata_storage::layout::{DiffView, OverlayXattrs};
use strata_storage::{archive, changes};

fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root (chown, trusted.* xattrs, mknod)");
    false
}

fn set_mtime(p: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let ts = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rfs::utimensat(rfs::CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn write(p: &Path, data: &str) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, data).unwrap();
}

fn whiteout(p: &Path) {
    rfs::mknodat(rfs::CWD, p, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
}

fn set_xattr(p: &Path, k: &str, v: &[u8]) {
    rfs::lsetxattr(p, k, v, XattrFlags::empty()).unwrap();
}

fn get_xattr(p: &Path, k: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let n = rfs::lgetxattr(p, k, &mut buf[..]).unwrap();
    buf.truncate(n);
    buf
}

/// (path, type, mode, size, link, xattrs) of every entry of a tar.
type Row = (String, char, u32, u64, String, BTreeMap<String, Vec<u8>>);

fn read_tar(bytes: &[u8]) -> Vec<Row> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut x = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for r in pax {
                let r = r.unwrap();
                x.insert(r.key().unwrap().to_string(), r.value_bytes().to_vec());
            }
        }
        let h = e.header().clone();
        let path = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .unwrap_or_default();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        out.push((
            path,
            h.entry_type().as_byte() as char,
            h.mode().unwrap(),
            body.len() as u64,
            link,
            x,
        ));
    }
    out
}

fn names(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.0.as_str()).collect()
}

fn export(view: &DiffView) -> Vec<u8> {
    let mut out = Vec::new();
    archive::export(view, &mut out).unwrap();
    out
}

fn listing(view: &DiffView) -> Vec<String> {
    changes::changes(view)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn vfs_copy_preserves_everything() {
    if !root() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let d = driver::open("vfs", store.path(), &[]).unwrap();
    d.create("a", None, LayerKind::ReadOnly).unwrap();
    let a = d.dirs("a").diff;
    write(&a.join("dir/file"), "hello");
    fs::set_permissions(a.join("dir/file"), fs::Permissions::from_mode(0o4755)).unwrap();
    rfs::chownat(
        rfs::CWD,
        a.join("dir/file"),
        Some(rfs::Uid::from_raw(1000)),
        Some(rfs::Gid::from_raw(1001)),
        AtFlags::empty(),
    )
    .unwrap();
    fs::set_permissions(a.join("dir/file"), fs::Permissions::from_mode(0o4755)).unwrap();
    set_xattr(&a.join("dir/file"), "user.u", b"1");
    set_xattr(&a.join("dir/file"), "trusted.t", b"2");
    set_xattr(&a.join("dir/file"), "security.s", b"3");
    fs::hard_link(a.join("dir/file"), a.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", a.join("dangling")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", a.join("abs")).unwrap();
    set_xattr(&a.join("abs"), "trusted.sym", b"s");
    rfs::mknodat(
        rfs::CWD,
        a.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rfs::makedev(1, 3),
    )
    .unwrap();
    rfs::mknodat(
        rfs::CWD,
        a.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let sparse = fs::File::create(a.join("sparse")).unwrap();
    sparse.write_at(b"x", (1 << 30) - 1).unwrap();
    set_mtime(&a.join("dir/file"), 1_000_000);
    set_mtime(&a.join("abs"), 1_000_001);
    set_mtime(&a.join("dir"), 1_000_002);

    let t = Instant::now();
    d.create("b", Some("a"), LayerKind::Writable).unwrap();
    println!(
        "vfs copy of the tree (1 GiB sparse file included): {:?}",
        t.elapsed()
    );
    let b = d.dirs("b").diff;
    let m = fs::symlink_metadata(b.join("dir/file")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o4755, 1000, 1001, 1_000_000)
    );
    assert_eq!(fs::read_to_string(b.join("dir/file")).unwrap(), "hello");
    for (k, v) in [("user.u", b"1"), ("trusted.t", b"2"), ("security.s", b"3")] {
        assert_eq!(get_xattr(&b.join("dir/file"), k), v);
    }
    assert_eq!(
        m.ino(),
        fs::symlink_metadata(b.join("link")).unwrap().ino(),
        "hard link kept"
    );
    assert_eq!(m.nlink(), 2);
    assert_eq!(
        fs::read_link(b.join("dangling")).unwrap(),
        Path::new("nowhere")
    );
    assert_eq!(
        fs::read_link(b.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(get_xattr(&b.join("abs"), "trusted.sym"), b"s");
    assert_eq!(
        fs::symlink_metadata(b.join("abs")).unwrap().mtime(),
        1_000_001
    );
    assert_eq!(
        fs::symlink_metadata(b.join("dir")).unwrap().mtime(),
        1_000_002
    );
    let null = fs::symlink_metadata(b.join("null")).unwrap();
    let src_null = fs::symlink_metadata(a.join("null")).unwrap();
    assert_eq!(
        (null.rdev(), null.mode()),
        (rfs::makedev(1, 3), src_null.mode())
    );
    let fifo = fs::symlink_metadata(b.join("fifo")).unwrap();
    assert_eq!(
        fifo.mode(),
        fs::symlink_metadata(a.join("fifo")).unwrap().mode()
    );
    assert!(fifo.file_type().is_fifo() && null.file_type().is_char_device());
    let sp = fs::symlink_metadata(b.join("sparse")).unwrap();
    println!(
        "sparse 1 GiB copy: size {} allocated {} bytes",
        sp.len(),
        sp.blocks() * 512
    );
    assert_eq!(sp.len(), 1 << 30);
    assert!(sp.blocks() * 512 <= 1 << 20, "holes must stay holes");

    let ua = d.usage("a").unwrap();
    println!("usage of a: {ua:?}");
    assert_eq!(
        ua.inodes, 8,
        "root, dir, file (and its link once), 2 symlinks, null, fifo, sparse"
    );
    assert_eq!(d.mounts("a").unwrap()[0].options, ["rbind", "ro"]);
    assert_eq!(d.mounts("b").unwrap()[0].options, ["rbind", "rw"]);
    assert_eq!(d.mount("b", Durability::Durable).unwrap(), b);
    assert!(!d.is_mounted("b").unwrap());
    // The copy, exported against its parent, has no changes; then a write shows.
    let view = d.diff_view("b", Some("a")).unwrap();
    assert!(listing(&view).is_empty(), "{:?}", listing(&view));
    assert_eq!(read_tar(&export(&view)).len(), 0);
}

#[test]
fn vfs_housekeeping() {
    let store = tempfile::tempdir().unwrap();
    assert!(driver::open("vfs", store.path(), &["vfs.quota=1G".into()]).is_err());
    let d = driver::open("vfs", store.path(), &[]).unwrap();
    println!("vfs status: {:?}", d.status());
    assert_eq!(d.status()[0].0, "Backing Filesystem");
    d.create("x", None, LayerKind::Writable).unwrap();
    assert!(d.create("x", None, LayerKind::Writable).is_err());
    assert!(d.create("y", Some("missing"), LayerKind::Writable).is_err());
    // The id rule all drivers share: a bad id is a Conflict, whatever is wrong with it.
    let long = "a".repeat(129);
    for bad in ["../evil", "", ".hidden", "l", "a/b", "a b", long.as_str()] {
        let err = d.create(bad, None, LayerKind::Writable).unwrap_err();
        assert!(
            matches!(err, strata_storage::Error::Conflict(_)),
            "{bad:?}: {err}"
        );
    }
    d.create(&"a".repeat(128), None, LayerKind::ReadOnly)
        .unwrap();
    d.remove(&"a".repeat(128)).unwrap();
    assert_eq!(
        d.dirs("x").mount_point,
        d.mount("x", Durability::Durable).unwrap()
    );
    fs::create_dir(store.path().join("vfs/dir/.tmp-z-1234")).unwrap();
    assert_eq!(d.list().unwrap(), ["x"]);
    d.maintenance().unwrap().cleanup().unwrap();
    assert!(!store.path().join("vfs/dir/.tmp-z-1234").exists());
    d.remove("x").unwrap();
    d.remove("x").unwrap();
    assert!(d.list().unwrap().is_empty());
}

/// An overlay upper with a new file, a changed file, a whiteout and an opaque dir.
fn overlay_upper(upper: &Path) {
    write(&upper.join("etc/new"), "n");
    write(&upper.join("etc/passwd"), "root");
    whiteout(&upper.join("etc/gone"));
    write(&upper.join("var/c"), "c");
    set_xattr(&upper.join("var"), "trusted.overlay.opaque", b"y");
    set_xattr(&upper.join("etc/passwd"), "user.k", b"v");
}

#[test]
fn export_overlay_upper_converts_whiteouts() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let upper = t.path().join("upper");
    overlay_upper(&upper);
    let view = DiffView::Overlay {
        upper: upper.clone(),
        lowers: vec![],
        xattrs: OverlayXattrs::Trusted,
    };
    let bytes = export(&view);
    let rows = read_tar(&bytes);
    assert_eq!(
        names(&rows),
        [
            "etc/",
            "etc/.wh.gone",
            "etc/new",
            "etc/passwd",
            "var/",
            "var/.wh..wh..opq",
            "var/c"
        ]
    );
    let wh = &rows[1];
    assert_eq!(
        (wh.1, wh.2, wh.3),
        ('0', 0, 0),
        "a whiteout is an empty regular file, mode 0"
    );
    assert_eq!(
        rows[3].5.get("SCHILY.xattr.user.k").map(|v| &v[..]),
        Some(&b"v"[..])
    );
    assert!(rows
        .iter()
        .all(|r| r.5.keys().all(|k| !k.contains("trusted.overlay"))));
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes.ends_with(&[0u8; 1024]));
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[test]
fn export_is_deterministic() {
    let t = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for tree in ["one", "two"] {
        let up = t.path().join(tree);
        write(&up.join("a/b/file"), "same content");
        write(&up.join("a/other"), "x");
        std::os::unix::fs::symlink("b/file", up.join("a/sym")).unwrap();
        fs::hard_link(up.join("a/other"), up.join("hl")).unwrap();
        for p in ["a/b/file", "a/other", "a/sym", "a/b", "a", ""] {
            set_mtime(&up.join(p), 1_600_000_000);
        }
        let view = DiffView::Overlay {
            upper: up,
            lowers: vec![],
            xattrs: OverlayXattrs::Trusted,
        };
        let first = export(&view);
        assert_eq!(sha(&first), sha(&export(&view)), "same tree exported twice");
        let rows = read_tar(&first);
        assert_eq!(
            names(&rows),
            ["a/", "a/b/", "a/b/file", "a/other", "a/sym", "hl"]
        );
        assert_eq!(
            (rows[5].1, rows[5].4.as_str()),
            ('1', "a/other"),
            "second path is a hard link"
        );
        digests.push(sha(&first));
    }
    println!("export sha256 of two separately made equal trees: {digests:?}");
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn naive_export_and_changes() {
    let store = tempfile::tempdir().unwrap();
    let d = driver::open("vfs", store.path(), &[]).unwrap();
    d.create("a", None, LayerKind::ReadOnly).unwrap();
    let a = d.dirs("a").diff;
    write(&a.join("etc/passwd"), "root");
    write(&a.join("etc/gone"), "g");
    write(&a.join("etc/keep"), "k");
    write(&a.join("olddir/x/y"), "y");
    write(&a.join("usr/bin/tool"), "t");
    set_mtime(&a.join("etc/passwd"), 1_000);
    d.create("b", Some("a"), LayerKind::Writable).unwrap();
    let b = d.dirs("b").diff;
    write(&b.join("etc/new"), "n");
    write(&b.join("etc/passwd"), "root+");
    fs::remove_file(b.join("etc/gone")).unwrap();
    fs::remove_dir_all(b.join("olddir")).unwrap();
    write(&b.join("newdir/sub/file"), "f");
    let view = d.diff_view("b", Some("a")).unwrap();
    assert_eq!(
        listing(&view),
        [
            "C /etc",
            "D /etc/gone",
            "A /etc/new",
            "C /etc/passwd",
            "A /newdir",
            "A /newdir/sub",
            "A /newdir/sub/file",
            "D /olddir"
        ]
    );
    let rows = read_tar(&export(&view));
    assert_eq!(
        names(&rows),
        [
            ".wh.olddir",
            "etc/",
            "etc/.wh.gone",
            "etc/new",
            "etc/passwd",
            "newdir/",
            "newdir/sub/",
            "newdir/sub/file"
        ]
    );
    // A layer with no parent exports its whole tree.
    let all = read_tar(&export(&d.diff_view("a", None).unwrap()));
    assert_eq!(all.len(), 10);
}

#[test]
fn overlay_changes_like_docker_diff() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (upper, l1, l2) = (
        t.path().join("upper"),
        t.path().join("l1"),
        t.path().join("l2"),
    );
    write(&l2.join("etc/passwd"), "root");
    write(&l2.join("etc/gone"), "g");
    write(&l2.join("var/a"), "a");
    write(&l2.join("var/wiped"), "w");
    write(&l1.join("var/b"), "b");
    whiteout(&l1.join("var/wiped"));
    write(&l2.join("usr/lib/x"), "x");
    overlay_upper(&upper);
    write(&upper.join("usr/lib/new"), "new");
    let view = DiffView::Overlay {
        upper,
        lowers: vec![l1, l2],
        xattrs: OverlayXattrs::Trusted,
    };
    assert_eq!(
        listing(&view),
        [
            "C /etc",
            "D /etc/gone",
            "A /etc/new",
            "C /etc/passwd",
            "C /usr",
            "C /usr/lib",
            "A /usr/lib/new",
            "C /var",
            "D /var/a",
            "D /var/b",
            "A /var/c"
        ]
    );
}

#[test]
fn overlay_changes_are_flat_in_the_image_size() {
    let t = tempfile::tempdir().unwrap();
    let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
    for i in 0..200 {
        let dir = lower.join(format!("d{i:03}"));
        fs::create_dir_all(&dir).unwrap();
        for j in 0..100 {
            fs::File::create(dir.join(format!("f{j}")))
                .unwrap()
                .write_all(b"data")
                .unwrap();
        }
    }
    fs::create_dir_all(lower.join("etc")).unwrap();
    write(&upper.join("etc/hostname"), "h");
    let view = DiffView::Overlay {
        upper,
        lowers: vec![lower],
        xattrs: OverlayXattrs::Trusted,
    };
    let t0 = Instant::now();
    let list = listing(&view);
    println!(
        "changes, one file over a lower of 20k files: {:?}",
        t0.elapsed()
    );
    assert_eq!(list, ["C /etc", "A /etc/hostname"]);
    let t0 = Instant::now();
    let rows = read_tar(&export(&view));
    println!("export, same layer: {:?}", t0.elapsed());
    assert_eq!(names(&rows), ["etc/", "etc/hostname"]);
}
