//! Interoperability of `archive::{load, save}` with the archives real tools write and read.
//!
//! The checked-in fixtures (`tests/fixtures/`, made once by `make.sh` with dockerd 20.10,
//! skopeo and umoci) must load with the image IDs and diffIDs the tools reported
//! (`expected.json`); docker layers must come back out byte for byte; every save format and
//! compression must load again with the same IDs, also from a store reopened in a fresh
//! handle. With `skopeo`/`umoci` installed, strata's output is fed to them; with
//! `STRATA_TEST_DOCKERD=1` (starting dockerd is slow) it is loaded into the reference dockerd.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use strata_image::archive::{load, save, LoadSource, SaveCompression, SaveFormat};
use strata_image::{Image, ImageStore};
use strata_storage::layer_store::LayerStore;
use strata_testkit::sha256;

const TAR_FIXTURES: [&str; 5] = [
    "docker-archive.tar",
    "docker-multi.tar",
    "oci-archive.tar",
    "oci-gzip.tar",
    "oci-zstd.tar",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `(id, diff_ids)` of each image `expected.json` lists for `fixture`, sorted by ID.
fn expected_images(fixture: &str) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<_> = expected()[fixture]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let diffs = i["diff_ids"].as_array().unwrap();
            let diffs = diffs.iter().map(|d| d.as_str().unwrap().to_string());
            (i["id"].as_str().unwrap().to_string(), diffs.collect())
        })
        .collect();
    v.sort();
    v
}

