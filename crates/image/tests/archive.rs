//! `load` and `save` on a real store (vfs driver, no root needed) with archives built here in
//! every form strata reads: classic docker-archive, Docker 25's OCI form, OCI layout as a
//! directory and as a tar (stream and file), gzip and zstd layers, two images with three tags
//! sharing a layer. Round trips through `save` keep image IDs, diffIDs and layer bytes; bad
//! archives fail naming the image and blob and leave no image, tag, layer or staging file.

use std::path::Path;

use strata_image::archive::{load, save, LoadSource, Progress, SaveCompression, SaveFormat};
use strata_image::ImageStore;
use strata_storage::layer_store::LayerStore;
use strata_storage::Digest;
use strata_testkit::gzip;

type Members = Vec<(String, Vec<u8>)>;

fn sha(b: &[u8]) -> Digest {
    Digest::of_bytes(b)
}

/// A layer tar of `files`, deterministic.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    strata_testkit::files_tar(files)
}

fn config(diff_ids: &[Digest], comment: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"comment\":\"{comment}\",\"config\":{{}},\
         \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        ids.join(",")
    )
    .into_bytes()
}

fn tar_of(members: &Members) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn write_dir(dir: &Path, members: &Members) {
    for (name, data) in members {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Two images sharing a base layer: `app` (base + top), `base` (base only).
struct Fixture {
    base: Vec<u8>,
    top: Vec<u8>,
    app_config: Vec<u8>,
    base_config: Vec<u8>,
}

fn fixture() -> Fixture {
    let base = layer(&[("etc/os", b"strata"), ("bin/sh", b"#!shell")]);
    let top = layer(&[("app/run", b"hello world")]);
    let app_config = config(&[sha(&base), sha(&top)], "app");
    let base_config = config(&[sha(&base)], "base");
    Fixture {
        base,
        top,
        app_config,
        base_config,
    }
}

/// Docker 20.10's classic layout; tags app:1, app:latest, base:1.
fn classic(f: &Fixture) -> Members {
    let (a, b) = (sha(&f.app_config), sha(&f.base_config));
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["app:1","app:latest"],"Layers":["l1/layer.tar","l2/layer.tar"]}},
            {{"Config":"{}.json","RepoTags":["base:1"],"Layers":["l1/layer.tar"]}}]"#,
        a.hex(),
        b.hex()
    );
    vec![
        ("l1/layer.tar".into(), f.base.clone()),
        ("l1/VERSION".into(), b"1.0".to_vec()),
        ("l2/layer.tar".into(), f.top.clone()),
        (format!("{}.json", a.hex()), f.app_config.clone()),
        (format!("{}.json", b.hex()), f.base_config.clone()),
        ("manifest.json".into(), manifest.into_bytes()),
        ("repositories".into(), br#"{"app":{"1":"l2"}}"#.to_vec()),
    ]
}

fn desc(media: &str, bytes: &[u8]) -> String {
    format!(
        r#"{{"mediaType":"{media}","digest":"{}","size":{}}}"#,
        sha(bytes),
        bytes.len()
    )
}

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const MF: &str = "application/vnd.oci.image.manifest.v1+json";

/// An OCI layout: app's base layer gzip, its top zstd; index tags via annotations.
fn oci(f: &Fixture, layer_type: &str) -> Members {
    let base_gz = gzip(&f.base);
    let top_zst = zstd::encode_all(&f.top[..], 3).unwrap();
    let cfg = "application/vnd.oci.image.config.v1+json";
    let app_m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MF}","config":{},"layers":[{},{}]}}"#,
        desc(cfg, &f.app_config),
        desc(GZ, &base_gz),
        desc(layer_type, &top_zst)
    );
    let base_m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MF}","config":{},"layers":[{}]}}"#,
        desc(cfg, &f.base_config),
        desc(GZ, &base_gz)
    );
    let entry = |m: &str, name: &str| {
        format!(
            r#"{{"mediaType":"{MF}","digest":"{}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/{name}","org.opencontainers.image.ref.name":"{}"}}}}"#,
            sha(m.as_bytes()),
            m.len(),
            name.split(':').nth(1).unwrap()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{},{}]}}"#,
        entry(&app_m, "app:1"),
        entry(&app_m, "app:latest"),
        entry(&base_m, "base:1")
    );
    let blob = |b: &[u8]| (format!("blobs/sha256/{}", sha(b).hex()), b.to_vec());
    vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index.into_bytes()),
        blob(&base_gz),
        blob(&top_zst),
        blob(&f.app_config),
        blob(&f.base_config),
        blob(app_m.as_bytes()),
        blob(base_m.as_bytes()),
    ]
}

