//! `strata check`: a real store is damaged with real file operations (truncated link files,
//! deleted layer dirs, rows deleted with sqlite3, a changed file, mounts left behind,
//! leftovers), and check must name each damaged object, `--repair` must fix what it promises
//! (and leave the rest, saying so), and the store must check clean at the end.

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

per_driver!(
    a_fresh_store_checks_clean,
    leftovers_are_found_and_removed,
    a_deleted_layer_dir_is_found_and_not_repaired,
    rows_deleted_with_sqlite_are_found_and_repaired,
    a_changed_file_fails_the_rehash,
    a_stray_mount_is_found_and_unmounted,
    recovery_at_open_removes_config_blobs_of_no_image,
);

/// Runs `strata check ARGS`; returns its exit status and standard output.
fn check(s: &Store, args: &[&str]) -> (i32, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().expect("check exits, not killed");
    eprintln!("check {args:?} -> {code}\n{stdout}{stderr}");
    (code, stdout)
}

fn assert_clean(s: &Store, after: &str) {
    let (code, out) = check(s, &[]);
    assert_eq!(code, 0, "{after}: check is not clean:\n{out}");
    assert!(out.contains("clean"), "{after}: {out}");
}

/// Finds problems of `kind` naming `object` in check's output, and asserts they are (or are
/// not) marked repairable.
fn assert_found(out: &str, kind: &str, object: &str, repairable: bool) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{kind}: ")) && l.contains(object))
        .unwrap_or_else(|| panic!("no {kind} problem naming {object} in:\n{out}"));
    let tag = if repairable {
        "[--repair fixes this]"
    } else {
        "[not repairable:"
    };
    assert!(line.contains(tag), "{line}: expected {tag}");
}

/// The image's layer dir (overlay2: `<id>/` holding `diff/`; vfs: the tree itself) and its
/// storage id, from `image inspect`.
fn image_layer(s: &Store, image: &str) -> (PathBuf, String) {
    let json: Value = serde_json::from_str(&s.ok(&["image", "inspect", image])).unwrap();
    let data = &json[0]["GraphDriver"]["Data"];
    let dir = match (data["UpperDir"].as_str(), data["Dir"].as_str()) {
        (Some(upper), _) => Path::new(upper).parent().unwrap().to_path_buf(),
        (None, Some(dir)) => PathBuf::from(dir),
        _ => panic!("no layer dir in {json}"),
    };
    let sid = dir.file_name().unwrap().to_string_lossy().into_owned();
    (dir, sid)
}

/// The tree of the image's layer (where its files are).
fn image_tree(s: &Store, image: &str) -> PathBuf {
    let (dir, _) = image_layer(s, image);
    match s.driver {
        "overlay2" => dir.join("diff"),
        _ => dir,
    }
}

fn top_chain(s: &Store, image: &str) -> String {
    let json: Value = serde_json::from_str(&s.ok(&["image", "inspect", image])).unwrap();
    // One layer: its chainID is its diffID.
    json[0]["RootFS"]["Layers"][0].as_str().unwrap().to_string()
}

fn sqlite(s: &Store, sql: &str) -> bool {
    let db = s.root.join("strata.db");
    match Command::new("sqlite3").arg(&db).arg(sql).output() {
        Ok(out) => {
            assert!(out.status.success(), "sqlite3 {sql}: {out:?}");
            true
        }
        Err(_) => {
            eprintln!("SKIP: the sqlite3 command-line tool is not installed");
            false
        }
    }
}

fn a_fresh_store_checks_clean(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    s.ok(&["mount", "--name", "work", "base"]);
    s.ok(&["create", "--name", "c1", "base", "/bin/sh"]);
    assert_clean(&s, "a fresh store");
    let (code, _) = check(&s, &["--repair"]);
    assert_eq!(code, 0, "repair of a clean store");
    assert_eq!(
        s.image_ids().len(),
        1,
        "repair of a clean store removed nothing"
    );
}

