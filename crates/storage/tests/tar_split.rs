//! Byte-exact layer tars: a layer applied from a tar gives back, through its tar-split record,
//! the very bytes it was applied from, on vfs and overlay2 (root only; skips with a message
//! otherwise). Checked and refused blobs leave nothing behind; a layer changed on disk after
//! it was loaded is refused when its tar is asked for.

mod common;

use std::path::Path;

use common::{gzip, is_root, zstd, Tar};
use strata_storage::layer_store::{LayerExpectation, LayerStore};
use strata_storage::Digest;

/// Writes `v` as a NUL-terminated 11-digit octal field.
fn octal(field: &mut [u8; 12], v: u64) {
    field.copy_from_slice(format!("{v:011o}\0").as_bytes());
}

/// A GNU sparse entry `name`: 512 bytes of 'a' at 0, 1024 of 'b' at 1 MiB.
fn sparse_entry(name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_size(1536);
    h.set_uid(0);
    h.set_gid(0);
    let gnu = h.as_gnu_mut().unwrap();
    octal(&mut gnu.sparse[0].offset, 0);
    octal(&mut gnu.sparse[0].numbytes, 512);
    octal(&mut gnu.sparse[1].offset, 1 << 20);
    octal(&mut gnu.sparse[1].numbytes, 1024);
    octal(&mut gnu.realsize, (1 << 20) + 1024);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(std::iter::repeat_n(b'a', 512));
    out.extend(std::iter::repeat_n(b'b', 1024));
    out
}

/// A plain entry mostly of zeros, as `docker export` sends a sparse file: apply leaves holes
/// for the zero blocks, which must read back as the same bytes. Odd size: ends in zeros.
fn holey() -> Vec<u8> {
    let mut data = vec![0u8; (1 << 20) + 333];
    data[70_000] = b'x';
    data[300_000..300_100].fill(b'y');
    data
}

/// Every kind of entry a tar-split must keep, then odd trailing zeros after the end blocks.
fn fixture() -> Vec<u8> {
    let long = format!("deep/{}/file", "n".repeat(120));
    let mut t = Tar::new();
    t.dir("deep", 0o755)
        .pax(&[("mtime", b"1600000000.25"), ("SCHILY.xattr.user.k", b"v")])
        .file("deep/pax", b"with pax records\n", 0o644)
        .file(&long, &vec![7u8; 3000], 0o600)
        .file("big", &vec![1u8; 1 << 20], 0o644)
        .hardlink("big-link", "big")
        .symlink("sym", "deep/pax")
        .file(".wh.gone", b"", 0o644)
        .dir("opaque", 0o755)
        .file("opaque/.wh..wh..opq", b"", 0o644)
        .file("opaque/kept", b"odd size: 13", 0o644)
        .file("empty", b"", 0o644)
        .file("holey", &holey(), 0o644);
    let mut bytes = t.bytes();
    // The builder's two end blocks are the tail: put the sparse entry before them.
    let end = bytes.split_off(bytes.len() - 1024);
    bytes.extend(sparse_entry("sparse"));
    bytes.extend(end);
    bytes.extend(vec![0u8; 5 * 512 + 37]);
    bytes
}

