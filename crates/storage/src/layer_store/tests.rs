//! Metadata tests of the layer store on real SQLite files and real directories, through a
//! minimal directory driver (`DirDriver`) so that they do not depend on any real driver's
//! state of completion. End-to-end tests with vfs and overlay2 live in `tests/`.

use std::path::{Path, PathBuf};

use super::create::Staged;
use super::*;
use crate::driver::{Durability, LayerKind};
use crate::error::{Error, IoContext};
use crate::layout::{DiffFormat, DiffView, LayerDirs, Mount, Usage};

/// Each layer a plain directory `home/<id>` holding only its own files; "mounted" is a file
/// `home/<id>.mounted`, so that it survives a reopen like a kernel mount would.
struct DirDriver {
    home: PathBuf,
}

impl DirDriver {
    fn boxed(root: &Path) -> Box<dyn Driver> {
        let home = root.join("testdir");
        std::fs::create_dir_all(&home).unwrap();
        Box::new(DirDriver { home })
    }
    fn diff_dir(&self, id: &str) -> PathBuf {
        self.home.join(id)
    }
    fn flag(&self, id: &str) -> PathBuf {
        self.home.join(format!("{id}.mounted"))
    }
}

impl Driver for DirDriver {
    fn name(&self) -> &'static str {
        "testdir"
    }
    fn home(&self) -> &Path {
        &self.home
    }
    fn status(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn create(&self, id: &str, _parent: Option<&str>, _kind: LayerKind) -> Result<()> {
        std::fs::create_dir(self.diff_dir(id)).ctx(|| format!("mkdir {id}"))
    }
    fn remove(&self, id: &str) -> Result<()> {
        let _ = std::fs::remove_file(self.flag(id));
        match std::fs::remove_dir_all(self.diff_dir(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(id, e)),
            _ => Ok(()),
        }
    }
    fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&self.home).ctx(|| "ls".into())? {
            let e = e.ctx(|| "ls".into())?;
            if e.file_type().ctx(|| "stat".into())?.is_dir() {
                ids.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(ids)
    }
    fn mounts(&self, id: &str) -> Result<Vec<Mount>> {
        let source = self.diff_dir(id).display().to_string();
        Ok(vec![Mount {
            fs_type: "bind".into(),
            source,
            options: vec!["rbind".into()],
        }])
    }
    fn mount(&self, id: &str, _: Durability) -> Result<PathBuf> {
        std::fs::write(self.flag(id), b"").ctx(|| "flag".into())?;
        Ok(self.diff_dir(id))
    }
    fn unmount(&self, id: &str) -> Result<()> {
        let _ = std::fs::remove_file(self.flag(id));
        Ok(())
    }
    fn is_mounted(&self, id: &str) -> Result<bool> {
        Ok(self.flag(id).exists())
    }
    fn dirs(&self, id: &str) -> LayerDirs {
        LayerDirs {
            diff: self.diff_dir(id),
            mount_point: self.diff_dir(id),
            format: DiffFormat::OVERLAY_TRUSTED, // so that recovery compares mount flags
        }
    }
    fn diff_view(&self, id: &str, _parent: Option<&str>) -> Result<DiffView> {
        Ok(DiffView::FullCopy {
            layer: self.diff_dir(id),
            parent: None,
        })
    }
    fn usage(&self, _id: &str) -> Result<Usage> {
        Ok(Usage::default())
    }
}

/// A layer tar holding `files` (name, content).
pub(crate) fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn open(root: &Path) -> LayerStore {
    LayerStore::open_with_driver(root, DirDriver::boxed(root)).unwrap()
}

fn add(store: &LayerStore, parent: Option<&Digest>, files: &[(&str, &str)]) -> Layer {
    store.create_layer(parent, &mut &tar_of(files)[..]).unwrap()
}

fn refs(store: &LayerStore, chain: &Digest) -> u64 {
    store.layer(chain).unwrap().refs
}

