//! The image store on a real store (vfs driver, real SQLite file): resolving by tag, full ID
//! and ID prefix, tags moving between images, `rmi` refused while a writable layer uses the
//! image, and layers released with their last image.

use strata_image::{new_config, ImageStore, Reference};
use strata_storage::layer_store::LayerStore;
use strata_testkit::file_tar;

fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

#[test]
fn resolve_by_tag_id_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    let images = ImageStore::open(&layers).unwrap();
    let tar = file_tar("hello", b"world");
    let img = strata_image::import(
        &layers,
        &images,
        &mut &tar[..],
        Some(&reference("busybox")),
        Some("m"),
    )
    .unwrap();
    assert_eq!(img.size, tar.len() as u64);
    assert_eq!(img.tags, vec![reference("busybox:latest")]);
    let hex = img.id.trim_start_matches("sha256:").to_string();

    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &img.id,
        &hex,
        &hex[..12],
        &hex[..1],
    ] {
        assert_eq!(images.resolve(name).unwrap().id, img.id, "{name}");
    }
    let wrong = new_config(&[], "strata test", None).unwrap();
    let err = images
        .create_image(&wrong, img.top_layer.as_ref(), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("top layer given is sha256:"), "{err}");
    let err = images.resolve("busybox:1.0").unwrap_err().to_string();
    assert!(err.contains("busybox:1.0"), "{err}");

    // Enough layerless images that two IDs must share a first hex digit.
    let mut ids = vec![img.id.clone()];
    for i in 0..17 {
        let config = new_config(&[], "strata test", Some(&format!("image {i}"))).unwrap();
        ids.push(images.create_image(&config, None, &[]).unwrap().id);
    }
    let first = |id: &String| id.as_bytes()[7];
    let shared = ids
        .iter()
        .find(|a| ids.iter().filter(|b| first(b) == first(a)).count() > 1)
        .unwrap();
    let prefix = (first(shared) as char).to_string();
    let err = images.resolve(&prefix).unwrap_err().to_string();
    assert!(err.contains("ambiguous"), "{err}");
}

#[test]
fn tags_move_and_rmi_respects_writable_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    let images = ImageStore::open(&layers).unwrap();
    let a = strata_image::import(
        &layers,
        &images,
        &mut &file_tar("a", b"1")[..],
        Some(&reference("app:1")),
        None,
    )
    .unwrap();
    let b = strata_image::import(
        &layers,
        &images,
        &mut &file_tar("b", b"2")[..],
        Some(&reference("app:1")),
        None,
    )
    .unwrap();
    assert!(
        images.image(&a.id).unwrap().tags.is_empty(),
        "the tag moved to b"
    );
    assert_eq!(images.resolve("app:1").unwrap().id, b.id);

    let top = b.top_layer.clone().unwrap();
    layers.create_rw("box", Some(&top), Some(&b.id)).unwrap();
    assert_eq!(
        layers.layer(&top).unwrap().refs,
        2,
        "the image and the writable layer"
    );
    let err = images.remove(&b.id, false).unwrap_err().to_string();
    assert!(err.contains("box"), "{err}");
    images.remove(&b.id, true).unwrap();
    assert!(images.resolve("app:1").is_err());
    assert_eq!(
        layers.layer(&top).unwrap().refs,
        1,
        "still held by the writable layer"
    );
    layers.remove_rw("box", false).unwrap();
    assert!(layers.layer(&top).is_err(), "released with its last user");

    // Reopening finds everything as it was.
    drop(images);
    drop(layers);
    let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    let images = ImageStore::open(&layers).unwrap();
    let all = images.images().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, a.id);
    assert_eq!(layers.layers().unwrap().len(), 1);
    images.remove(&a.id, false).unwrap();
    assert!(layers.layers().unwrap().is_empty());
    assert!(layers.driver().list().unwrap().is_empty());
}

#[test]
fn rmi_removes_the_config_blob_and_every_stored_tag_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let layers = std::sync::Arc::new(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    let images = ImageStore::open(&layers).unwrap();
    let img = strata_image::import(
        &layers,
        &images,
        &mut &file_tar("a", b"1")[..],
        Some(&reference("app")),
        None,
    )
    .unwrap();
    let blob = dir
        .path()
        .join("blobs/sha256")
        .join(img.id.trim_start_matches("sha256:"));
    assert!(blob.is_file());
    assert_eq!(images.config(&img.id).unwrap().digest.to_string(), img.id);
    // A row written before names were normalised: it parses to `old:latest`, a spelling
    // that is not the one stored.
    layers
        .db()
        .write(|tx| {
            tx.sql().execute(
                "INSERT INTO tags (reference, image_id) VALUES ('docker.io/library/old:latest', ?1)",
                [&img.id],
            )?;
            Ok::<_, strata_storage::Error>(())
        })
        .unwrap();

    let lines = images.remove(&img.id, true).unwrap();
    assert_eq!(lines.last().unwrap(), &format!("Deleted: {}", img.id));
    assert!(!blob.exists(), "the config blob goes with the image");
    let left: i64 = layers
        .db()
        .read(|c| {
            Ok::<_, strata_storage::Error>(
                c.query_row("SELECT count(*) FROM tags", [], |r| r.get(0))?,
            )
        })
        .unwrap();
    assert_eq!(left, 0);
    let err = images
        .tag(&img.id, &reference("again"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such image"), "{err}");
}