struct Store {
    dir: tempfile::TempDir,
    layers: std::sync::Arc<LayerStore>,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    Store { dir, layers }
}

fn do_load(
    s: &Store,
    source: LoadSource<'_>,
) -> (strata_image::Result<Vec<strata_image::Image>>, usize) {
    let images = ImageStore::open(&s.layers).unwrap();
    let mut existed = 0;
    let r = load(&s.layers, &images, source, &mut |p| {
        if let Progress::LayerExists { .. } = p {
            existed += 1
        }
    });
    (r, existed)
}

/// Both images with all three tags, with Docker's IDs, and the base applied once.
fn check_loaded(s: &Store, f: &Fixture) {
    let images = ImageStore::open(&s.layers).unwrap();
    let app = images.resolve("app:1").unwrap();
    assert_eq!(app.id, sha(&f.app_config).to_string());
    assert_eq!(images.resolve("app:latest").unwrap().id, app.id);
    assert_eq!(
        images.resolve("base:1").unwrap().id,
        sha(&f.base_config).to_string()
    );
    assert_eq!(images.images().unwrap().len(), 2);
    let layers = s.layers.layers().unwrap();
    assert_eq!(layers.len(), 2, "shared base layer applied once");
    let chain = Digest::chain(Some(&sha(&f.base)), &sha(&f.top));
    assert_eq!(app.top_layer, Some(chain));
}

#[test]
fn loads_classic_docker_archive_from_file_and_dir() {
    let f = fixture();
    let s = store();
    let path = s.dir.path().join("../classic.tar");
    let t = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(t.path(), tar_of(&classic(&f))).unwrap();
    let _ = path;
    let (r, existed) = do_load(&s, LoadSource::File(t.path().into()));
    assert_eq!(r.unwrap().len(), 2);
    assert_eq!(
        existed, 1,
        "the base layer of the second image is already there"
    );
    check_loaded(&s, &f);
    let s2 = store();
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &classic(&f));
    do_load(&s2, LoadSource::Dir(d.path().into())).0.unwrap();
    check_loaded(&s2, &f);
}

#[test]
fn loads_oci_layout_dir_tar_stream_and_docker25_form() {
    let f = fixture();
    let members = oci(&f, ZST);
    let s = store();
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &members);
    do_load(&s, LoadSource::Dir(d.path().into())).0.unwrap();
    check_loaded(&s, &f);

    let s = store();
    let bytes = tar_of(&members);
    do_load(&s, LoadSource::Stream(&mut &bytes[..])).0.unwrap();
    check_loaded(&s, &f);
    assert_tmp_empty(&s);

    // Docker 25+: OCI index without names, tags in manifest.json next to it.
    let mut m = members.clone();
    let index = String::from_utf8(m[1].1.clone()).unwrap();
    m[1].1 = index
        .replace("io.containerd.image.name", "x-unused")
        .into_bytes();
    let manifest = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["app:1","app:latest"],"Layers":[]}},{{"Config":"blobs/sha256/{}","RepoTags":["base:1"],"Layers":[]}}]"#,
        sha(&f.app_config).hex(),
        sha(&f.base_config).hex()
    );
    m.push(("manifest.json".into(), manifest.into_bytes()));
    let s = store();
    let t = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(t.path(), tar_of(&m)).unwrap();
    do_load(&s, LoadSource::File(t.path().into())).0.unwrap();
    check_loaded(&s, &f);
}

fn assert_tmp_empty(s: &Store) {
    let left: Vec<_> = std::fs::read_dir(s.layers.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "staging files left: {left:?}");
}

fn do_save(s: &Store, names: &[&str], format: SaveFormat, c: SaveCompression) -> Vec<u8> {
    let images = ImageStore::open(&s.layers).unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut out = Vec::new();
    save(
        &s.layers,
        &images,
        &names,
        &format,
        c,
        &mut out,
        &mut |_| {},
    )
    .unwrap();
    out
}

fn members_of(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), data)
        })
        .collect()
}

