//! `archive::apply` on real tars into real directories: every entry kind and its metadata,
//! the three compressions, diffIDs, whiteouts in both layer forms, duplicates.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{apply, gzip, is_root, sha256, snapshot, xattr, zstd, Sandbox, Tar};
use strata_storage::layout::DiffFormat;
use tar::EntryType;

const LONG: &str = "a-directory-name-that-is-long/and-a-file-name-that-is-even-longer-than-that-one-so-the-whole-path-is-over-100-chars.txt";

fn rich_tar() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("etc", 0o755)
        .file_with(
            "etc/passwd",
            b"root:x:0:0\n",
            0o644,
            (0, 0),
            1_500_000_000,
            &[],
        )
        .file_with(
            "bin/su",
            b"#!setuid",
            0o4755,
            (1000, 1001),
            1_400_000_000,
            &[],
        )
        .file_with(
            "tagged",
            b"x",
            0o600,
            (0, 0),
            1_400_000_001,
            &[("SCHILY.xattr.user.color", b"blue")],
        )
        .file_with(
            "pax-named",
            b"p",
            0o640,
            (0, 0),
            1_400_000_002,
            &[("path", b"pax/renamed-by-pax"), ("mtime", b"1400000003.5")],
        )
        .file(LONG, b"long", 0o644)
        .symlink("etc/link", "/etc/passwd")
        .hardlink("etc/hard", "etc/passwd")
        .node("run/fifo", EntryType::Fifo, 0o600, (0, 0))
        .dir("sticky", 0o1777);
    t.bytes()
}

