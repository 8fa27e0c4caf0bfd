//! Hostile layer tars: each must be refused or contained inside the layer, and nothing may
//! change outside it (a sentinel directory beside the layer is compared before and after;
//! absolute targets use names under /etc that are checked not to exist afterwards).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{apply, gzip, is_root, xattr, zstd, Sandbox, Tar};
use strata_storage::layout::DiffFormat;
use strata_storage::Error;
use tar::EntryType::{Link, Regular};

/// Applies `tar` in both formats to fresh sandboxes; returns the results for the caller to
/// judge, after checking that nothing outside changed.
fn attempt(tar: &[u8], host_paths: &[&str]) -> Vec<(Sandbox, strata_storage::Result<u64>)> {
    [DiffFormat::OVERLAY_TRUSTED, DiffFormat::FullCopy]
        .into_iter()
        .map(|format| {
            let sb = Sandbox::new();
            let result = apply(&sb.layer, format, tar).map(|r| r.entries);
            sb.assert_outside_untouched();
            for p in host_paths {
                assert!(!Path::new(p).exists(), "{p} was created on the host");
            }
            (sb, result)
        })
        .collect()
}

fn assert_escape_refused(tar: &[u8]) {
    for (_, result) in attempt(tar, &[]) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::PathEscape(_)),
            "expected PathEscape, got {err}"
        );
        assert!(err.to_string().contains("escapes the layer root"), "{err}");
    }
}

#[test]
fn dotdot_paths_are_refused() {
    assert_escape_refused(
        &Tar::new()
            .raw(Regular, b"../outside/evil", b"", b"x")
            .bytes(),
    );
    assert_escape_refused(
        &Tar::new()
            .raw(Regular, b"./../outside/evil", b"", b"x")
            .bytes(),
    );
    assert_escape_refused(
        &Tar::new()
            .raw(Regular, b"a/../../outside/evil", b"", b"x")
            .bytes(),
    );
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    let tar = Tar::new()
        .raw(Regular, b"/etc/strata-hostile-abs", b"", b"x")
        .bytes();
    for (sb, result) in attempt(&tar, &["/etc/strata-hostile-abs"]) {
        result.unwrap();
        assert_eq!(
            std::fs::read(sb.layer.join("etc/strata-hostile-abs")).unwrap(),
            b"x"
        );
    }
}

#[test]
fn writing_through_a_symlink_to_root_stays_inside() {
    let tar = Tar::new()
        .symlink("evil", "/")
        .raw(Regular, b"evil/etc/strata-hostile-sym", b"", b"x")
        .bytes();
    let tar_parent = Tar::new().dir("etc", 0o755).bytes();
    for format in [DiffFormat::OVERLAY_TRUSTED, DiffFormat::FullCopy] {
        let sb = Sandbox::new();
        apply(&sb.layer, format, &tar_parent).unwrap();
        apply(&sb.layer, format, &tar).unwrap();
        assert!(sb.layer.join("etc/strata-hostile-sym").is_file());
        assert!(!Path::new("/etc/strata-hostile-sym").exists());
        sb.assert_outside_untouched();
    }
}

#[test]
fn writing_through_a_symlink_to_dotdot_stays_inside() {
    let tar = Tar::new()
        .dir("d", 0o755)
        .symlink("d/up", "..")
        .symlink("d/upup", "../../..")
        .raw(Regular, b"d/up/x", b"", b"1")
        .raw(Regular, b"d/upup/y", b"", b"2")
        .raw(Regular, b"d/upup/outside/sentinel", b"", b"overwritten?")
        .bytes();
    for (sb, result) in attempt(&tar, &[]) {
        result.unwrap();
        assert_eq!(std::fs::read(sb.layer.join("x")).unwrap(), b"1");
        assert_eq!(std::fs::read(sb.layer.join("y")).unwrap(), b"2");
        assert_eq!(
            std::fs::read(sb.layer.join("outside/sentinel")).unwrap(),
            b"overwritten?"
        );
    }
}

#[test]
fn symlink_then_directory_entries_stay_inside() {
    // A symlink pointing at the real outside dir (relative and absolute), then entries under
    // it: all resolve to the layer's own `outside` or `tmp`.
    for target in ["../outside", "/tmp", "../../../../../../tmp"] {
        let tar = Tar::new()
            .dir("outside", 0o755)
            .dir("tmp", 0o755)
            .symlink("link", target)
            .dir("link/strata-hostile-sub", 0o777)
            .raw(Regular, b"link/strata-hostile-sub/f", b"", b"x")
            .bytes();
        for (sb, result) in attempt(&tar, &["/tmp/strata-hostile-sub"]) {
            result.unwrap();
            let inside = sb.layer.join(target.trim_start_matches(['.', '/']));
            assert!(inside.join("strata-hostile-sub/f").is_file(), "{target}");
        }
    }
    // A dangling symlink in the way is refused (as GNU tar does), never followed out.
    let tar = Tar::new()
        .symlink("link", "../outside")
        .raw(Regular, b"link/f", b"", b"x")
        .bytes();
    for (_, result) in attempt(&tar, &[]) {
        assert!(result.is_err());
    }
}