#[test]
fn refcounts_follow_create_and_release_chains() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = add(&store, None, &[("a", "1")]);
    let b = add(&store, Some(&a.chain_id), &[("b", "2")]);
    let c = add(&store, Some(&b.chain_id), &[("c", "3")]);
    let c2 = add(&store, Some(&b.chain_id), &[("c2", "3")]);
    assert_eq!(a.chain_id, a.diff_id);
    assert_eq!(b.chain_id, Digest::chain(Some(&a.chain_id), &b.diff_id));
    assert_eq!(
        (refs(&store, &a.chain_id), refs(&store, &b.chain_id)),
        (1, 2)
    );
    assert_eq!(c.size, tar_of(&[("c", "3")]).len() as u64);

    store.release_layer(&c.chain_id).unwrap();
    assert!(store.layer(&c.chain_id).is_err());
    assert!(!store.driver().dirs(&c.storage_id).diff.exists());
    assert_eq!(refs(&store, &b.chain_id), 1);

    store.release_layer(&c2.chain_id).unwrap(); // cascades: c2, b, a all go
    assert!(store.layers().unwrap().is_empty());
    assert!(store.driver().list().unwrap().is_empty());
    let err = store.release_layer(&a.chain_id).unwrap_err().to_string();
    assert!(err.contains("no layer with chain ID"), "{err}");
}

#[test]
fn identical_chains_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = add(&store, None, &[("a", "1")]);
    let b1 = add(&store, Some(&a.chain_id), &[("b", "2")]);
    let b2 = add(&store, Some(&a.chain_id), &[("b", "2")]);
    assert_eq!(b1, b2);
    assert_eq!(
        refs(&store, &a.chain_id),
        1,
        "a duplicate takes no reference"
    );
    assert_eq!(
        store.driver().list().unwrap().len(),
        2,
        "the duplicate dir was dropped"
    );
    // The same diff on another parent is another chain.
    let other = add(&store, None, &[("b", "2")]);
    assert_eq!(other.diff_id, b1.diff_id);
    assert_ne!(other.chain_id, b1.chain_id);
}

#[test]
fn failed_apply_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut bad = tar_of(&[("a", "hello")]);
    bad.truncate(600); // header plus part of the data
    assert!(store.create_layer(None, &mut &bad[..]).is_err());
    assert!(store.driver().list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    let missing = Digest::of_bytes(b"nope");
    let err = store
        .create_layer(Some(&missing), &mut &tar_of(&[])[..])
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn reopen_keeps_everything_and_sweeps_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (a, rw) = {
        let store = open(dir.path());
        let a = add(&store, None, &[("a", "1")]);
        let rw = store
            .create_rw("box", Some(&a.chain_id), Some("sha256:img"))
            .unwrap();
        store.mount_rw("box").unwrap();
        (a, rw)
    };
    // What a crash leaves: a dir with no row, a stale tmp file, an unlocked marker.
    let driver = DirDriver::boxed(dir.path());
    driver
        .create(
            "0123456789abcdef0123456789abcdef",
            None,
            LayerKind::ReadOnly,
        )
        .unwrap();
    std::fs::write(dir.path().join("tmp/blob.partial"), b"x").unwrap();
    std::fs::write(
        dir.path()
            .join("tmp/0123456789abcdef0123456789abcdef.inflight"),
        b"",
    )
    .unwrap();

    let store = open(dir.path());
    let report = store.recovery_report().clone();
    assert_eq!(
        (report.orphan_dirs_removed, report.tmp_entries_removed),
        (1, 2),
        "{report:?}"
    );
    assert_eq!(store.layer(&a.chain_id).unwrap().refs, 1);
    let again = store.rw_layer("box").unwrap();
    assert_eq!((again.storage_id, again.mount_count), (rw.storage_id, 1));
    assert_eq!(again.image.as_deref(), Some("sha256:img"));
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn a_live_builder_is_not_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let staged = Staged::begin(&store, &store.lock().unwrap()).unwrap();
    store
        .driver()
        .create(&staged.id, None, LayerKind::ReadOnly)
        .unwrap();
    let other = open(dir.path()); // recovery runs while `staged` is being built
    assert_eq!(other.recovery_report().orphan_dirs_removed, 0);
    assert!(store.driver().dirs(&staged.id).diff.exists());
    drop(staged);
    assert!(store.driver().list().unwrap().is_empty());
}

