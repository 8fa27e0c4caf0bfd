//! Commit of an overlay2 writable layer, which copies the upper dir and hashes its export in
//! one pass: the diffID it records must be exactly the sha256 of the tar the new layer gives
//! back (`layer_tar`, a deterministic export of the copy), and that tar must be the
//! container's own diff tar. Exercised with every kind of entry an upper dir holds.

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use common::Tar;
use strata_storage::layer_store::LayerStore;
use strata_storage::Digest;

/// Every kind of change: new, modified, deleted (whiteout), replaced dir (opaque), hard
/// links, symlink, FIFO, xattrs, owners, setuid, a sparse file and files larger than the
/// copy's chunk.
fn change(root: &Path) {
    let big: Vec<u8> = (0..(1 << 20) + 4321).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("big"), &big).unwrap();
    std::fs::write(root.join("etc/os"), b"changed\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::remove_file(root.join("bin")).unwrap();
    std::fs::remove_dir_all(root.join("opt")).unwrap();
    std::fs::create_dir(root.join("opt")).unwrap();
    std::fs::write(root.join("opt/fresh"), b"f").unwrap();
    std::fs::hard_link(root.join("big"), root.join("etc/big-link")).unwrap();
    symlink("../etc/os", root.join("etc/link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let sparse = std::fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(3 << 20).unwrap();
    rustix::io::pwrite(&sparse, &[9u8; 5000], 1 << 20).unwrap();
    drop(sparse);
    let suid = root.join("suid");
    std::fs::write(&suid, b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&suid, Some(1234), Some(99)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    rustix::fs::setxattr(
        root.join("etc/os"),
        "user.note",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

#[test]
fn overlay2_commit_diff_id_is_the_layer_tar_digest() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED overlay2_commit_diff_id_is_the_layer_tar_digest: needs root (overlayfs)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), "overlay2", &[]).unwrap();
    let base = Tar::new()
        .dir("etc", 0o755)
        .file("etc/os", b"strata\n", 0o644)
        .file("bin", b"x", 0o755)
        .dir("opt", 0o755)
        .file("opt/old", b"o", 0o644)
        .bytes();
    let base = store.create_layer(None, &mut &base[..]).unwrap();
    store.create_rw("box", Some(&base.chain_id), None).unwrap();
    let root = store.mount_rw("box").unwrap();
    change(&root);
    store.unmount_rw("box", false).unwrap();

    let mut diff = Vec::new();
    store.export_rw("box", &mut diff).unwrap();
    let layer = store.commit_rw("box").unwrap();
    let mut tar = Vec::new();
    let written = store.layer_tar(&layer.chain_id, &mut tar).unwrap();
    assert_eq!(written, tar.len() as u64);
    assert_eq!(layer.diff_id, Digest::of_bytes(&tar));
    assert_eq!(layer.size, tar.len() as u64);
    assert!(
        tar == diff,
        "the committed layer's tar is the container's diff tar"
    );

    // The copy holds what the container wrote, holes kept.
    let copy = store.driver().dirs(&layer.storage_id).diff;
    let sparse = std::fs::metadata(copy.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 3 << 20);
    assert!(sparse.blocks() * 512 < 1 << 20, "holes stay holes");
    let big = std::fs::metadata(copy.join("big")).unwrap();
    assert_eq!(
        big.ino(),
        std::fs::metadata(copy.join("etc/big-link")).unwrap().ino()
    );
    assert_eq!(
        std::fs::read(copy.join("big")).unwrap(),
        std::fs::read(
            store
                .driver()
                .dirs(&store.rw_layer("box").unwrap().storage_id)
                .diff
                .join("big")
        )
        .unwrap()
    );
}
