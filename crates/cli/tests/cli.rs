//! End-to-end tests of the `strata` binary: the commands as a user runs them, on a real store
//! in a temporary directory, for each storage driver (overlay2 only as root). Every bad input
//! must fail with `strata: error: ...` naming the object, and leave nothing behind: no image,
//! no layer directory, no staging, no mount.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use common::*;

per_driver!(
    happy_path,
    same_tar_from_file_and_stdin_shares_one_layer,
    corrupt_tar,
    truncated_tar,
    truncated_gzip,
    truncated_zstd,
    unknown_compression,
    empty_input,
    path_escaping_the_layer,
    invalid_reference,
    mount_of_missing_image,
    commands_on_missing_layer,
    rm_of_mounted_layer_needs_force,
    rmi_of_image_in_use_is_refused,
    disk_full_during_apply,
);

const EXPECTED_DIFF: &str = "\
C /etc
D /etc/gone
A /etc/new
C /etc/passwd
C /srv
C /srv/low
A /srv/low/new-1
D /srv/low/old-1
D /srv/low/old-2
";

fn happy_path(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let id = s.import(&rootfs_tar(), "busybox:latest");
    check_images_listing(&s, &id);
    check_info(&s);

    let merged = s
        .ok(&["mount", "--name", "c1", "busybox:latest"])
        .trim()
        .to_string();
    let merged = Path::new(&merged);
    assert_eq!(
        fs::read_to_string(merged.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    if driver == "overlay2" {
        assert!(
            mount_points().contains(&merged.to_path_buf()),
            "{} is not mounted",
            merged.display()
        );
    }
    let details = inspect(&s, "c1");
    assert_eq!(
        details["GraphDriver"]["Name"], driver,
        "inspect: {details:#}"
    );

    change_the_tree(merged);
    assert_eq!(s.ok(&["diff", "c1"]), EXPECTED_DIFF);
    if driver == "overlay2" {
        check_overlay_dirs(&details, merged);
    }

    assert_eq!(lines(&s.ok(&["umount", "c1"])), ["c1"]);
    assert!(
        s.mounts_inside().is_empty(),
        "still mounted after umount: {:?}",
        s.mounts_inside()
    );
    assert_eq!(s.layer_names(), ["c1"], "umount keeps the layer");
    assert_eq!(
        s.ok(&["diff", "c1"]),
        EXPECTED_DIFF,
        "umount keeps the changes"
    );

    // Mounting the layer again by name shows the same changes.
    let again = s.ok(&["mount", "c1"]).trim().to_string();
    assert_eq!(
        fs::read_to_string(Path::new(&again).join("etc/new")).unwrap(),
        "new\n"
    );
    assert!(!Path::new(&again).join("etc/gone").exists());
    s.ok(&["umount", "c1"]);

    assert_eq!(lines(&s.ok(&["rm", "c1"])), ["c1"]);
    assert!(s.layer_names().is_empty());
    s.ok(&["rmi", "busybox:latest"]);
    s.assert_clean("after rm and rmi");
}

fn check_images_listing(s: &Store, id: &str) {
    let table = s.ok(&["images"]);
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{table}"
    );
    let row: Vec<&str> = rows
        .next()
        .expect("a row for the image")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..3],
        ["busybox", "latest", short_id(id).as_str()],
        "{table}"
    );
    assert_eq!(s.image_ids(), [short_id(id)]);
    assert_eq!(lines(&s.ok(&["images", "-q", "--no-trunc"])), [id]);
}

fn check_info(s: &Store) {
    let info = s.ok(&["info"]);
    assert!(
        info.starts_with(&format!("Storage Driver: {}\n", s.driver)),
        "{info}"
    );
    if s.driver == "overlay2" {
        for line in [
            " Backing Filesystem: ",
            " Supports d_type: true\n",
            " Native Overlay Diff: true\n",
        ] {
            assert!(info.contains(line), "no {line:?} in info:\n{info}");
        }
    }
    assert!(
        info.contains(&format!("Data Root: {}\n", s.root.display())),
        "{info}"
    );
    assert!(info.contains("Images: 1\n"), "{info}");
    assert!(info.contains("Layers: 1\n"), "{info}");
}