fn leftovers_are_found_and_removed(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    fs::write(s.root.join("tmp/0123.inflight"), b"").unwrap();
    fs::create_dir(s.root.join("tmp/half-spooled")).unwrap();
    let orphan_split = format!("{}.zst", "ab".repeat(16));
    fs::write(s.root.join("tar-split").join(&orphan_split), b"x").unwrap();
    let orphan_dir = "cd".repeat(16);
    let home = s.root.join(driver);
    let layers_home = if driver == "vfs" {
        home.join("dir")
    } else {
        home.clone()
    };
    fs::create_dir_all(layers_home.join(&orphan_dir).join("diff")).unwrap();
    let ghost = "e".repeat(64);
    fs::create_dir(s.root.join("containers").join(&ghost)).unwrap();
    fs::write(s.root.join("blobs/sha256").join("f".repeat(64)), b"{}").unwrap();

    let (code, out) = check(&s, &[]);
    assert_eq!(code, 1, "leftovers are problems");
    assert_found(&out, "staging-leftover", "0123.inflight", true);
    assert_found(&out, "staging-leftover", "half-spooled", true);
    assert_found(&out, "orphan-tar-split", &orphan_split, true);
    assert_found(&out, "orphan-dir", &orphan_dir, true);
    assert_found(&out, "container-leftover", &ghost, true);
    assert_found(&out, "orphan-blob", &"f".repeat(64), true);
    // A plain check changes nothing.
    assert!(
        s.root.join("tmp/0123.inflight").exists(),
        "check alone removed a leftover"
    );

    let (code, out) = check(&s, &["--repair"]);
    assert_eq!(code, 0, "every leftover is repairable:\n{out}");
    assert!(out.contains("after repair: clean"), "{out}");
    assert!(!layers_home.join(&orphan_dir).exists());
    assert!(!s.root.join("containers").join(&ghost).exists());
    assert_clean(&s, "after repairing leftovers");
    assert_eq!(s.image_ids().len(), 1, "the image survived the repair");
}

fn a_deleted_layer_dir_is_found_and_not_repaired(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    let chain = top_chain(&s, "base");
    let (dir, sid) = image_layer(&s, "base");
    fs::remove_dir_all(&dir).unwrap();

    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(&out, "missing-dir", &chain, false);
    assert!(out.contains(&sid), "the missing dir is named: {out}");
    let (code, out) = check(&s, &["--repair"]);
    assert_eq!(code, 1, "a lost layer is not repairable");
    assert!(out.contains("remain (not fixed)"), "{out}");
    assert_found(&out, "missing-dir", &chain, false);
    assert_eq!(s.image_ids().len(), 1, "repair did not remove the image");

    // What the remedy says: remove the image; then the store is whole again.
    s.ok(&["rmi", "-f", "base"]);
    assert_clean(&s, "after rmi of the image with the lost layer");
}

fn rows_deleted_with_sqlite_are_found_and_repaired(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let id = s.import(&rootfs_tar(), "base");
    s.import(&Tar::new().file("only", b"1\n").finish(), "other");
    let chain = top_chain(&s, "base");
    let (_, other_sid) = image_layer(&s, "other");
    let other_id = s.ok(&["images", "-q", "--no-trunc"]);
    let other_id = other_id.lines().find(|l| *l != id).unwrap().to_string();
    // `base` loses its image row (its tag, layer reference and config stay behind);
    // `other` loses its image and layer rows (its layer dir and tar-split stay behind).
    let sql = format!(
        "DELETE FROM images WHERE id = '{id}'; DELETE FROM images WHERE id = '{other_id}'; \
         DELETE FROM tags WHERE image_id = '{other_id}'; \
         DELETE FROM layers WHERE storage_id = '{other_sid}';"
    );
    if !sqlite(&s, &sql) {
        return;
    }
    let (code, out) = check(&s, &[]);
    assert_eq!(code, 1);
    assert_found(&out, "ref-count", &chain, true);
    assert_found(&out, "dangling-tag", "base:latest", true);
    assert_found(&out, "orphan-blob", id.trim_start_matches("sha256:"), true);
    assert_found(&out, "orphan-dir", &other_sid, true);

    let (code, out) = check(&s, &["--repair"]);
    assert_eq!(code, 0, "{out}");
    assert_clean(&s, "after repairing deleted rows");
    // The layer the image held is now unused: prune reclaims it, and the store is empty.
    s.ok(&["prune", "-f"]);
    s.assert_clean("after prune");
}

