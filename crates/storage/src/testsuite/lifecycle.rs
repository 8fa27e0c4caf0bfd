//! A layer's life around its content: `changes` in `docker diff` form, remove (mounted or
//! not), idempotent mount/unmount, usage, and apply refusing to write outside the layer.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::harness::*;
use super::tarball::{raw_entry, TarBuilder};
use crate::driver::{Durability, LayerKind};

pub fn changes_use_docker_diff_format(fx: &Fixture) {
    let mut base = TarBuilder::new();
    base.dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/gone", b"x")
        .file("etc/keep", b"k");
    base.dir("usr").dir("usr/bin").file("usr/bin/x", b"x");
    fx.layer("base", None, &base.finish());
    let base_changes = fx.changes("base", None);
    for added in ["A /etc", "A /etc/passwd", "A /usr/bin/x"] {
        assert!(
            base_changes.contains(&added.to_string()),
            "changes of a base layer: {base_changes:?}"
        );
    }

    let merged = fx.container("c", "base");
    fs::write(merged.join("etc/new"), "n").expect("write");
    fs::remove_file(merged.join("etc/gone")).expect("rm");
    fs::write(merged.join("etc/passwd"), "changed").expect("write");
    fs::create_dir(merged.join("opt")).expect("mkdir");
    fs::write(merged.join("opt/app"), "a").expect("write");
    let expected = [
        "C /etc",
        "D /etc/gone",
        "A /etc/new",
        "C /etc/passwd",
        "A /opt",
        "A /opt/app",
    ];
    assert_eq!(fx.changes("c", Some("base")), expected);
}

pub fn remove_layer(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    let tar = tar.finish();
    fx.layer("x", None, &tar);
    fx.layer("y", Some("x"), &tar);
    let layer_dir = fx.driver.home().join("y");
    let short_link = if fx.is_overlay2() {
        let short = read(&layer_dir.join("link"));
        let link = fx.driver.home().join("l").join(short.trim());
        assert!(
            exists(&link),
            "overlay2 short link {} missing",
            link.display()
        );
        Some(link)
    } else {
        None
    };
    let diff = fx.driver.dirs("y").diff;
    fx.driver.remove("y").expect("remove y");
    assert!(!exists(&diff), "{} left behind", diff.display());
    if fx.is_overlay2() {
        assert!(!exists(&layer_dir), "{} left behind", layer_dir.display());
    }
    if let Some(link) = short_link {
        assert!(!exists(&link), "short link {} left behind", link.display());
    }
    assert_eq!(fx.driver.list().expect("list"), ["x"]);
    fx.driver
        .remove("y")
        .expect("removing a missing layer is not an error");
    assert_eq!(
        read(&fx.driver.dirs("x").diff.join("f")),
        "f",
        "the parent is untouched"
    );
}

pub fn remove_mounted_layer(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let merged = fx.container("c", "base");
    fs::write(merged.join("g"), "g").expect("write");
    let diff = fx.driver.dirs("c").diff;
    fx.driver.remove("c").expect("remove a mounted layer");
    let left: Vec<_> = mount_points_under(&fx.root);
    assert!(left.is_empty(), "mounts left after remove: {left:?}");
    assert!(!exists(&diff), "{} left behind", diff.display());
    assert_eq!(fx.driver.list().expect("list"), ["base"]);
}

pub fn mount_is_idempotent(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let first = fx.container("c", "base");
    assert_eq!(
        fx.driver
            .mount("c", Durability::Durable)
            .expect("mount again"),
        first
    );
    assert_is_mounted_truthful(fx, "c", &first);
    if fx.is_overlay2() {
        assert!(fx.driver.is_mounted("c").expect("is_mounted"));
    }
    fs::write(first.join("g"), "g").expect("write");
    fx.driver.unmount("c").expect("unmount");
    fx.driver.unmount("c").expect("unmount again");
    assert!(!fx.driver.is_mounted("c").expect("is_mounted"));
    assert!(
        !mount_points_under(&fx.root).contains(&first),
        "{} still mounted",
        first.display()
    );
    let again = fx
        .driver
        .mount("c", Durability::Durable)
        .expect("mount after unmount");
    assert_eq!(
        read(&again.join("g")),
        "g",
        "writes persist across unmount/mount"
    );
    assert_eq!(read(&again.join("f")), "f");
}

pub fn usage_grows_with_content(fx: &Fixture) {
    let mut tar = TarBuilder::new();
    tar.file("f", b"f");
    fx.layer("base", None, &tar.finish());
    let merged = fx.container("c", "base");
    let before = fx.driver.usage("c").expect("usage");
    fs::write(merged.join("big"), noise(1 << 20, 3)).expect("write 1 MiB");
    fs::File::open(merged.join("big"))
        .expect("open")
        .sync_all()
        .expect("fsync");
    let after = fx.driver.usage("c").expect("usage");
    assert!(
        after.bytes >= before.bytes + (1 << 20),
        "usage bytes {before:?} -> {after:?} after a 1 MiB file"
    );
    assert!(
        after.inodes > before.inodes,
        "usage inodes {before:?} -> {after:?} after a new file"
    );
}

pub fn apply_stays_inside_the_layer(fx: &Fixture) {
    // A benign tar applies, so that refusing the hostile ones below means something.
    let mut benign = TarBuilder::new();
    benign.dir("d").symlink("d/abs", "/").file("d/f", b"f");
    fx.layer("benign", None, &benign.finish());
    let outside = fx.root.join("outside");
    fs::create_dir(&outside).expect("mkdir outside");
    fs::write(outside.join("secret"), "s").expect("write secret");

    let mut through_symlink = TarBuilder::new();
    through_symlink
        .symlink("escape", outside.to_str().expect("utf-8"))
        .dir("escape")
        .file("escape/pwned", b"x");
    let _ = try_layer(fx, "esc1", &through_symlink.finish());
    assert!(
        !exists(&outside.join("pwned")),
        "apply followed an absolute symlink out of the layer"
    );

    let up = "../".repeat(
        fx.driver
            .dirs("esc2")
            .diff
            .strip_prefix(&fx.root)
            .expect("under root")
            .components()
            .count(),
    );
    let _ = try_layer(fx, "esc2", &raw_entry(&format!("{up}pwned-dotdot"), b"x"));
    assert!(
        !exists(&fx.root.join("pwned-dotdot")),
        "apply followed `..` out of the layer"
    );

    let mut hardlink = TarBuilder::new();
    hardlink.hardlink("hl", &format!("{up}outside/secret"));
    if try_layer(fx, "esc3", &hardlink.finish()).is_ok() {
        let hl = fx.driver.dirs("esc3").diff.join("hl");
        let secret_ino = fs::metadata(outside.join("secret")).expect("stat").ino();
        assert!(
            !exists(&hl) || fs::symlink_metadata(&hl).expect("lstat").ino() != secret_ino,
            "hard link out of the layer"
        );
    }
    assert_eq!(ls(&outside), ["secret"]);
}

/// Creates `id` and applies `tar`, returning apply's result (hostile tars may be refused).
fn try_layer(fx: &Fixture, id: &str, tar: &[u8]) -> crate::Result<()> {
    fx.driver
        .create(id, None, LayerKind::ReadOnly)
        .expect("create");
    fx.apply(id, &mut &tar[..]).map(drop)
}