/// Every regular file of a tar, by name.
fn tar_files(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for entry in ar.entries().unwrap() {
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

struct Store {
    dir: tempfile::TempDir,
    layers: std::sync::Arc<LayerStore>,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("strata-interop-")
            .tempdir()
            .unwrap();
        let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
        Store { dir, layers }
    }

    /// The same store opened again (as a later process would).
    fn reopen(self) -> Store {
        let Store { dir, layers } = self;
        drop(layers);
        let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
        Store { dir, layers }
    }

    fn load(&self, source: LoadSource<'_>) -> Vec<Image> {
        let images = ImageStore::open(&self.layers).unwrap();
        load(&self.layers, &images, source, &mut |_| {}).expect("load")
    }

    fn load_fixture(&self, fixture: &str) -> Vec<Image> {
        let path = fixtures().join(fixture);
        if path.is_dir() {
            self.load(LoadSource::Dir(path))
        } else {
            self.load(LoadSource::File(path))
        }
    }

    fn save(&self, names: &[&str], format: &SaveFormat, c: SaveCompression) -> Vec<u8> {
        let images = ImageStore::open(&self.layers).unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        save(
            &self.layers,
            &images,
            &names,
            format,
            c,
            &mut out,
            &mut |_| {},
        )
        .expect("save");
        out
    }

    /// `(id, diff_ids)` of every image in the store, sorted by ID.
    fn images(&self) -> Vec<(String, Vec<String>)> {
        let images = ImageStore::open(&self.layers).unwrap();
        let mut v: Vec<_> = images
            .images()
            .unwrap()
            .into_iter()
            .map(|i| {
                let config = images.config(&i.id).unwrap();
                let diffs = config.diff_ids().unwrap();
                (i.id, diffs.iter().map(|d| d.to_string()).collect())
            })
            .collect();
        v.sort();
        v
    }

    fn tags(&self) -> Vec<String> {
        let images = ImageStore::open(&self.layers).unwrap();
        let mut v: Vec<_> = images
            .images()
            .unwrap()
            .iter()
            .flat_map(|i| i.tags.iter().map(|t| t.to_string()))
            .collect();
        v.sort();
        v
    }

    /// The uncompressed tar of every layer of `image`, bottom first.
    fn layer_tars(&self, image: &Image) -> Vec<Vec<u8>> {
        let mut chain = image.top_layer.clone();
        let mut out = Vec::new();
        while let Some(c) = chain {
            let mut tar = Vec::new();
            let n = self.layers.layer_tar(&c, &mut tar).expect("layer_tar");
            assert_eq!(n, tar.len() as u64, "layer_tar's count for {c}");
            out.push(tar);
            chain = self.layers.layer(&c).unwrap().parent;
        }
        out.reverse();
        out
    }
}

#[test]
fn fixtures_load_with_the_ids_the_tools_reported() {
    for fixture in TAR_FIXTURES.iter().copied().chain(["umoci-layout"]) {
        let store = Store::new();
        let loaded = store.load_fixture(fixture);
        let want = expected_images(fixture);
        assert_eq!(loaded.len(), want.len(), "{fixture}: images loaded");
        assert_eq!(store.images(), want, "{fixture}: IDs and diffIDs");
    }
}

#[test]
fn docker_archive_tags_and_stream_source() {
    let store = Store::new();
    let bytes = std::fs::read(fixtures().join("docker-multi.tar")).unwrap();
    store.load(LoadSource::Stream(&mut &bytes[..]));
    let tags: Vec<String> = store.tags().iter().map(|t| short_ref(t)).collect();
    let want = [
        "strata-fixture:alias",
        "strata-fixture:base",
        "strata-fixture:v2",
    ];
    assert_eq!(tags, want, "tags of docker-multi.tar");
    // Loading the same archive again applies nothing new and keeps the IDs.
    store.load(LoadSource::Stream(&mut &bytes[..]));
    assert_eq!(store.images(), expected_images("docker-multi.tar"));
    assert_eq!(
        store.layers.layers().unwrap().len(),
        2,
        "one layer per diffID"
    );
}

/// A reference without Docker's implied `docker.io/library/` (tags print either way).
fn short_ref(s: &str) -> String {
    s.trim_start_matches("docker.io/library/").to_string()
}

#[test]
fn docker_layers_come_back_byte_for_byte() {
    let archive = std::fs::read(fixtures().join("docker-multi.tar")).unwrap();
    let files = tar_files(&archive);
    let originals: BTreeMap<String, &Vec<u8>> = files
        .iter()
        .filter(|(name, _)| name.ends_with("/layer.tar"))
        .map(|(_, data)| (sha256(data), data))
        .collect();
    assert_eq!(originals.len(), 2, "the fixture has two distinct layers");

    let store = Store::new();
    let images = store.load(LoadSource::File(fixtures().join("docker-multi.tar")));
    // A later process rebuilds the same bytes from what the store kept.
    let store = store.reopen();
    for image in &images {
        for tar in store.layer_tars(image) {
            let digest = sha256(&tar);
            let original = originals.get(&digest).unwrap_or_else(|| {
                panic!(
                    "layer_tar of {} gave {digest}, not a fixture layer",
                    image.id
                )
            });
            assert!(tar == **original, "layer {digest}: bytes differ");
        }
    }
}

fn formats() -> Vec<(&'static str, SaveFormat)> {
    vec![
        ("docker-archive", SaveFormat::DockerArchive),
        ("oci-archive", SaveFormat::OciArchive),
    ]
}

#[test]
fn save_then_load_keeps_ids_in_every_format_and_compression() {
    let compressions = [
        SaveCompression::None,
        SaveCompression::Gzip,
        SaveCompression::Zstd,
    ];
    for fixture in ["docker-multi.tar", "oci-zstd.tar", "umoci-layout"] {
        let store = Store::new();
        let loaded = store.load_fixture(fixture);
        let store = store.reopen();
        let want = store.images();
        let ids: Vec<&str> = loaded.iter().map(|i| i.id.as_str()).collect();
        for (fname, format) in formats() {
            for c in compressions {
                let out = store.save(&ids, &format, c);
                let fresh = Store::new();
                fresh.load(LoadSource::Stream(&mut &out[..]));
                assert_eq!(fresh.images(), want, "{fixture} saved as {fname} {c:?}");
            }
        }
        for c in compressions {
            let dir = store.dir.path().join(format!("oci-dir-{c:?}"));
            store.save(&ids, &SaveFormat::OciDir(dir.clone()), c);
            let fresh = Store::new();
            fresh.load(LoadSource::Dir(dir));
            assert_eq!(fresh.images(), want, "{fixture} saved as oci-dir {c:?}");
        }
    }
}

#[test]
fn docker_archive_saved_uncompressed_holds_the_original_layer_tars() {
    let fixture = std::fs::read(fixtures().join("docker-archive.tar")).unwrap();
    let original: Vec<Vec<u8>> = layers_of_docker_archive(&fixture);
    let store = Store::new();
    store.load(LoadSource::File(fixtures().join("docker-archive.tar")));
    let out = store.save(
        &["strata-fixture:v2"],
        &SaveFormat::DockerArchive,
        SaveCompression::None,
    );
    let saved = layers_of_docker_archive(&out);
    assert_eq!(saved.len(), original.len());
    for (i, (a, b)) in saved.iter().zip(&original).enumerate() {
        assert!(
            a == b,
            "layer {i}: {} saved, {} in the fixture",
            sha256(a),
            sha256(b)
        );
    }
    let manifest: Value = serde_json::from_slice(&tar_files(&out)["manifest.json"]).unwrap();
    assert_eq!(
        manifest[0]["RepoTags"][0], "strata-fixture:v2",
        "{manifest}"
    );
    let config = manifest[0]["Config"].as_str().unwrap();
    let id = &expected_images("docker-archive.tar")[0].0;
    assert!(
        config.contains(id.trim_start_matches("sha256:")),
        "config {config}"
    );
}

/// The layer tars of a docker-archive's first image, bottom first (blobs or `layer.tar`s).
fn layers_of_docker_archive(archive: &[u8]) -> Vec<Vec<u8>> {
    let files = tar_files(archive);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| files[l.as_str().unwrap()].clone())
        .collect()
}