fn a_changed_file_fails_the_rehash(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    let chain = top_chain(&s, "base");
    let file = image_tree(&s, "base").join("etc/passwd");
    let mut bytes = fs::read(&file).unwrap();
    bytes[0] ^= 0x20; // same size, different content
    fs::write(&file, &bytes).unwrap();

    let (code, _) = check(&s, &["--quick"]);
    assert_eq!(code, 0, "--quick does not re-hash");
    let (code, out) = check(&s, &[]);
    assert_eq!(code, 1);
    assert_found(&out, "layer-content", &chain, false);
    let (code, _) = check(&s, &["--repair"]);
    assert_eq!(code, 1, "changed content cannot be repaired");
    s.ok(&["rmi", "base"]);
    assert_clean(&s, "after removing the damaged image");
}

fn mount_tmpfs(at: &Path) {
    let data = std::ffi::CString::new("size=1m").unwrap();
    rustix::mount::mount(
        "tmpfs",
        at,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        data.as_c_str(),
    )
    .expect("mounting a tmpfs");
}

fn a_stray_mount_is_found_and_unmounted(driver: &'static str) {
    if !is_root() {
        eprintln!("SKIP: leaving a mount behind needs root");
        return;
    }
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    let point = s.root.join("stray");
    fs::create_dir(&point).unwrap();
    mount_tmpfs(&point);
    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(&out, "leftover-mount", "stray", true);
    let (code, out) = check(&s, &["--repair", "--quick"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.mounts_inside(),
        Vec::<PathBuf>::new(),
        "repair unmounted it"
    );
    assert_clean(&s, "after unmounting");
}

#[test]
fn overlay2_link_lower_and_short_links_are_rebuilt() {
    let Some(s) = Store::new("overlay2") else {
        return;
    };
    s.import(&rootfs_tar(), "base");
    s.ok(&["mount", "--name", "work", "base"]);
    s.ok(&["umount", "work"]);
    let (dir, sid) = image_layer(&s, "base");
    let rw_dir = {
        let json: Value = serde_json::from_str(&s.ok(&["inspect", "work"])).unwrap();
        let upper = json["GraphDriver"]["Data"]["UpperDir"]
            .as_str()
            .unwrap()
            .to_string();
        Path::new(&upper).parent().unwrap().to_path_buf()
    };
    let short = fs::read_to_string(dir.join("link")).unwrap();
    fs::write(dir.join("link"), b"").unwrap(); // truncated, as Docker's crash victims are
    fs::write(rw_dir.join("lower"), b"").unwrap();
    let rw_short = fs::read_to_string(rw_dir.join("link")).unwrap();
    fs::remove_file(s.root.join("overlay2/l").join(&rw_short)).unwrap();
    let dangling = "DANGLING0000000000000000AA";
    std::os::unix::fs::symlink("../nothere/diff", s.root.join("overlay2/l").join(dangling))
        .unwrap();

    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(&out, "driver-records", &format!("{sid})"), true);
    assert!(out.contains("link file"), "{out}");
    assert_found(&out, "driver-records", "writable layer work", true);
    assert!(
        out.contains(&rw_short),
        "the missing short link is named: {out}"
    );
    assert_found(&out, "driver-leftover", dangling, true);

    let (code, out) = check(&s, &["--repair", "--quick"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        fs::read_to_string(dir.join("link")).unwrap(),
        short,
        "kept its short link"
    );
    assert!(s.root.join("overlay2/l").join(&rw_short).exists());
    assert!(fs::read_to_string(rw_dir.join("lower"))
        .unwrap()
        .contains(&short));
    assert!(!s.root.join("overlay2/l").join(dangling).exists());
    // The repaired layers mount and show the image's files.
    let merged = s.ok(&["mount", "work"]);
    assert!(Path::new(merged.trim()).join("etc/passwd").is_file());
    s.ok(&["umount", "work"]);
    assert_clean(&s, "after rebuilding records");
}

#[test]
fn overlay2_mount_counts_are_reconciled() {
    let Some(s) = Store::new("overlay2") else {
        return;
    };
    s.import(&rootfs_tar(), "base");
    let merged = s.ok(&["mount", "--name", "held", "base"]);
    s.ok(&["mount", "--name", "ghost", "base"]);
    s.ok(&["umount", "ghost"]);
    let (dir, _) = image_layer(&s, "base");
    // (Damage after the last strata command: recovery at every open reconciles counts.)
    // `held` is mounted but its count says nobody holds it; `ghost` says mounted but is not.
    if !sqlite(
        &s,
        "UPDATE rw_layers SET mount_count = 0 WHERE name = 'held'; \
         UPDATE rw_layers SET mount_count = 2 WHERE name = 'ghost';",
    ) {
        return;
    }
    // A tmpfs on a read-only layer's mount point: nothing accounts for it.
    mount_tmpfs(&dir.join("merged"));

    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(&out, "leftover-mount", "writable layer held", true);
    assert_found(&out, "mount-count", "writable layer ghost", true);
    assert_found(
        &out,
        "leftover-mount",
        &dir.join("merged").display().to_string(),
        true,
    );

    let (code, out) = check(&s, &["--repair", "--quick"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.mounts_inside(),
        Vec::<PathBuf>::new(),
        "{merged}: all unmounted"
    );
    assert_clean(&s, "after reconciling mounts");
    s.ok(&["rm", "held", "ghost"]); // count 0 now: plain rm works
}

#[test]
fn a_broken_database_is_exit_status_2() {
    let s = Store::create("vfs");
    s.import(&rootfs_tar(), "base");
    fs::write(
        s.root.join("strata.db"),
        b"this is not a database, just 64 bytes of text to be read.....",
    )
    .unwrap();
    let _ = fs::remove_file(s.root.join("strata.db-wal"));
    let (code, _) = check(&s, &[]);
    assert_eq!(code, 2, "a check that cannot run says so with status 2");
}

/// Regression (crash torture): an `rmi` killed between its commit and the removal of the
/// config blob, or an image create killed inside its transaction, left a blob no image
/// owns, and nothing ever removed it. Recovery at open now does.
fn recovery_at_open_removes_config_blobs_of_no_image(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base");
    let stray = s.root.join("blobs/sha256").join("0".repeat(64));
    fs::write(&stray, b"{}").unwrap();
    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(&out, "orphan-blob", &"0".repeat(64), true);
    s.ok(&["images"]);
    assert!(
        !stray.exists(),
        "recovery at open removed the blob of no image"
    );
    assert_clean(&s, "after recovery");
    assert_eq!(s.image_ids().len(), 1, "the image's own blob stays");
}

/// Regression (crash torture): `rm` removed the writable layer before the row, so a kill in
/// between left a row without its layer (a dead container only `rm -f` could clear). `rm`
/// now deletes the row first; what a kill right after leaves (the layer and directory of an
/// ID with no row) is a repairable leftover that recovery at open sweeps.
#[test]
fn a_container_whose_rm_stopped_after_its_row_is_swept() {
    let s = Store::create("vfs");
    s.import(&rootfs_tar(), "base");
    let id = s.ok(&["create", "--name", "gone", "base", "/bin/sh"]);
    let id = id.trim();
    if !sqlite(&s, &format!("DELETE FROM containers WHERE id = '{id}'")) {
        return;
    }
    let (code, out) = check(&s, &["--quick"]);
    assert_eq!(code, 1);
    assert_found(
        &out,
        "container-leftover",
        &format!("writable layer {id}"),
        true,
    );
    assert_found(
        &out,
        "container-leftover",
        &format!("containers/{id}"),
        true,
    );
    assert!(!out.contains("not repairable"), "{out}");
    s.ok(&["ps", "-a"]); // recovery at open
    assert_clean(&s, "after the sweep");
    s.ok(&["rmi", "base"]); // no container holds the image any more
    s.ok(&["prune", "-f"]);
    s.assert_clean("after rmi and prune");
}