#[test]
fn save_round_trips_in_every_format() {
    let f = fixture();
    let s = store();
    let bytes = tar_of(&classic(&f));
    do_load(&s, LoadSource::Stream(&mut &bytes[..])).0.unwrap();
    let names = ["app:1", "app:latest", "base:1"];

    let docker = do_save(&s, &names, SaveFormat::DockerArchive, SaveCompression::None);
    assert_eq!(
        docker,
        do_save(&s, &names, SaveFormat::DockerArchive, SaveCompression::None)
    );
    // Uncompressed layers are the very bytes loaded.
    let saved = members_of(&docker);
    let tars: Vec<&Vec<u8>> = saved
        .iter()
        .filter(|(n, _)| n.ends_with("layer.tar"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(tars.len(), 2);
    assert!(
        tars.contains(&&f.base) && tars.contains(&&f.top),
        "layer bytes changed"
    );
    let s2 = store();
    do_load(&s2, LoadSource::Stream(&mut &docker[..]))
        .0
        .unwrap();
    check_loaded(&s2, &f);

    for c in [
        SaveCompression::None,
        SaveCompression::Gzip,
        SaveCompression::Zstd,
    ] {
        let oci = do_save(&s, &names, SaveFormat::OciArchive, c);
        let s3 = store();
        do_load(&s3, LoadSource::Stream(&mut &oci[..])).0.unwrap();
        check_loaded(&s3, &f);
    }
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("layout");
    do_save(
        &s,
        &names,
        SaveFormat::OciDir(dir.clone()),
        SaveCompression::Gzip,
    );
    let s4 = store();
    do_load(&s4, LoadSource::Dir(dir)).0.unwrap();
    check_loaded(&s4, &f);
    assert_tmp_empty(&s);
}

/// Loads `members` (as a tar file) and expects an error mentioning every `needles`, with
/// nothing left in the store.
fn expect_bad(members: &Members, needles: &[&str]) {
    let s = store();
    let t = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(t.path(), tar_of(members)).unwrap();
    expect_bad_source(&s, LoadSource::File(t.path().into()), needles);
}

fn expect_bad_source(s: &Store, source: LoadSource<'_>, needles: &[&str]) {
    let err = do_load(s, source)
        .0
        .expect_err("load must fail")
        .to_string();
    for n in needles {
        assert!(err.contains(n), "error {err:?} does not mention {n:?}");
    }
    let images = ImageStore::open(&s.layers).unwrap();
    assert!(
        images.images().unwrap().is_empty(),
        "image left after: {err}"
    );
    assert!(
        s.layers.layers().unwrap().is_empty(),
        "layer left after: {err}"
    );
    assert!(images.resolve("app:1").is_err());
    assert_tmp_empty(s);
}

#[test]
fn bad_archives_leave_nothing() {
    let f = fixture();
    // Truncated (stream, so the spool must go too).
    let whole = tar_of(&classic(&f));
    let cut = &whole[..whole.len() / 2];
    expect_bad_source(&store(), LoadSource::Stream(&mut &cut[..]), &["truncated"]);
    // Manifest pointing at a missing blob.
    let mut m = classic(&f);
    m.retain(|(n, _)| n != "l2/layer.tar");
    expect_bad(&m, &["app:1", "l2/layer.tar"]);
    // Blob digest mismatch (OCI): second image's base layer is fine, app's top is not.
    let mut m = oci(&f, ZST);
    let top = zstd::encode_all(&f.top[..], 3).unwrap();
    let name = format!("blobs/sha256/{}", sha(&top).hex());
    let other = zstd::encode_all(&f.top[..], 19).unwrap();
    m.iter_mut().find(|(n, _)| *n == name).unwrap().1 = other;
    expect_bad(&m, &["app:1", &sha(&top).hex()[..12]]);
    // Config diff_ids disagreeing with the layers.
    let mut m = classic(&f);
    m[2].1 = layer(&[("app/run", b"something else")]);
    expect_bad(&m, &["app:1", "l2/layer.tar"]);
    // Wrong diff_ids count.
    let mut m = classic(&f);
    let manifest = String::from_utf8(m[5].1.clone()).unwrap();
    m[5].1 = manifest
        .replacen(
            r#""Layers":["l1/layer.tar"]"#,
            r#""Layers":["l1/layer.tar","l2/layer.tar"]"#,
            1,
        )
        .into_bytes();
    expect_bad(&m, &["base:1", "diffIDs"]);
    // Unknown media type.
    expect_bad(
        &oci(&f, "application/vnd.example.weird"),
        &["app:1", "vnd.example.weird"],
    );
    // A `../` path inside a layer.
    let mut evil = layer(&[("xx/escape", b"boom")]);
    evil[..9].copy_from_slice(b"../escape");
    let mut h = tar::Header::from_byte_slice(&evil[..512]).clone();
    h.set_cksum();
    evil[..512].copy_from_slice(h.as_bytes());
    let mut m = classic(&f);
    m[2].1 = evil.clone();
    let cfg = config(&[sha(&f.base), sha(&evil)], "app");
    m[3] = (format!("{}.json", sha(&cfg).hex()), cfg.clone());
    let manifest = String::from_utf8(m[5].1.clone()).unwrap();
    m[5].1 = manifest
        .replace(&sha(&f.app_config).hex().to_string(), sha(&cfg).hex())
        .into_bytes();
    expect_bad(&m, &["app:1", "l2/layer.tar", "escape"]);
    // manifest.json that is not JSON.
    let mut m = classic(&f);
    m[5].1 = b"{not json".to_vec();
    expect_bad(&m, &["manifest.json"]);
}

fn tool(name: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        println!("skipping the {name} check: {name} is not installed (Debian package {name})");
    }
    found
}

#[test]
fn oci_output_is_accepted_by_skopeo_and_umoci() {
    let f = fixture();
    let s = store();
    let bytes = tar_of(&classic(&f));
    do_load(&s, LoadSource::Stream(&mut &bytes[..])).0.unwrap();
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("app.tar");
    let oci = do_save(
        &s,
        &["app:1"],
        SaveFormat::OciArchive,
        SaveCompression::Gzip,
    );
    std::fs::write(&archive, oci).unwrap();
    let dir = d.path().join("layout");
    do_save(
        &s,
        &["app:1"],
        SaveFormat::OciDir(dir.clone()),
        SaveCompression::Zstd,
    );
    if tool("skopeo") {
        for target in [
            format!("oci-archive:{}", archive.display()),
            format!("oci:{}", dir.display()),
        ] {
            let out = std::process::Command::new("skopeo")
                .args(["inspect", "--raw", &target])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "skopeo {target}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = std::process::Command::new("skopeo")
                .args(["inspect", "--config", &target])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "skopeo --config {target}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if tool("umoci") {
        let out = std::process::Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci ls: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains('1'),
            "umoci lists tag 1"
        );
        let out = std::process::Command::new("umoci")
            .args(["stat", "--image"])
            .arg(format!("{}:1", dir.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci stat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Throughput on a ~200 MB docker-archive (run with `--ignored --nocapture`, release).
#[test]
#[ignore]
fn bench_load_save_200mb() {
    let mut data = vec![0u8; 50 << 20];
    let mut x = 1u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let files: Vec<(String, &[u8])> = (0..4).map(|i| (format!("big{i}"), &data[..])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let big = layer(&refs);
    let cfg = config(&[sha(&big)], "bench");
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["bench:1"],"Layers":["l/layer.tar"]}}]"#,
        sha(&cfg).hex()
    );
    let m: Members = vec![
        ("l/layer.tar".into(), big),
        (format!("{}.json", sha(&cfg).hex()), cfg),
        ("manifest.json".into(), manifest.into_bytes()),
    ];
    let s = store();
    let path = s.dir.path().join("in.tar");
    std::fs::write(&path, tar_of(&m)).unwrap();
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let t = std::time::Instant::now();
    do_load(&s, LoadSource::File(path)).0.unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let images = ImageStore::open(&s.layers).unwrap();
    let out = std::fs::File::create(s.dir.path().join("out.tar")).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let t = std::time::Instant::now();
    save(
        &s.layers,
        &images,
        &["bench:1".into()],
        &SaveFormat::DockerArchive,
        SaveCompression::None,
        &mut out,
        &mut |_| {},
    )
    .unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    let save_s = t.elapsed().as_secs_f64();
    println!(
        "{mb:.0} MB: load {load_s:.2}s = {:.0} MB/s, save {save_s:.2}s = {:.0} MB/s",
        mb / load_s,
        mb / save_s
    );
}