// ---- with the real tools, when installed ----

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        eprintln!(
            "SKIP: {name} is not installed (apt-get install {name}); its interop checks skipped"
        );
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A store holding docker-multi.tar, plus what it should hold.
fn loaded_multi() -> (Store, Vec<(String, Vec<String>)>) {
    let store = Store::new();
    store.load_fixture("docker-multi.tar");
    (store, expected_images("docker-multi.tar"))
}

#[test]
fn skopeo_reads_strata_oci_and_docker_output() {
    if !tool("skopeo") {
        return;
    }
    let (store, want) = loaded_multi();
    let (v2_id, v2_diffs) = want.iter().find(|(_, d)| d.len() == 2).unwrap().clone();
    let tmp = store.dir.path().to_path_buf();
    for c in [
        SaveCompression::None,
        SaveCompression::Gzip,
        SaveCompression::Zstd,
    ] {
        let oci = tmp.join(format!("strata-{c:?}.oci.tar"));
        let bytes = store.save(&["strata-fixture:v2"], &SaveFormat::OciArchive, c);
        std::fs::write(&oci, bytes).unwrap();
        let dir = tmp.join(format!("strata-{c:?}.oci"));
        store.save(&["strata-fixture:v2"], &SaveFormat::OciDir(dir.clone()), c);
        let docker = tmp.join(format!("strata-{c:?}.docker.tar"));
        let bytes = store.save(&["strata-fixture:v2"], &SaveFormat::DockerArchive, c);
        std::fs::write(&docker, bytes).unwrap();
        for src in [
            format!("oci-archive:{}", oci.display()),
            format!("oci:{}", dir.display()),
            format!("docker-archive:{}", docker.display()),
        ] {
            let raw = json(&run(Command::new("skopeo").args(["inspect", "--raw", &src])));
            assert_eq!(raw["config"]["digest"], v2_id.as_str(), "{src}: {raw}");
            let config = json(&run(
                Command::new("skopeo").args(["inspect", "--config", &src])
            ));
            assert_eq!(
                config["rootfs"]["diff_ids"],
                json(&serde_json::to_string(&v2_diffs).unwrap()),
                "{src}"
            );
            // skopeo verifies every blob's digest as it copies.
            let copy = tmp.join(format!("copy-{}.tar", src.len()));
            let _ = std::fs::remove_file(&copy);
            // docker-archive cannot hold zstd layers (skopeo refuses the conversion): copy
            // those to another OCI archive instead.
            let transport = match c {
                SaveCompression::Zstd => "oci-archive",
                _ => "docker-archive",
            };
            let dest = format!("{transport}:{}:strata-fixture:copied", copy.display());
            run(Command::new("skopeo").args(["copy", "-q", &src, &dest]));
            let fresh = Store::new();
            fresh.load(LoadSource::File(copy));
            let images = fresh.images();
            assert!(
                images.iter().any(|(_, d)| *d == v2_diffs),
                "{src} copied by skopeo to {transport}: diffIDs {images:?}, want {v2_diffs:?}"
            );
        }
    }
}

