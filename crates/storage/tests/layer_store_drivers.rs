//! The layer store end to end on the real drivers: real tars applied, real writable layers
//! mounted (overlay2 needs root and skips with a message otherwise), changes and exports read
//! back, everything still there after a reopen, and nothing left on disk after removal.

mod common;

use std::path::Path;

use common::Tar;
use strata_storage::layer_store::LayerStore;
use strata_storage::{ChangeKind, Digest};

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    names.sort();
    names
}

fn exercise(driver: &str, root: &Path) {
    let base = Tar::new()
        .dir("etc", 0o755)
        .file("etc/os", b"strata\n", 0o644)
        .file("bin", b"x", 0o755)
        .bytes();
    let top = Tar::new().file("etc/motd", b"hi\n", 0o644).bytes();
    let (a, b) = {
        let store = LayerStore::open(root, driver, &[]).unwrap();
        let a = store.create_layer(None, &mut &base[..]).unwrap();
        let b = store
            .create_layer(Some(&a.chain_id), &mut &top[..])
            .unwrap();
        assert_eq!(a.diff_id, Digest::of_bytes(&base));
        assert_eq!(b.chain_id, Digest::chain(Some(&a.chain_id), &b.diff_id));
        assert_eq!(b.size, top.len() as u64);
        // The same chain again is the same layer, stored once.
        assert_eq!(
            store
                .create_layer(Some(&a.chain_id), &mut &top[..])
                .unwrap(),
            b
        );
        assert_eq!(store.driver().list().unwrap().len(), 2);

        let mut out = Vec::new();
        store.export_layer(&b.chain_id, &mut out).unwrap();
        assert!(
            tar_names(&out).contains(&"etc/motd".to_string()),
            "{:?}",
            tar_names(&out)
        );
        assert!(
            !tar_names(&out).contains(&"bin".to_string()),
            "only b's own changes"
        );

        store
            .create_rw("box", Some(&b.chain_id), Some("sha256:img"))
            .unwrap();
        let path = store.mount_rw("box").unwrap();
        assert_eq!(std::fs::read(path.join("etc/os")).unwrap(), b"strata\n");
        assert_eq!(std::fs::read(path.join("etc/motd")).unwrap(), b"hi\n");
        std::fs::write(path.join("new"), b"n").unwrap();
        std::fs::remove_file(path.join("bin")).unwrap();
        (a, b)
    };

    let store = LayerStore::open(root, driver, &[]).unwrap();
    assert_eq!(store.recovery_report().orphan_dirs_removed, 0);
    assert_eq!(
        store.rw_layer("box").unwrap().mount_count,
        1,
        "the mount survived the reopen"
    );
    assert_eq!(store.layer(&a.chain_id).unwrap().refs, 1);
    assert_eq!(store.layer(&b.chain_id).unwrap().refs, 1);
    let changes: Vec<(String, ChangeKind)> = store
        .changes_rw("box")
        .unwrap()
        .into_iter()
        .map(|c| (c.path, c.kind))
        .collect();
    assert!(
        changes.contains(&("/new".into(), ChangeKind::Added)),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("/bin".into(), ChangeKind::Deleted)),
        "{changes:?}"
    );
    let mut out = Vec::new();
    store.export_rw("box", &mut out).unwrap();
    let names = tar_names(&out);
    assert!(
        names.contains(&"new".into()) && names.contains(&".wh.bin".into()),
        "{names:?}"
    );

    assert!(
        store.remove_rw("box", false).is_err(),
        "refused while mounted"
    );
    store.unmount_rw("box", false).unwrap();
    store.remove_rw("box", false).unwrap();
    // The writable layer held the last reference on b, and b the last on a.
    assert!(store.layers().unwrap().is_empty());
    assert!(store.driver().list().unwrap().is_empty());
}

#[test]
fn vfs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    exercise("vfs", dir.path());
}

#[test]
fn overlay2_end_to_end() {
    if !common::is_root() {
        eprintln!("SKIPPED overlay2_end_to_end: overlay2 needs root (mounting overlayfs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    exercise("overlay2", dir.path());
}

#[test]
fn overlay2_mount_counts_follow_the_kernel() {
    if !common::is_root() {
        eprintln!(
            "SKIPPED overlay2_mount_counts_follow_the_kernel: needs root (mounting overlayfs)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let store = LayerStore::open(dir.path(), "overlay2", &[]).unwrap();
        store.create_rw("c", None, None).unwrap();
        store.mount_rw("c").unwrap()
    };
    // As after a reboot: the kernel forgot the mount, the row did not.
    rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH).unwrap();
    let store = LayerStore::open(dir.path(), "overlay2", &[]).unwrap();
    assert_eq!(store.recovery_report().mount_counts_reset, 1);
    assert_eq!(store.rw_layer("c").unwrap().mount_count, 0);
    store.remove_rw("c", false).unwrap();
}
