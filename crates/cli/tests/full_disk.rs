//! A full disk (a small tmpfs as the store root) under `import`, `commit` and `run`, beside
//! `load` in load_bad_input.rs: each that runs out of space fails with a clear error naming
//! the object and the lack of space, leaves nothing half made (`strata check` is clean, no
//! stray mount), keeps the user's data (a container's changes survive a failed commit), and
//! the store works again once space is freed.

#[macro_use]
mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;

per_driver!(
    import_that_fills_the_disk,
    commit_that_fills_the_disk,
    removal_works_on_a_full_disk,
);

const NO_SPACE: &[&str] = &["filesystem holding the store is full", "no space left"];

fn assert_check_clean(s: &Store, after: &str) {
    let out = s.run(&["check"]);
    assert!(
        out.status.success(),
        "{after}: check is not clean:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        s.mounts_inside(),
        Vec::<PathBuf>::new(),
        "{after}: mounts left"
    );
}

/// A tar of one `size`-byte incompressible file `name`.
fn big_tar(name: &str, size: u64) -> Vec<u8> {
    Tar::new()
        .file_from(name, size, Noise::new(size, size))
        .finish()
}

fn import_that_fills_the_disk(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "32m") else {
        return;
    };
    let file = s.input_file("big.tar", &big_tar("big", 48 << 20));
    let err = s.fail(&["import", &file, "big:1"]);
    assert_mentions(&err, &[&file]);
    assert_mentions_any(&err, NO_SPACE);
    assert_check_clean(&s, "an import that filled the disk");
    s.assert_clean("an import that filled the disk");
    // Space is back: a small import works.
    s.import(&rootfs_tar(), "small:1");
    assert_check_clean(&s, "a small import after the full disk");
}

/// The merged dir of a container's writable layer (mounted once more; the caller unmounts).
fn mount_container(s: &Store, id: &str) -> PathBuf {
    PathBuf::from(s.ok(&["mount", id]).trim())
}

fn commit_that_fills_the_disk(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "48m") else {
        return;
    };
    s.import(&rootfs_tar(), "base");
    let id = s.ok(&["create", "--name", "c", "base", "/bin/sh"]);
    let id = id.trim();
    let merged = mount_container(&s, id);
    // 28 MiB of changes: committing them needs another 28 MiB, which the disk does not have.
    let mut f = fs::File::create(merged.join("data")).unwrap();
    std::io::copy(&mut Noise::new(3, 28 << 20), &mut f).unwrap();
    f.sync_all().unwrap();
    drop(f);
    s.ok(&["umount", id]);
    let err = s.fail(&["commit", "c", "snap:1"]);
    assert_mentions_any(&err, &["c", &id[..12]]);
    assert_mentions_any(&err, NO_SPACE);
    assert_check_clean(&s, "a commit that filled the disk");
    assert_eq!(s.image_ids().len(), 1, "no half image");
    // The container's changes are intact.
    let merged = mount_container(&s, id);
    assert_eq!(fs::metadata(merged.join("data")).unwrap().len(), 28 << 20);
    // Freeing space (the big file) lets the same commit work.
    fs::remove_file(merged.join("data")).unwrap();
    fs::write(merged.join("small"), b"small\n").unwrap();
    s.ok(&["umount", id]);
    s.ok(&["commit", "c", "snap:1"]);
    assert_eq!(s.image_ids().len(), 2);
    assert_check_clean(&s, "a commit after space was freed");
}

/// Fills the filesystem of `dir` with a file until it is full; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = Noise::bytes(9, 1 << 20);
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn run_on_a_full_disk() {
    if !can_run_containers() {
        return;
    }
    let Some(s) = Store::on_tmpfs("overlay2", "32m") else {
        return;
    };
    s.import(&busybox_tar(&["sh", "dd", "echo", "cat", "true"]), "bb");

    // A container that writes until the disk is full: its exit code, and `--rm` still
    // removes it (which needs a metadata transaction on the full disk: the space reserve).
    // Its error message is lost: the log cannot be written either.
    let out = s.run(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/big bs=1M count=64",
    ]);
    assert_eq!(out.status.code(), Some(1), "dd into a full disk fails");
    assert_eq!(
        lines(&s.ok(&["ps", "-aq"])),
        Vec::<String>::new(),
        "--rm removed it"
    );
    assert_check_clean(&s, "a container that filled the disk");

    // The disk already full: `run` fails clearly and leaves no container or layer.
    let filler = fill(&s.root);
    let out = s.run(&["run", "--rm", "--name", "late", "bb", "true"]);
    assert!(!out.status.success(), "run on a full disk must fail");
    assert_mentions_any(&String::from_utf8_lossy(&out.stderr), NO_SPACE);
    fs::remove_file(&filler).unwrap();
    assert_check_clean(&s, "a run refused on a full disk");
    assert_eq!(
        lines(&s.ok(&["ps", "-aq"])),
        Vec::<String>::new(),
        "no half container"
    );
    // Space is back: containers run again.
    let out = s.ok(&["run", "--rm", "bb", "echo", "back"]);
    assert_eq!(out.trim(), "back");
    assert_check_clean(&s, "a run after space was freed");
}

/// Regression: on a full disk, SQLite cannot append to its WAL, so `rm`, `rmi` and `prune`
/// (which start with a metadata transaction) all failed with "database or disk is full": the
/// user could not free space through strata. The store keeps a space reserve it releases
/// when the disk is full.
fn removal_works_on_a_full_disk(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "32m") else {
        return;
    };
    s.import(&rootfs_tar(), "base");
    s.import(&Tar::new().file("x", b"x\n").finish(), "other");
    s.ok(&["create", "--name", "c", "base", "/bin/sh"]);
    let filler = fill(&s.root);
    s.ok(&["rm", "c"]);
    s.ok(&["rmi", "other"]);
    s.ok(&["prune", "-f"]);
    fs::remove_file(&filler).unwrap();
    assert_check_clean(&s, "removals on a full disk");
    s.import(&Tar::new().file("y", b"y\n").finish(), "again");
}
