//! End-to-end tests of images and filesystems in and out through the binary: `import -c/-m`
//! (the config carries the changes), `export` of a writable layer (the merged view, no
//! whiteouts), and `save`/`load` (output written whole or not at all; round trips keep the
//! image ID). Tests in `needs_load_save` depend on `strata_image::archive::{load, save}`.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use common::*;
use serde_json::Value;
use strata_image::ImageStore;
use strata_storage::layer_store::LayerStore;

per_driver!(
    import_applies_changes_and_message,
    import_with_an_unknown_change_is_refused,
    export_writes_the_merged_view,
    save_failure_leaves_no_file,
);

mod needs_load_save {
    per_driver!(
        save_load_round_trip_keeps_the_image_id,
        import_changes_show_in_an_oci_dir,
    );
    use super::*;
}

const CHANGES: [&str; 16] = [
    "-c",
    r#"CMD ["sh", "-c", "echo hi"]"#,
    "-c",
    "ENV A=b C=\"d e\"",
    "-c",
    "EXPOSE 80 53/udp",
    "-c",
    "LABEL org.example=yes",
    "-c",
    "USER 1000:1000",
    "-c",
    "VOLUME /data",
    "-c",
    "WORKDIR /srv",
    "-m",
    "imported with changes",
];

/// Imports the rootfs with [`CHANGES`]; returns the image id.
fn import_with_changes(s: &Store) -> String {
    let file = s.input_file("rootfs.tar", &rootfs_tar());
    let mut args = vec!["import"];
    args.extend(CHANGES);
    args.extend([file.as_str(), "changed:1"]);
    let id = s.ok(&args).trim().to_string();
    assert_image_id(&id);
    id
}

/// The image config's `config` object as the checks expect it.
fn check_changed_config(config: &Value) {
    let c = &config["config"];
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["sh", "-c", "echo hi"]),
        "{config:#}"
    );
    assert_eq!(c["Env"], serde_json::json!(["A=b", "C=d e"]), "{config:#}");
    assert!(c["ExposedPorts"]["80/tcp"].is_object(), "{config:#}");
    assert!(c["ExposedPorts"]["53/udp"].is_object(), "{config:#}");
    assert_eq!(c["Labels"]["org.example"], "yes", "{config:#}");
    assert_eq!(c["User"], "1000:1000", "{config:#}");
    assert!(c["Volumes"]["/data"].is_object(), "{config:#}");
    assert_eq!(c["WorkingDir"], "/srv", "{config:#}");
    assert_eq!(
        config["history"][0]["comment"], "imported with changes",
        "{config:#}"
    );
}

fn import_applies_changes_and_message(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let id = import_with_changes(&s);
    let layers = std::sync::Arc::new(LayerStore::open(&s.root, driver, &[]).unwrap());
    let images = ImageStore::open(&layers).unwrap();
    let config = images.config(&id).unwrap();
    check_changed_config(&serde_json::from_slice(&config.bytes).unwrap());
    // The same tarball without changes shares the layer but not the image.
    let plain = s.import(&rootfs_tar(), "plain:1");
    assert_ne!(plain, id);
    assert_eq!(s.info_value("Layers"), "1");
}

fn import_with_an_unknown_change_is_refused(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let file = s.input_file("rootfs.tar", &rootfs_tar());
    let err = s.fail(&["import", "-c", "RUN make", &file, "x:1"]);
    assert_mentions(
        &err,
        &["RUN make", "unknown instruction", "CMD, ENTRYPOINT, ENV"],
    );
    let err = s.fail(&["import", "-c", "EXPOSE 99999", &file, "x:1"]);
    assert_mentions(&err, &["EXPOSE 99999", "1-65535"]);
    s.assert_clean("a refused change");
}

/// The tar's entries: path → (kind, content).
fn tar_entries(bytes: &[u8]) -> BTreeMap<String, (char, String)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let path = path.trim_end_matches('/').to_string();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Regular => 'f',
            other => panic!("unexpected {other:?} for {path}"),
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        assert!(
            out.insert(path.clone(), (kind, text)).is_none(),
            "{path} twice"
        );
    }
    out
}