#[test]
fn umoci_reads_strata_oci_dir() {
    if !tool("umoci") {
        return;
    }
    let (store, want) = loaded_multi();
    let (_, v2_diffs) = want.iter().find(|(_, d)| d.len() == 2).unwrap().clone();
    for c in [SaveCompression::None, SaveCompression::Gzip] {
        let dir = store.dir.path().join(format!("umoci-{c:?}"));
        store.save(&["strata-fixture:v2"], &SaveFormat::OciDir(dir.clone()), c);
        let index = json(&std::fs::read_to_string(dir.join("index.json")).unwrap());
        let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_else(|| panic!("no ref.name annotation in {index}"))
            .to_string();
        let image = format!("{}:{tag}", dir.display());
        let stat = json(&run(
            Command::new("umoci").args(["stat", "--json", "--image", &image])
        ));
        assert!(stat["history"].is_array(), "umoci stat {image}: {stat}");
        let bundle = store.dir.path().join(format!("bundle-{c:?}"));
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        let hello = std::fs::read_to_string(rootfs.join("etc/hello.txt")).unwrap();
        assert_eq!(hello, "hello from strata\n");
        assert!(
            !rootfs.join("etc/motd").exists(),
            "the whiteout of /etc/motd was applied"
        );
        assert!(
            !rootfs.join("opq/one.txt").exists(),
            "the opaque /opq hid its lower files"
        );
        assert!(rootfs.join("opq/new.txt").exists());
        assert_eq!(
            std::fs::read_link(rootfs.join("link")).unwrap(),
            Path::new("etc/hello.txt")
        );
        assert_eq!(v2_diffs.len(), 2);
    }
}

#[test]
fn strata_docker_archive_loads_in_dockerd() {
    if std::env::var_os("STRATA_TEST_DOCKERD").is_none() {
        eprintln!(
            "SKIP: set STRATA_TEST_DOCKERD=1 to load strata's docker-archive into the reference \
             dockerd (bench/lib/dockerd.sh; starting dockerd is slow, so it is off by default)"
        );
        return;
    }
    let (store, want) = loaded_multi();
    let out = store.dir.path().join("strata.docker.tar");
    let bytes = store.save(
        &["strata-fixture:base", "strata-fixture:v2"],
        &SaveFormat::DockerArchive,
        SaveCompression::None,
    );
    std::fs::write(&out, bytes).unwrap();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/lib/dockerd.sh");
    let script = format!(
        "source '{}' && dockerd_start || exit 1; trap dockerd_stop EXIT; \
         docker load -i '{}' >&2 && \
         docker image inspect strata-fixture:base strata-fixture:v2",
        lib.display(),
        out.display()
    );
    let inspect = json(&run(Command::new("bash").args(["-c", &script])));
    let mut got: Vec<(String, Vec<String>)> = inspect
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let diffs = i["RootFS"]["Layers"].as_array().unwrap();
            let diffs = diffs.iter().map(|d| d.as_str().unwrap().to_string());
            (i["Id"].as_str().unwrap().to_string(), diffs.collect())
        })
        .collect();
    got.sort();
    assert_eq!(got, want, "dockerd's view of strata's docker-archive");
}