/// vfs copies a new layer's parent into `dir/.tmp-<id>-*` (and marks it `ro/<id>`) before
/// renaming it into place; an open in another process meanwhile must not sweep either.
#[test]
fn a_live_builders_driver_scratch_is_not_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path(), "vfs", &[]).unwrap();
    let staged = Staged::begin(&store, &store.lock().unwrap()).unwrap();
    let copying = dir.path().join(format!("vfs/dir/.tmp-{}-0011", staged.id));
    let ro_marker = dir.path().join(format!("vfs/ro/{}", staged.id));
    std::fs::create_dir(&copying).unwrap();
    std::fs::write(&ro_marker, b"").unwrap();

    drop(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    assert!(
        copying.exists() && ro_marker.exists(),
        "swept under a live builder"
    );

    drop(staged);
    drop(LayerStore::open(dir.path(), "vfs", &[]).unwrap());
    assert!(
        !copying.exists() && !ro_marker.exists(),
        "litter once the builder is gone"
    );
}

#[test]
fn driver_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let err = LayerStore::open(dir.path(), "vfs", &[])
        .err()
        .unwrap()
        .to_string();
    let want = format!(
        "store {} was created with testdir; pass --storage-driver testdir or use another --root",
        dir.path().display()
    );
    assert_eq!(err, want);
}

#[test]
fn writable_layers_count_mounts_and_hold_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = add(&store, None, &[("a", "1")]);
    store.create_rw("c1", Some(&a.chain_id), None).unwrap();
    let err = store.create_rw("c1", None, None).unwrap_err().to_string();
    assert!(err.contains("c1 already exists"), "{err}");
    assert_eq!(refs(&store, &a.chain_id), 1);

    let p1 = store.mount_rw("c1").unwrap();
    let p2 = store.mount_rw("c1").unwrap();
    assert_eq!(p1, p2);
    assert_eq!(store.rw_layer("c1").unwrap().mount_count, 2);
    let err = store.remove_rw("c1", false).unwrap_err().to_string();
    assert!(err.contains("mounted (2 times)"), "{err}");
    store.unmount_rw("c1", false).unwrap();
    assert!(store
        .driver()
        .is_mounted(&store.rw_layer("c1").unwrap().storage_id)
        .unwrap());
    store.unmount_rw("c1", false).unwrap();
    assert!(!store
        .driver()
        .is_mounted(&store.rw_layer("c1").unwrap().storage_id)
        .unwrap());
    assert!(store.unmount_rw("c1", false).is_err());

    store.mount_rw("c1").unwrap();
    store.remove_rw("c1", true).unwrap();
    let err = store.rw_layer("c1").unwrap_err().to_string();
    assert_eq!(err, "no writable layer named c1");
    // The writable layer held the only reference: releasing it released `a`.
    assert!(store.layers().unwrap().is_empty());
    assert!(store.driver().list().unwrap().is_empty());
}

#[test]
fn mount_counts_are_reconciled_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let sid = {
        let store = open(dir.path());
        let rw = store.create_rw("c", None, None).unwrap();
        store.mount_rw("c").unwrap();
        store.create_rw("d", None, None).unwrap();
        rw.storage_id
    };
    let driver = DirDriver::boxed(dir.path());
    driver.unmount(&sid).unwrap(); // "the kernel" lost the mount (reboot)
    let d_sid = {
        let store = open(dir.path());
        assert_eq!(store.rw_layer("c").unwrap().mount_count, 0);
        store.rw_layer("d").unwrap().storage_id
    };
    driver.mount(&d_sid, Durability::Durable).unwrap(); // mounted, count 0 (killed between mount and commit)
    let store = open(dir.path());
    assert_eq!(store.recovery_report().stray_mounts_unmounted, 1);
    assert!(!store.driver().is_mounted(&d_sid).unwrap());
}

#[test]
fn transactions_release_atomically_for_callers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = add(&store, None, &[("a", "1")]);
    let r: Result<()> = store.db().write(|tx| {
        store.retain_in(tx, &a.chain_id)?;
        Err(Error::Conflict("caller changed its mind".into()))
    });
    assert!(r.is_err());
    assert_eq!(refs(&store, &a.chain_id), 0, "rolled back");
    assert!(store.remove_if_unused(&a.chain_id).unwrap());
    assert!(store.driver().list().unwrap().is_empty());
}
