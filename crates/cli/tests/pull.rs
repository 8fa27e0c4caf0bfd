//! `strata pull` against a real registry (Debian's `docker-registry` on 127.0.0.1), an image
//! pushed into it by skopeo: the pulled image runs and has the pushed config's ID, a second
//! pull downloads nothing, a corrupted blob or a missing tag fails clearly and leaves
//! nothing behind.

mod common;

use common::{busybox_tar, can_run_containers, Store};
use strata_testkit::registry::{docker_archive, have_skopeo, Registry};

/// A registry holding `bb:latest`, three layers (busybox, then a file each: the upper two
/// are fetched into staging files while the first streams); its config digest
/// and the pushed manifest.
fn registry_with_image(store: &Store) -> Option<(Registry, String, serde_json::Value)> {
    let registry = Registry::plain()?;
    if !have_skopeo() {
        return None;
    }
    let layers = vec![
        busybox_tar(&["sh", "true", "cat"]),
        strata_testkit::file_tar("hello.txt", b"pulled\n"),
        strata_testkit::file_tar("third.txt", b"3\n"),
    ];
    let (archive, config) = docker_archive("bb:latest", &layers, &["sh"]);
    let path = store.input_file("bb.tar", &archive);
    let manifest = registry.push_archive(std::path::Path::new(&path), "bb:latest");
    Some((registry, config, manifest))
}

#[test]
fn pull_runs_and_second_pull_is_up_to_date() {
    let store = Store::create("vfs");
    let Some((registry, config, _)) = registry_with_image(&store) else {
        return;
    };
    let reference = format!("{}/bb:latest", registry.addr);
    let out = store.ok(&["pull", &reference]);
    for needle in [
        "latest: Pulling from bb",
        "Pulling fs layer",
        "Pull complete",
        "Digest: sha256:",
        &format!("Status: Downloaded newer image for {reference}"),
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    assert_eq!(out.lines().last(), Some(reference.as_str()));
    let inspect: serde_json::Value =
        serde_json::from_str(&store.ok(&["image", "inspect", &reference])).unwrap();
    assert_eq!(inspect[0]["Id"], config.as_str());

    let again = store.ok(&["pull", &reference]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {reference}")),
        "{again}"
    );
    assert!(!again.contains("Pulling fs layer"), "{again}");
    assert_eq!(store.ok(&["pull", "-q", &reference]).trim(), reference);
    let digest = again
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("a Digest line")
        .to_string();
    let by_digest = format!("{}/bb@{digest}", registry.addr);
    let out = store.ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {by_digest}")),
        "{out}"
    );

    if can_run_containers() {
        let cat = store.ok(&["run", "--rm", &reference, "cat", "/hello.txt", "/third.txt"]);
        assert_eq!(cat, "pulled\n3\n");
    }
    store.ok(&["check"]);
}

/// The lowest layer streams into the store, the others go through staging files: a bad
/// blob on either path fails the same way.
#[test]
fn corrupted_streamed_blob_fails_naming_the_layer_and_leaves_nothing() {
    corrupted_blob_fails(0);
}

#[test]
fn corrupted_staged_blob_fails_naming_the_layer_and_leaves_nothing() {
    corrupted_blob_fails(2);
}

fn corrupted_blob_fails(index: usize) {
    let store = Store::create("vfs");
    let Some((registry, _, manifest)) = registry_with_image(&store) else {
        return;
    };
    let layer = manifest["layers"][index]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = registry.blob_path(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let reference = format!("{}/bb:latest", registry.addr);
    let out = store.run(&["pull", &reference]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&layer), "the layer is not named: {err}");
    assert!(store.image_ids().is_empty(), "an image was made");
    assert!(store.layer_names().is_empty(), "layers were left");
    let tmp: Vec<_> = std::fs::read_dir(store.root.join("tmp"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        !tmp.iter().any(|n| n.to_string_lossy().ends_with(".blob")),
        "{tmp:?}"
    );
    store.ok(&["check"]);
}

#[test]
fn missing_tag_is_not_found_not_an_auth_error() {
    let store = Store::create("vfs");
    let Some((registry, _, _)) = registry_with_image(&store) else {
        return;
    };
    let err = store.fail(&["pull", &format!("{}/bb:nope", registry.addr)]);
    assert!(err.contains("not found"), "{err}");
    assert!(!err.to_lowercase().contains("unauthorized"), "{err}");
    let err = store.fail(&[
        "pull",
        "--platform",
        "linux/s390x",
        &format!("{}/bb:latest", registry.addr),
    ]);
    assert!(
        err.contains("does not match the specified platform"),
        "{err}"
    );
    let err = store.fail(&["pull", &format!("{}/nothing:latest", registry.addr)]);
    assert!(err.contains("not found"), "{err}");
    assert!(store.image_ids().is_empty());
}

#[test]
fn pull_by_digest_makes_an_untagged_image() {
    let first = Store::create("vfs");
    let Some((registry, config, _)) = registry_with_image(&first) else {
        return;
    };
    let out = first.ok(&["pull", &format!("{}/bb:latest", registry.addr)]);
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("a Digest line");
    let store = Store::create("vfs");
    let by_digest = format!("{}/bb@{digest}", registry.addr);
    let out = store.ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    let ids = store.image_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(config.contains(&ids[0]), "{ids:?} vs {config}");
    store.ok(&["check"]);
}