#[test]
fn entry_kinds_modes_owners_times_xattrs_and_names() {
    let sb = Sandbox::new();
    let tar = rich_tar();
    let report = apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &tar).unwrap();
    assert_eq!(report.diff_id.to_string(), sha256(&tar));
    assert_eq!(report.tar_size, tar.len() as u64);
    let l = &sb.layer;
    let md = |p: &str| std::fs::symlink_metadata(l.join(p)).unwrap();
    assert_eq!(
        std::fs::read(l.join("etc/passwd")).unwrap(),
        b"root:x:0:0\n"
    );
    assert_eq!(md("etc/passwd").mtime(), 1_500_000_000);
    assert_eq!(
        md("etc").mtime(),
        1_600_000_000,
        "dir mtime survives its children"
    );
    assert_eq!(
        md("bin/su").mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    if is_root() {
        assert_eq!((md("bin/su").uid(), md("bin/su").gid()), (1000, 1001));
    }
    assert_eq!(
        xattr(&l.join("tagged"), "user.color").as_deref(),
        Some(&b"blue"[..])
    );
    assert_eq!(std::fs::read(l.join("pax/renamed-by-pax")).unwrap(), b"p");
    assert_eq!(
        (
            md("pax/renamed-by-pax").mtime(),
            md("pax/renamed-by-pax").mtime_nsec()
        ),
        (1_400_000_003, 500_000_000)
    );
    assert_eq!(std::fs::read(l.join(LONG)).unwrap(), b"long");
    assert_eq!(
        std::fs::read_link(l.join("etc/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(md("etc/hard").ino(), md("etc/passwd").ino());
    assert!(md("run/fifo").file_type().is_fifo());
    assert_eq!(md("sticky").mode() & 0o7777, 0o1777);
    assert_eq!(report.entries, 10);
}

#[test]
fn device_nodes_are_created_as_devices() {
    if !is_root() {
        eprintln!("SKIPPED device_nodes_are_created_as_devices: mknod of devices needs root");
        return;
    }
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.node("dev/null", EntryType::Char, 0o666, (1, 3)).node(
        "dev/loop9",
        EntryType::Block,
        0o660,
        (7, 9),
    );
    apply(&sb.layer, DiffFormat::FullCopy, &t.bytes()).unwrap();
    let null = std::fs::symlink_metadata(sb.layer.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    let blk = std::fs::symlink_metadata(sb.layer.join("dev/loop9")).unwrap();
    assert!(blk.file_type().is_block_device());
    assert_eq!(blk.rdev(), rustix::fs::makedev(7, 9));
}

/// `snapshot` lines with the mtime of directories the apply made implicitly (parents the
/// archive does not list get the time of the apply: three applies can straddle a second)
/// replaced by `now`. The archive's own times are all before 2020.
fn without_apply_times(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|line| {
            let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
            let implicit = fields.len() > 4
                && fields[1].starts_with("40")
                && fields[4].parse::<i64>().is_ok_and(|t| t > 1_600_000_000);
            if implicit {
                fields[4] = "now".into();
            }
            fields.join(" ")
        })
        .collect()
}

#[test]
fn gzip_zstd_and_plain_give_the_same_tree_and_diff_id() {
    let tar = rich_tar();
    let mut results = Vec::new();
    for data in [tar.clone(), gzip(&tar), zstd(&tar)] {
        let sb = Sandbox::new();
        let report = apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &data).unwrap();
        results.push((
            report.diff_id.to_string(),
            report.tar_size,
            without_apply_times(snapshot(&sb.layer)),
        ));
    }
    assert_eq!(results[0].0, sha256(&tar));
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

#[test]
fn diff_id_covers_bytes_after_the_end_of_archive() {
    let mut tar = Tar::new().file("a", b"a", 0o644).bytes();
    tar.extend_from_slice(&[0u8; 8192]); // GNU tar pads to 10 KiB records
    let sb = Sandbox::new();
    let report = apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &gzip(&tar)).unwrap();
    assert_eq!(
        (report.diff_id.to_string(), report.tar_size),
        (sha256(&tar), tar.len() as u64)
    );
}

#[test]
fn empty_layer_has_the_well_known_diff_id() {
    let sb = Sandbox::new();
    let report = apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &[0u8; 1024]).unwrap();
    let expected = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    assert_eq!((report.diff_id.as_str(), report.entries), (expected, 0));
}

#[test]
fn later_duplicate_entries_win() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.file("x", b"first", 0o644)
        .file("x", b"second", 0o600)
        .file("d", b"file", 0o644)
        .dir("d", 0o750)
        .file("d/f", b"in d", 0o644)
        .dir("s", 0o755)
        .file("s/gone", b"", 0o644)
        .symlink("s", "d")
        // The parent reached through `via` is replaced under it: `via/b` must land in the new one.
        .dir("real", 0o755)
        .symlink("via", "real")
        .file("via/a", b"a", 0o644)
        .file("real", b"now a file", 0o644)
        .dir("real", 0o755)
        .file("via/b", b"b", 0o644);
    apply(&sb.layer, DiffFormat::FullCopy, &t.bytes()).unwrap();
    assert_eq!(std::fs::read(sb.layer.join("real/b")).unwrap(), b"b");
    assert!(!sb.layer.join("real/a").exists());
    assert_eq!(std::fs::read(sb.layer.join("x")).unwrap(), b"second");
    assert_eq!(
        std::fs::metadata(sb.layer.join("x")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(sb.layer.join("d")).unwrap().mode() & 0o777,
        0o750
    );
    assert_eq!(
        std::fs::read_link(sb.layer.join("s")).unwrap(),
        Path::new("d")
    );
}

#[test]
fn overlay_whiteouts_become_char_devices_and_opaque_xattrs() {
    if !is_root() {
        eprintln!("SKIPPED overlay whiteouts: 0/0 char devices and trusted.* xattrs need root");
        return;
    }
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.dir("a", 0o755)
        .file("a/.wh.gone", b"", 0o644)
        .dir("o", 0o755)
        .file("o/.wh..wh..opq", b"", 0o644)
        .file("o/new", b"n", 0o644);
    let report = apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &t.bytes()).unwrap();
    assert_eq!(report.entries, 5);
    let wh = std::fs::symlink_metadata(sb.layer.join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(!sb.layer.join("a/.wh.gone").exists() && !sb.layer.join("o/.wh..wh..opq").exists());
    assert_eq!(
        xattr(&sb.layer.join("o"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(sb.layer.join("o/new").exists());
}

#[test]
fn naive_whiteouts_delete_and_opaque_dirs_keep_only_this_layer() {
    let sb = Sandbox::new();
    let parent = Tar::new()
        .dir("a", 0o755)
        .file("a/gone", b"g", 0o644)
        .dir("a/gonedir/sub", 0o755)
        .file("a/kept", b"k", 0o644)
        .dir("o", 0o755)
        .file("o/old", b"o", 0o644)
        .dir("o/olddir", 0o755)
        .bytes();
    apply(&sb.layer, DiffFormat::FullCopy, &parent).unwrap();
    let mut t = Tar::new();
    t.file("a/.wh.gone", b"", 0o644)
        .file("a/.wh.gonedir", b"", 0o644)
        .file("a/.wh.never-existed", b"", 0o644)
        .dir("o", 0o755)
        .file("o/early", b"e", 0o644)
        .file("o/.wh..wh..opq", b"", 0o644)
        .file("o/new", b"n", 0o644);
    apply(&sb.layer, DiffFormat::FullCopy, &t.bytes()).unwrap();
    let names = |d: &str| {
        let mut v: Vec<_> = std::fs::read_dir(sb.layer.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("a"), ["kept"]);
    assert_eq!(names("o"), ["early", "new"]);
}

/// The opaque marker comes after some of this layer's entries in the directory: those stay,
/// at any depth, with the directories leading to them; everything of the parent goes, also
/// under subdirectories this layer touched (overlay hides all the lower content there).
#[test]
fn naive_opaque_marker_after_this_layers_children() {
    let sb = Sandbox::new();
    let parent = Tar::new()
        .dir("o", 0o755)
        .file("o/old", b"o", 0o644)
        .file("o/over", b"parent", 0o644)
        .file("o/target", b"t", 0o644)
        .dir("o/olddir/x", 0o755)
        .dir("o/sub", 0o755)
        .file("o/sub/x", b"x", 0o644)
        .dir("o/deep/a", 0o755)
        .file("o/deep/a/y", b"y", 0o644)
        .dir("o/ro", 0o555)
        .file("o/ro/z", b"z", 0o644)
        .bytes();
    apply(&sb.layer, DiffFormat::FullCopy, &parent).unwrap();
    // Applied at once after the parent: the boundary falls within the same clock tick.
    let layer = Tar::new()
        .dir("o", 0o700)
        .file("o/early", b"e", 0o644)
        .file("o/over", b"layer", 0o644)
        .hardlink("o/link", "o/target")
        .dir("o/sub", 0o750)
        .file("o/sub/new", b"n", 0o644)
        .dir("o/deep/a", 0o755)
        .dir("o/ro", 0o555)
        .file("o/.wh..wh..opq", b"", 0o644)
        .file("o/new", b"n", 0o644)
        .bytes();
    apply(&sb.layer, DiffFormat::FullCopy, &layer).unwrap();
    let names = |d: &str| {
        let mut v: Vec<_> = std::fs::read_dir(sb.layer.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("o"),
        ["deep", "early", "link", "new", "over", "ro", "sub"]
    );
    assert_eq!(std::fs::read(sb.layer.join("o/over")).unwrap(), b"layer");
    assert_eq!(std::fs::read(sb.layer.join("o/link")).unwrap(), b"t");
    assert_eq!(names("o/sub"), ["new"]);
    assert_eq!(names("o/deep"), ["a"]);
    assert!(names("o/deep/a").is_empty());
    assert!(names("o/ro").is_empty());
    let mode = |d: &str| std::fs::metadata(sb.layer.join(d)).unwrap().mode() & 0o7777;
    assert_eq!(
        (mode("o"), mode("o/sub"), mode("o/ro")),
        (0o700, 0o750, 0o555)
    );
}

#[test]
fn sparse_entries_stay_sparse() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("sparse");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"middle", 32 << 20).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.sparse(true);
    b.append_path_with_name(&src, "big").unwrap();
    let tar = b.into_inner().unwrap();
    assert!(tar.len() < 1 << 20, "the builder wrote a sparse entry");
    let sb = Sandbox::new();
    apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &tar).unwrap();
    let md = std::fs::metadata(sb.layer.join("big")).unwrap();
    assert_eq!(md.len(), 64 << 20);
    assert!(
        md.blocks() * 512 < 1 << 20,
        "holes were written out: {} blocks",
        md.blocks()
    );
    let mut buf = [0u8; 6];
    std::fs::File::open(sb.layer.join("big"))
        .unwrap()
        .read_exact_at(&mut buf, 32 << 20)
        .unwrap();
    assert_eq!(&buf, b"middle");
}
