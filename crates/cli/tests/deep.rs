//! Deep images on overlay2: 126, 130 and 500 layers (Docker stops at 125) mount and show
//! every layer's file; a 501st layer can be created (loading a deep image must work) but an
//! image that deep is refused at mount with a message saying how to flatten it.
//!
//! The chain is built with the library (501 `create_layer` calls on a growing parent, one
//! image per depth via `new_config`), then mounted through the binary as a user would.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use strata_image::{new_config, ImageStore, Reference};
use strata_storage::layer_store::LayerStore;
use strata_storage::Digest;

const DEPTHS: [usize; 4] = [126, 130, 500, 501];

#[test]
fn deep_images_mount_up_to_the_kernel_limit() {
    let Some(s) = Store::new("overlay2") else {
        return;
    };
    build_chain(&s.root, 501);
    for depth in [126, 130, 500] {
        let name = format!("d{depth}");
        let merged = s
            .ok(&["mount", "--name", &name, &format!("deep:{depth}")])
            .trim()
            .to_string();
        check_every_layer(Path::new(&merged), depth);
        s.ok(&["rm", "-f", &name]);
    }

    let err = s.fail(&["mount", "--name", "d501", "deep:501"]);
    assert_mentions(&err, &["501 lower layers", "at most 500", "export", "vfs"]);
    assert!(s.layer_names().is_empty(), "a refused mount keeps no layer");
    assert!(s.mounts_inside().is_empty(), "{:?}", s.mounts_inside());
    // The layers themselves are all there: only mounting was refused.
    assert_eq!(s.info_value("Layers"), "501");
}

/// `depth` files, `file000` to `file<depth-1>`, each holding its layer's number.
fn check_every_layer(merged: &Path, depth: usize) {
    assert_eq!(fs::read_dir(merged).unwrap().count(), depth);
    for i in 0..depth {
        let text = fs::read_to_string(merged.join(format!("file{i:03}"))).unwrap();
        assert_eq!(text, i.to_string(), "layer {i} of {depth}");
    }
}

/// Layers 0..count, each adding `fileNNN` on the previous one, and an image `deep:N` for each
/// depth in [`DEPTHS`].
fn build_chain(root: &Path, count: usize) {
    let layers =
        std::sync::Arc::new(LayerStore::open(root, "overlay2", &[]).expect("opening the store"));
    let images = ImageStore::open(&layers).unwrap();
    let start = std::time::Instant::now();
    let mut diff_ids: Vec<Digest> = Vec::new();
    let mut parent: Option<Digest> = None;
    for i in 0..count {
        let tar = Tar::new()
            .file(&format!("file{i:03}"), i.to_string().as_bytes())
            .finish();
        let layer = layers
            .create_layer(parent.as_ref(), &mut tar.as_slice())
            .unwrap_or_else(|e| panic!("creating layer {i}: {e}"));
        diff_ids.push(layer.diff_id.clone());
        parent = Some(layer.chain_id.clone());
        if DEPTHS.contains(&(i + 1)) {
            let config = new_config(&diff_ids, "deep test", None).unwrap();
            let tag: Reference = format!("deep:{}", i + 1).parse().unwrap();
            images
                .create_image(&config, parent.as_ref(), &[tag])
                .unwrap();
        }
    }
    println!("{count} layers created in {:?}", start.elapsed());
}