fn export_writes_the_merged_view(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    s.import(&rootfs_tar(), "base:1");
    let merged = s.ok(&["mount", "--name", "w", "base:1"]).trim().to_string();
    let merged = Path::new(&merged);
    fs::remove_file(merged.join("etc/gone")).unwrap();
    fs::write(merged.join("etc/passwd"), "changed\n").unwrap();
    fs::remove_dir_all(merged.join("srv/low")).unwrap();
    fs::create_dir(merged.join("srv/low")).unwrap(); // opaque on overlay2
    fs::write(merged.join("srv/low/new"), "new\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", merged.join("escape")).unwrap();

    let out = s.input.join("export.tar");
    s.ok(&["export", "w", "-o", out.to_str().unwrap()]);
    let bytes = fs::read(&out).unwrap();
    let entries = tar_entries(&bytes);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/sh",
            "escape",
            "etc",
            "etc/keep",
            "etc/passwd",
            "srv",
            "srv/low",
            "srv/low/new"
        ],
        "the merged view, without whiteouts or lower-only files"
    );
    assert!(!names.iter().any(|n| n.contains(".wh.")));
    assert_eq!(entries["etc/passwd"], ('f', "changed\n".into()));
    assert_eq!(entries["escape"].0, 'l');
    // Still mounted once (export took and gave back its own reference); the same bytes on
    // standard output, with no leftover beside the output file.
    assert!(s.ok(&["layers"]).contains("w "), "{}", s.ok(&["layers"]));
    let stdout = s.run(&["export", "w"]);
    assert!(stdout.status.success());
    assert_eq!(stdout.stdout, bytes);
    assert_eq!(list(&s.input), ["export.tar", "import.tar"]);

    // An unmounted layer is mounted for the export and unmounted after.
    s.ok(&["umount", "w"]);
    let again = s.run(&["export", "w"]);
    assert!(again.status.success());
    assert_eq!(tar_entries(&again.stdout), entries);
    assert!(s.mounts_inside().is_empty(), "{:?}", s.mounts_inside());
    let err = s.fail(&["export", "missing"]);
    assert_mentions(&err, &["missing"]);
}

fn save_failure_leaves_no_file(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let out = s.input.join("out.tar");
    s.fail(&["save", "-o", out.to_str().unwrap(), "no-such-image:1"]);
    assert!(list(&s.input).is_empty(), "{:?}", list(&s.input));
    let err = s.fail(&["save", "--format", "oci-dir", "x:1"]);
    assert_mentions(&err, &["-o DIR"]);
    let dir = s.input.join("layout");
    s.fail(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().unwrap(),
        "no-such:1",
    ]);
    assert!(list(&s.input).is_empty(), "{:?}", list(&s.input));
}

fn save_load_round_trip_keeps_the_image_id(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    let id = import_with_changes(&s);
    let file = s.input.join("saved.tar");
    s.ok(&["save", "-q", "-o", file.to_str().unwrap(), "changed:1"]);
    s.ok(&["rmi", "changed:1"]);
    s.assert_clean("rmi of the only image");
    let out = s.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(lines(&out), ["Loaded image: changed:1"]);
    assert_eq!(s.image_ids(), [short_id(&id)]);

    // save | load through pipes, into a second store.
    let saved = s.run(&["save", "changed:1"]);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let other = Store::new(driver).unwrap();
    let out = other.ok_stdin(&["load"], &saved.stdout);
    assert_eq!(lines(&out), ["Loaded image: changed:1"]);
    assert_eq!(other.image_ids(), [short_id(&id)]);
    // Untagged images are reported by ID.
    let by_id = s.run(&["save", &id]);
    assert!(by_id.status.success());
    s.ok(&["rmi", "changed:1"]);
    let out = s.ok_stdin(&["load", "-q"], &by_id.stdout);
    assert_eq!(lines(&out), [format!("Loaded image ID: {id}")]);
}

fn import_changes_show_in_an_oci_dir(driver: &'static str) {
    let Some(s) = Store::new(driver) else { return };
    import_with_changes(&s);
    let dir = s.input.join("layout");
    s.ok(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().unwrap(),
        "changed:1",
    ]);
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice::<Value>(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    check_changed_config(&blob(manifest["config"]["digest"].as_str().unwrap()));
}