fn layer_tar(store: &LayerStore, chain: &Digest) -> strata_storage::Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = store.layer_tar(chain, &mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn round_trips(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), driver, &[]).unwrap();
    let tar = fixture();
    let base = store
        .create_layer(None, &mut &Tar::new().file("gone", b"x", 0o644).bytes()[..])
        .unwrap();
    let mut layer = store
        .create_layer(Some(&base.chain_id), &mut &tar[..])
        .unwrap();
    assert_eq!(layer.diff_id, Digest::of_bytes(&tar));
    let out = layer_tar(&store, &layer.chain_id).unwrap();
    assert_eq!(Digest::of_bytes(&out), layer.diff_id);
    assert!(out == tar, "{driver}: bytes differ");
    let holey = store.driver().dirs(&layer.storage_id).diff.join("holey");
    let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(holey).unwrap());
    assert!(
        blocks * 512 <= 64 << 10,
        "{driver}: holey takes {blocks} blocks"
    );
    // The record is far smaller than the data it leaves out.
    let record = dir
        .path()
        .join("tar-split")
        .join(format!("{}.zst", layer.storage_id));
    let size = std::fs::metadata(&record).unwrap().len();
    assert!(size < 4096, "record of {size} bytes");

    // Compressed inputs give back their uncompressed bytes. (An image holds `base`, so that
    // removing the layer on it does not take it along.)
    store
        .db()
        .write(|tx| store.retain_in(tx, &base.chain_id))
        .unwrap();
    for input in [gzip(&tar), zstd(&tar)] {
        store.remove_if_unused(&layer.chain_id).unwrap();
        let again = store
            .create_layer(Some(&base.chain_id), &mut &input[..])
            .unwrap();
        assert!(layer_tar(&store, &again.chain_id).unwrap() == tar);
        assert!(!record.exists(), "the removed layer's record is gone");
        layer = again;
    }
    let record = dir
        .path()
        .join("tar-split")
        .join(format!("{}.zst", layer.storage_id));

    // A layer reopened in another process still gives the same bytes.
    drop(store);
    let store = LayerStore::open(dir.path(), driver, &[]).unwrap();
    assert!(layer_tar(&store, &layer.chain_id).unwrap() == tar);

    // Changed on disk after the load: refused, naming the file.
    let diff = store.driver().dirs(&layer.storage_id).diff;
    std::fs::write(diff.join("opaque/kept"), b"changed!").unwrap();
    let err = layer_tar(&store, &layer.chain_id).unwrap_err().to_string();
    assert!(
        err.contains("modified after it was loaded") && err.contains("opaque/kept"),
        "{err}"
    );
    // Same size, other bytes: caught by the diffID check.
    std::fs::write(diff.join("opaque/kept"), b"odd size: 14").unwrap();
    let err = layer_tar(&store, &layer.chain_id).unwrap_err().to_string();
    assert!(err.contains("was modified after it was stored"), "{err}");
    // A symlink in place of a file is not followed.
    std::fs::remove_file(diff.join("opaque/kept")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", diff.join("opaque/kept")).unwrap();
    let err = layer_tar(&store, &layer.chain_id).unwrap_err().to_string();
    assert!(err.contains("opaque/kept"), "{err}");

    // Removal takes the record with it.
    store.remove_if_unused(&layer.chain_id).unwrap();
    assert!(!record.exists());
}

#[test]
fn vfs_layer_tars_are_byte_exact() {
    round_trips("vfs");
}

#[test]
fn overlay2_layer_tars_are_byte_exact() {
    if !is_root() {
        eprintln!("skipping overlay2_layer_tars_are_byte_exact: needs root for overlay2");
        return;
    }
    round_trips("overlay2");
}

#[test]
fn mismatched_blobs_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), "vfs", &[]).unwrap();
    let tar = fixture();
    let blob = gzip(&tar);
    let wrong = Digest::of_bytes(b"something else");
    let cases = [
        LayerExpectation {
            blob_digest: Some(wrong.clone()),
            diff_id: None,
        },
        LayerExpectation {
            blob_digest: Some(Digest::of_bytes(&blob)),
            diff_id: Some(wrong.clone()),
        },
    ];
    for expect in &cases {
        let err = store
            .create_layer_checked(None, &mut &blob[..], expect)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, strata_storage::Error::Archive(_)) && text.contains(wrong.as_str()),
            "{text}"
        );
        assert!(store.layers().unwrap().is_empty());
        assert!(store.driver().list().unwrap().is_empty());
        assert!(entries(&dir.path().join("tar-split")).is_empty());
        assert!(entries(&dir.path().join("tmp")).is_empty());
    }
    let ok = LayerExpectation {
        blob_digest: Some(Digest::of_bytes(&blob)),
        diff_id: Some(Digest::of_bytes(&tar)),
    };
    let layer = store
        .create_layer_checked(None, &mut &blob[..], &ok)
        .unwrap();
    assert!(layer_tar(&store, &layer.chain_id).unwrap() == tar);
}

#[test]
fn layers_without_a_record_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), "vfs", &[]).unwrap();
    let tar = Tar::new().file("a", b"a", 0o644).bytes();
    let layer = store.create_layer(None, &mut &tar[..]).unwrap();
    let record = dir
        .path()
        .join("tar-split")
        .join(format!("{}.zst", layer.storage_id));
    std::fs::remove_file(&record).unwrap(); // as a layer made before records existed
    let out = layer_tar(&store, &layer.chain_id).unwrap();
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn orphan_records_are_swept_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    let orphan = dir
        .path()
        .join("tar-split/0123456789abcdef0123456789abcdef.zst");
    std::fs::write(&orphan, b"x").unwrap();
    let store = LayerStore::open(dir.path(), "vfs", &[]).unwrap();
    assert!(!orphan.exists());
    assert_eq!(store.recovery_report().orphan_tar_splits_removed, 1);
}