#[test]
fn an_entry_replaces_a_symlink_instead_of_writing_through_it() {
    let sb = Sandbox::new();
    let target = sb.outside.join("sentinel");
    let tar = Tar::new()
        .symlink("f", target.to_str().unwrap())
        .file("f", b"replaced", 0o777)
        .symlink("d", sb.outside.to_str().unwrap())
        .dir("d", 0o777)
        .bytes();
    apply(&sb.layer, DiffFormat::FullCopy, &tar).unwrap();
    assert_eq!(std::fs::read(sb.layer.join("f")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(sb.layer.join("d"))
        .unwrap()
        .is_dir());
    sb.assert_outside_untouched();
}

#[test]
fn hard_links_out_of_the_layer_are_refused_or_contained() {
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();
    // Absolute: means the layer's own etc/passwd, which does not exist here.
    let tar = Tar::new().raw(Link, b"pw", b"/etc/passwd", b"").bytes();
    for (_, result) in attempt(&tar, &[]) {
        assert!(
            result.is_err(),
            "a hard link to a missing in-layer target must fail"
        );
    }
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().nlink(),
        passwd_links
    );
    assert_escape_refused(
        &Tar::new()
            .raw(Link, b"s", b"../outside/sentinel", b"")
            .bytes(),
    );
    // Through a symlink inside the layer: resolved in the layer, so the real sentinel is not found.
    let tar = Tar::new()
        .symlink("l", "../outside")
        .raw(Link, b"h", b"l/sentinel", b"")
        .bytes();
    for (sb, result) in attempt(&tar, &[]) {
        assert!(result.is_err());
        assert_eq!(
            std::fs::metadata(sb.outside.join("sentinel"))
                .unwrap()
                .nlink(),
            1
        );
    }
    // To a whiteout name.
    let tar = Tar::new()
        .file(".wh.x", b"", 0o644)
        .raw(Link, b"h", b".wh.x", b"")
        .bytes();
    for (_, result) in attempt(&tar, &[]) {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("whiteout"), "{err}");
    }
}

#[test]
fn whiteouts_cannot_reach_outside() {
    assert_escape_refused(&Tar::new().raw(Regular, b"a/.wh...", b"", b"").bytes());
    assert_escape_refused(
        &Tar::new()
            .raw(Regular, b"../.wh.sentinel", b"", b"")
            .bytes(),
    );
    assert_escape_refused(
        &Tar::new()
            .raw(Regular, b"../outside/.wh..wh..opq", b"", b"")
            .bytes(),
    );
    // Through a symlink: resolved inside the layer, where there is nothing to delete.
    let tar = Tar::new()
        .symlink("evil", "../outside")
        .symlink("abs", "/")
        .raw(Regular, b"evil/.wh.sentinel", b"", b"")
        .raw(Regular, b"abs/etc/.wh.passwd", b"", b"")
        .bytes();
    let sb = Sandbox::new();
    apply(&sb.layer, DiffFormat::FullCopy, &tar).unwrap();
    sb.assert_outside_untouched();
    assert!(Path::new("/etc/passwd").exists());
    if is_root() {
        // Overlay form creates the whiteout device inside the layer (`/` means the layer).
        let tar = Tar::new()
            .symlink("abs", "/")
            .raw(Regular, b"abs/.wh.passwd", b"", b"")
            .bytes();
        let sb = Sandbox::new();
        apply(&sb.layer, DiffFormat::OVERLAY_TRUSTED, &tar).unwrap();
        assert!(std::fs::symlink_metadata(sb.layer.join("passwd")).is_ok());
        sb.assert_outside_untouched();
    }
}

#[test]
fn overlay_xattrs_are_never_taken_from_the_archive() {
    if !is_root() {
        eprintln!(
            "SKIPPED overlay_xattrs_are_never_taken_from_the_archive: reading trusted.* needs root"
        );
        return;
    }
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ])
        .dir("d", 0o755)
        .file_with(
            "f",
            b"",
            0o644,
            (0, 0),
            1,
            &[("SCHILY.xattr.trusted.overlay.metacopy", b"")],
        )
        .bytes();
    for (sb, result) in attempt(&tar, &[]) {
        result.unwrap();
        assert_eq!(xattr(&sb.layer.join("d"), "trusted.overlay.opaque"), None);
        assert_eq!(xattr(&sb.layer.join("d"), "trusted.overlay.redirect"), None);
        assert_eq!(xattr(&sb.layer.join("f"), "trusted.overlay.metacopy"), None);
    }
}

fn assert_archive_error(data: &[u8], needle: &str) {
    for (_, result) in attempt(data, &[]) {
        let err = result.unwrap_err();
        eprintln!("{needle}: {err}");
        assert!(
            matches!(err, Error::Archive(_)),
            "expected an archive error, got {err}"
        );
        assert!(
            err.to_string().contains(needle),
            "{err:?} should mention {needle:?}"
        );
    }
}

#[test]
fn truncated_streams_are_errors() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = Tar::new()
        .file("a", b"a", 0o644)
        .file("big", &big, 0o644)
        .file("z", b"z", 0o644)
        .bytes();
    assert_archive_error(&tar[..100_000], "truncated");
    assert_archive_error(&tar[..512 + 512 + 300], "truncated"); // inside the second header
    let gz = gzip(&tar);
    assert_archive_error(&gz[..gz.len() / 2], "gzip");
    assert_archive_error(&gz[..gz.len() - 4], "gzip"); // only the trailer is missing
    let zst = zstd(&tar);
    assert_archive_error(&zst[..zst.len() / 2], "zstd");
    assert_archive_error(&zst[..zst.len() - 3], "zstd");
}

#[test]
fn garbage_and_unknown_compressions_are_named() {
    assert_archive_error(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0, 4, 0xe6], "xz");
    assert_archive_error(b"BZh91AY&SY", "bzip2");
    assert_archive_error(&[b'#'; 4096], "unrecognised");
    assert_archive_error(b"tiny", "too short");
    assert_archive_error(b"", "empty");
    let mut bad_header = Tar::new().file("a", b"a", 0o644).bytes();
    bad_header[0] ^= 0x20; // breaks the checksum
    assert_archive_error(&bad_header, "checksum");
}
