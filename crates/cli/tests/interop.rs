//! `strata load`/`save`/`import`/`export` end to end on the archives real tools wrote
//! (`crates/image/tests/fixtures/`, made by dockerd 20.10, skopeo and umoci): the summary
//! lines, image IDs equal to what the tools reported, layer bytes equal to Docker's, and
//! round trips through every output format into a fresh store.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::Store;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../image/tests/fixtures")
        .join(name)
}

fn fixture_arg(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

/// Image IDs `expected.json` lists for `name`, sorted.
fn expected_ids(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut ids: Vec<String> = v[name]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn full_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn tar_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in tar::Archive::new(bytes).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(name, data);
        }
    }
    out
}

/// The layer tars of a docker-archive's first image, bottom first.
fn docker_layers(archive: &[u8]) -> Vec<Vec<u8>> {
    let files = tar_files(archive);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| files[l.as_str().unwrap()].clone())
        .collect()
}

#[test]
fn load_fixtures_prints_summary_and_keeps_ids() {
    for name in [
        "docker-archive.tar",
        "docker-multi.tar",
        "oci-archive.tar",
        "oci-gzip.tar",
        "oci-zstd.tar",
        "umoci-layout",
    ] {
        let store = Store::create("vfs");
        let out = store.ok(&["load", "-i", &fixture_arg(name)]);
        assert!(out.contains("Loaded image"), "{name}: {out}");
        if name.starts_with("docker-") {
            assert!(
                out.contains("Loaded image: strata-fixture:v2"),
                "{name}: {out}"
            );
        }
        if name == "docker-multi.tar" {
            for tag in ["strata-fixture:base", "strata-fixture:alias"] {
                assert!(out.contains(&format!("Loaded image: {tag}")), "{out}");
            }
        }
        assert_eq!(full_ids(&store), expected_ids(name), "{name}");
    }
}

#[test]
fn load_from_stdin_quiet_and_again_after_rmi() {
    let store = Store::create("vfs");
    let bytes = std::fs::read(fixture("docker-archive.tar")).unwrap();
    let out = store.ok_stdin(&["load", "-q"], &bytes);
    assert_eq!(out.trim(), "Loaded image: strata-fixture:v2");
    let want = expected_ids("docker-archive.tar");
    assert_eq!(full_ids(&store), want);
    store.ok(&["rmi", "strata-fixture:v2"]);
    assert!(full_ids(&store).is_empty());
    store.ok_stdin(&["load", "-q"], &bytes);
    assert_eq!(full_ids(&store), want, "load -> rmi -> load keeps the ID");
}

#[test]
fn save_is_byte_exact_and_loads_again_in_every_format() {
    let store = Store::create("vfs");
    store.ok(&["load", "-q", "-i", &fixture_arg("docker-multi.tar")]);
    let want = expected_ids("docker-multi.tar");

    // Uncompressed docker-archive: Docker's layer tars, byte for byte.
    let out = store.input.join("saved.tar");
    let out_arg = out.to_str().unwrap();
    store.ok(&["save", "-o", out_arg, "strata-fixture:v2"]);
    let saved = std::fs::read(&out).unwrap();
    let original = std::fs::read(fixture("docker-archive.tar")).unwrap();
    assert!(
        docker_layers(&saved) == docker_layers(&original),
        "saved layer tars differ from the docker fixture's"
    );
    // To stdout: the same archive.
    let stdout = store.cmd(&["save", "strata-fixture:v2"]).output().unwrap();
    assert!(
        stdout.status.success(),
        "{}",
        String::from_utf8_lossy(&stdout.stderr)
    );
    assert!(docker_layers(&stdout.stdout) == docker_layers(&original));

    let names = ["strata-fixture:base", "strata-fixture:v2"];
    for format in ["docker-archive", "oci-archive", "oci-dir"] {
        for compress in [None, Some("gzip"), Some("zstd")] {
            let label = format!("{format}-{}", compress.unwrap_or("none"));
            let path = store.input.join(&label);
            let path_arg = path.to_str().unwrap();
            let mut args = vec!["save", "-o", path_arg, "--format", format];
            if let Some(c) = compress {
                args.extend(["--compress", c]);
            }
            args.extend(names);
            store.ok(&args);
            let fresh = Store::create("vfs");
            fresh.ok(&["load", "-q", "-i", path_arg]);
            assert_eq!(full_ids(&fresh), want, "{label}");
        }
    }
}

#[test]
fn import_gives_the_same_diff_id_from_file_and_stdin() {
    let store = Store::create("vfs");
    let rootfs = docker_layers(&std::fs::read(fixture("docker-archive.tar")).unwrap())[0].clone();
    let file = store.input_file("rootfs.tar", &rootfs);
    store.ok(&[
        "import",
        "-m",
        "from a file",
        "-c",
        "ENV A=b",
        &file,
        "from:file",
    ]);
    store.ok_stdin(&["import", "-m", "from stdin", "-", "from:stdin"], &rootfs);
    let mut diffs = Vec::new();
    for name in ["from:file", "from:stdin"] {
        let out = store.cmd(&["save", name]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let layers = docker_layers(&out.stdout);
        assert_eq!(layers.len(), 1, "import makes one layer");
        assert!(
            layers[0] == rootfs,
            "{name}: the imported tar comes back as it went in"
        );
        diffs.push(layers[0].clone());
    }
    assert!(diffs[0] == diffs[1]);
}

#[test]
fn export_gives_the_image_files() {
    let store = Store::create("vfs");
    store.ok(&["load", "-q", "-i", &fixture_arg("docker-archive.tar")]);
    store.ok(&["mount", "strata-fixture:v2", "--name", "c1"]);
    let out = store.input.join("export.tar");
    store.ok(&["export", "c1", "-o", out.to_str().unwrap()]);
    let files = tar_files(&std::fs::read(&out).unwrap());
    let has = |n: &str| files.keys().any(|k| k.trim_start_matches("./") == n);
    assert!(
        has("etc/hello.txt") && has("added.txt") && has("opq/new.txt"),
        "{:?}",
        files.keys()
    );
    assert!(
        !has("etc/motd") && !has("opq/one.txt"),
        "deleted files exported: {:?}",
        files.keys()
    );
    assert!(
        files.keys().all(|k| !k.contains(".wh.")),
        "whiteouts in an export"
    );
    store.ok(&["umount", "c1"]);
    store.ok(&["rm", "c1"]);
}
