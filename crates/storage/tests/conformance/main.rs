//! The driver conformance suite (`strata_storage::testsuite`) run for every built-in driver
//! (`vfs::<test>`, `overlay2::<test>`): a driver proves itself by passing it.
//!
//! overlay2 tests skip (with a printed message) when not root or without kernel overlayfs.

use std::fs;
use std::path::Path;

use strata_storage::conformance_suite;
use strata_storage::testsuite::tarball::{with_sparse_file, Attrs, TarBuilder};
use strata_storage::testsuite::tree::{assert_same_tree, snapshot};
use strata_storage::testsuite::{is_root, open_builtin, tar_entries, tar_paths};

conformance_suite!(vfs, |root| open_builtin("vfs", root));
conformance_suite!(overlay2, |root| open_builtin("overlay2", root));

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