fn inspect(s: &Store, name: &str) -> serde_json::Value {
    let out = s.ok(&["inspect", name]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect {name}: not JSON ({e}):\n{out}"))
}

/// Copy-up (modify), add, delete, and delete + re-create a directory (opaque on overlay2).
fn change_the_tree(merged: &Path) {
    fs::write(
        merged.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
    )
    .unwrap();
    fs::write(merged.join("etc/new"), "new\n").unwrap();
    fs::remove_file(merged.join("etc/gone")).unwrap();
    fs::remove_dir_all(merged.join("srv/low")).unwrap();
    fs::create_dir(merged.join("srv/low")).unwrap();
    fs::write(merged.join("srv/low/new-1"), "new 1\n").unwrap();
}

/// The Docker-named dirs, a whiteout (0/0 char device) and an opaque dir in the upper dir,
/// and the image's own copy untouched in the lower dir.
fn check_overlay_dirs(details: &serde_json::Value, merged: &Path) {
    let data = &details["GraphDriver"]["Data"];
    let dir = |key: &str| {
        data[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {details:#}"))
            .to_string()
    };
    assert_eq!(Path::new(&dir("MergedDir")), merged);
    assert!(Path::new(&dir("WorkDir")).is_dir());
    let upper = dir("UpperDir");
    let upper = Path::new(&upper);
    let whiteout = fs::symlink_metadata(upper.join("etc/gone")).expect("a whiteout for /etc/gone");
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "not a 0/0 char device"
    );
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(upper.join("srv/low"), "trusted.overlay.opaque", &mut buf)
        .expect("trusted.overlay.opaque on the re-created directory");
    assert_eq!(&buf[..n], b"y");
    let lower = dir("LowerDir");
    let lower = Path::new(lower.split(':').next().unwrap());
    assert_eq!(
        fs::read_to_string(lower.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    assert!(lower.join("etc/gone").is_file());
}

fn same_tar_from_file_and_stdin_shares_one_layer(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let tar = rootfs_tar();
    let id = s.import(&tar, "twice:file");
    let from_stdin = s
        .ok_stdin(&["import", "-", "twice:stdin"], &tar)
        .trim()
        .to_string();
    assert_image_id(&from_stdin);
    assert_eq!(
        s.info_value("Layers"),
        "1",
        "the same tar twice must store one layer"
    );
    let dirs: Vec<String> = s
        .layer_dirs()
        .into_iter()
        .filter(|d| !d.starts_with("l/"))
        .collect();
    assert_eq!(dirs.len(), 1, "layer dirs: {dirs:?}");
    let table = s.ok(&["images"]);
    assert!(
        table.contains("twice") && table.contains("file") && table.contains("stdin"),
        "{table}"
    );
    s.ok(&["rmi", "twice:file"]);
    s.ok(&["rmi", "twice:stdin"]);
    s.assert_clean("after removing both tags");
    // Like `docker import`, each import is a new image (its config records when it was
    // made), but the layer, whose diffID is the tar's digest, is the same one.
    assert_ne!(from_stdin, id);
}

/// Imports `bytes` from the file `name`: must fail, name the file and one of `what`, and
/// leave the store empty.
fn import_fails(s: &Store, name: &str, bytes: &[u8], what: &[&str]) -> String {
    let file = s.input_file(name, bytes);
    let err = s.fail(&["import", &file, "bad-input:v1"]);
    s.assert_clean(&format!("failed import of {name}"));
    assert_mentions_any(&err, what);
    assert_mentions(&err, &[name]);
    err
}

const TRUNCATED: &[&str] = &[
    "truncated",
    "unexpected end",
    "eof",
    "incomplete",
    "ends early",
    "end of",
];

/// A tar whose first entries are good, so that a failure comes after data was written.
fn tar_with_big_file() -> Vec<u8> {
    Tar::new()
        .dir("etc")
        .file("etc/ok", b"fine\n")
        .file("etc/blob", &Noise::bytes(1, 256 << 10))
        .file("etc/after", b"never reached\n")
        .finish()
}

fn corrupt_tar(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let mut tar = Tar::new().dir("etc").file("etc/ok", b"fine\n").finish();
    tar.truncate(tar.len() - 1024); // Drop the end-of-archive blocks...
    tar.extend(Noise::bytes(2, 512)); // ...and follow the good entries with a garbage header.
    tar.extend([0u8; 1024]);
    import_fails(
        &s,
        "broken-layer",
        &tar,
        &["checksum", "corrupt", "invalid", "header", "archive"],
    );
}

fn truncated_tar(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let tar = tar_with_big_file();
    import_fails(&s, "cut-layer", &tar[..tar.len() / 2], TRUNCATED);
}

fn truncated_gzip(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let gz = gzip(&tar_with_big_file());
    import_fails(&s, "cut-layer-gz", &gz[..gz.len() / 2], TRUNCATED);
}

fn truncated_zstd(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let zst = zstd(&tar_with_big_file());
    import_fails(&s, "cut-layer-zst", &zst[..zst.len() / 2], TRUNCATED);
}

fn unknown_compression(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0x00];
    xz.extend(Noise::bytes(3, 4096));
    import_fails(&s, "layer.bin", &xz, &["xz", "compression"]);
}

fn empty_input(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    import_fails(&s, "nothing.tar", b"", &["empty", "no data", "0 bytes"]);
}

fn path_escaping_the_layer(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let tar = Tar::new()
        .dir("etc")
        .file("etc/ok", b"fine\n")
        .raw_file("../escape-attempt", b"out\n")
        .finish();
    import_fails(&s, "hostile.tar", &tar, &["../escape-attempt"]);
    let found = find_named(s.dir.path(), "escape-attempt");
    assert!(
        found.is_empty(),
        "the escaping entry was written: {found:?}"
    );
}

fn find_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_name() == name {
            found.push(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(find_named(&path, name));
        }
    }
    found
}

fn invalid_reference(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let file = s.input_file("rootfs.tar", &rootfs_tar());
    let err = s.fail(&["import", &file, "Bad:Name"]);
    assert_mentions(&err, &["Bad:Name"]);
    s.assert_clean("import with an invalid reference");
}

fn mount_of_missing_image(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let err = s.fail(&["mount", "--name", "c1", "nosuchimage:v9"]);
    assert_mentions(&err, &["nosuchimage"]);
    s.assert_clean("mount of a missing image");
}

fn commands_on_missing_layer(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    for cmd in ["diff", "umount", "rm", "inspect"] {
        let err = s.fail(&[cmd, "ghostlayer"]);
        assert_mentions(&err, &["ghostlayer"]);
        s.assert_clean(&format!("{cmd} of a missing layer"));
    }
}

fn rm_of_mounted_layer_needs_force(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "holder:v1");
    let merged = s
        .ok(&["mount", "--name", "busylayer", "holder:v1"])
        .trim()
        .to_string();
    let err = s.fail(&["rm", "busylayer"]);
    assert_mentions(&err, &["busylayer", "mounted"]);
    assert_mentions_any(&err, &["-f", "umount", "force"]);
    assert_eq!(
        s.layer_names(),
        ["busylayer"],
        "a refused rm removed the layer"
    );
    assert!(
        Path::new(&merged).join("etc/passwd").is_file(),
        "{merged} lost its content"
    );
    if driver == "overlay2" {
        assert!(
            mount_points().contains(&merged.clone().into()),
            "a refused rm unmounted {merged}"
        );
    }
    let table = s.ok(&["layers"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("busylayer"))
        .expect("a row for the layer");
    assert_eq!(
        row.split_whitespace().nth(2),
        Some("1"),
        "mount count:\n{table}"
    );

    s.ok(&["rm", "-f", "busylayer"]);
    assert!(
        s.mounts_inside().is_empty(),
        "rm -f left mounts: {:?}",
        s.mounts_inside()
    );
    s.ok(&["rmi", "holder:v1"]);
    s.assert_clean("rm -f and rmi");
}

fn rmi_of_image_in_use_is_refused(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let id = s.import(&rootfs_tar(), "keeper:v1");
    s.ok(&["mount", "--name", "user1", "keeper:v1"]);
    let err = s.fail(&["rmi", "keeper:v1"]);
    assert_mentions(&err, &["user1"]);
    assert_mentions_any(&err, &["keeper", &short_id(&id)]);
    assert_eq!(
        s.image_ids(),
        [short_id(&id)],
        "a refused rmi removed the image"
    );
    assert!(
        s.ok(&["images"]).contains("keeper"),
        "a refused rmi removed the tag"
    );
    assert_eq!(s.ok(&["diff", "user1"]), "", "the layer still works");

    s.ok(&["rm", "-f", "user1"]);
    s.ok(&["rmi", "keeper:v1"]);
    s.assert_clean("rm -f and rmi");
}

/// A 16 MiB tmpfs as the store and a 64 MiB file in the tar: the apply runs out of space.
/// The error says so, nothing is left, and the store works afterwards.
fn disk_full_during_apply(driver: &'static str) {
    let Some(s) = Store::on_tmpfs(driver, "16m") else {
        return;
    };
    let big = s.input.join("big.tar");
    let size = 64 << 20;
    Tar::to(fs::File::create(&big).unwrap())
        .dir("data")
        .file("data/small", b"first\n")
        .file_from("data/big", size, Noise::new(4, size))
        .finish();
    let err = s.fail(&["import", big.to_str().unwrap(), "huge:v1"]);
    assert_mentions_any(&err, &["disk is full", "no space left", "full"]);
    assert_mentions(&err, &[s.root.to_str().unwrap()]);
    s.assert_clean("import that filled the disk");

    let id = s.import(&rootfs_tar(), "small:v1");
    assert_eq!(s.image_ids(), [short_id(&id)]);
    s.ok(&["rmi", "small:v1"]);
    s.assert_clean("rmi after recovering from a full disk");
}

/// overlay2 needs root: as an unprivileged user (uid 65534 through `setpriv` when we are root)
/// on a store it owns, `strata` refuses with a message that says so and points to vfs, and
/// leaves nothing that would keep vfs from being used on the same root.
#[test]
fn overlay2_as_non_root_is_refused_with_vfs_hint() {
    let s = Store::create("overlay2");
    if is_root() {
        fs::set_permissions(
            s.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::chown(&s.root, Some(65534), Some(65534)).unwrap();
    }
    let file = s.input_file("rootfs.tar", &rootfs_tar());
    let as_user = |driver: &str, args: &[&str]| {
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.env_remove("STRATA_ROOT")
            .env_remove("STRATA_STORAGE_DRIVER")
            .env_remove("STRATA_LOG");
        cmd.arg("--root")
            .arg(&s.root)
            .args(["--storage-driver", driver])
            .args(args);
        run_with_stdin(cmd, b"")
    };
    for args in [&["info"][..], &["import", &file, "rootless:v1"]] {
        let err = expect_fail(args, as_user("overlay2", args));
        assert_mentions(&err, &["root", "vfs", "overlay2"]);
        assert!(
            s.layer_dirs().is_empty(),
            "{args:?} left {:?}",
            s.layer_dirs()
        );
        assert!(list(&s.root.join("tmp")).is_empty());
    }
    let info = expect_ok(&["info"], as_user("vfs", &["info"]));
    assert!(
        info.starts_with("Storage Driver: vfs\n"),
        "vfs after the refusal:\n{info}"
    );
    assert!(
        info.contains("Images: 0\n") && info.contains("Layers: 0\n"),
        "{info}"
    );
}
