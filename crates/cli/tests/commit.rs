//! End-to-end tests of `commit` and the image verbs (`history`, `tag`, `image inspect`,
//! `prune`) on a real store, per driver (overlay2 only as root). Containers are created, not
//! started: their writable layers are changed through `strata mount <container-id>`.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::*;
use serde_json::Value;

per_driver!(
    commit_adds_one_layer_with_history_and_changes,
    same_change_twice_gives_same_diff_id,
    deletions_survive_commit_and_save_round_trips,
    empty_commit_adds_no_layer,
    big_file_commit_is_fast,
    history_tag_inspect_shapes,
    prune_removes_exactly_the_unused,
);

fn setup(driver: &'static str) -> Option<Store> {
    let s = Store::new(driver)?;
    s.import(&rootfs_tar(), "busybox:latest");
    Some(s)
}

fn create(s: &Store, name: &str) -> String {
    s.ok(&["create", "--name", name, "busybox", "sh", "-c", "echo hi"])
        .trim()
        .to_string()
}

/// Mounts the container's writable layer, lets `f` change it, unmounts.
fn change(s: &Store, id: &str, f: impl FnOnce(&Path)) {
    let path = PathBuf::from(s.ok(&["mount", id]).trim());
    f(&path);
    s.ok(&["umount", id]);
}

fn inspect(s: &Store, image: &str) -> Value {
    let v: Value = serde_json::from_str(&s.ok(&["image", "inspect", image])).unwrap();
    v[0].clone()
}

fn layers_of(v: &Value) -> Vec<String> {
    v["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// Layer refs equal their users (children, images on top, writable layers on them).
fn assert_refs_consistent(s: &Store) {
    assert_eq!(
        s.info_value("Layer Reference Problems"),
        "0",
        "{}",
        s.ok(&["info"])
    );
}

fn commit_adds_one_layer_with_history_and_changes(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    let id = create(&s, "c1");
    change(&s, &id, |root| {
        std::fs::write(root.join("etc/new"), b"new file\n").unwrap();
    });
    let base = inspect(&s, "busybox");
    let new_id = s
        .ok(&[
            "commit",
            "-m",
            "added new",
            "-a",
            "Jane",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV A=b",
            "c1",
            "committed:v1",
        ])
        .trim()
        .to_string();
    assert!(new_id.starts_with("sha256:"), "{new_id}");
    let img = inspect(&s, "committed:v1");
    assert_eq!(img["Id"], new_id.as_str());
    let (old, new) = (layers_of(&base), layers_of(&img));
    assert_eq!(new.len(), old.len() + 1);
    assert_eq!(new[..old.len()], old[..]);
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(img["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&"A=b".into()));
    assert_eq!(img["Comment"], "added new");
    assert_eq!(img["Author"], "Jane");
    assert_eq!(img["Container"], id.as_str());
    let history = s.ok(&["history", "committed:v1"]);
    assert_eq!(history.lines().count(), 1 + 2, "{history}");
    let top = history.lines().nth(1).unwrap();
    assert!(
        top.contains("sh -c echo hi") && top.contains("added new"),
        "{history}"
    );
    // The new layer's parent is the image's top: a container of it sees base + change.
    let c2 = s
        .ok(&["create", "--name", "c3", "committed:v1"])
        .trim()
        .to_string();
    change(&s, &c2, |root| {
        assert_eq!(std::fs::read(root.join("etc/new")).unwrap(), b"new file\n");
        assert_eq!(
            std::fs::read(root.join("etc/keep")).unwrap(),
            b"untouched\n"
        );
    });
    assert!(
        s.ok(&["diff", &c2]).is_empty(),
        "the commit is below c3's layer"
    );
    assert_refs_consistent(&s);
}

fn same_change_twice_gives_same_diff_id(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    for name in ["a", "b"] {
        let id = create(&s, name);
        change(&s, &id, |root| {
            std::fs::write(root.join("etc/same"), b"same\n").unwrap();
            // Same content and times: the diffID depends only on the change.
            let f = std::fs::File::options()
                .write(true)
                .open(root.join("etc/same"))
                .unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
                .unwrap();
            rustix::fs::utimensat(
                rustix::fs::CWD,
                root.join("etc"),
                &rustix::fs::Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: 5,
                        tv_nsec: 0,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: 5,
                        tv_nsec: 0,
                    },
                },
                rustix::fs::AtFlags::empty(),
            )
            .unwrap();
        });
        s.ok(&["commit", name, &format!("same:{name}")]);
    }
    let (a, b) = (inspect(&s, "same:a"), inspect(&s, "same:b"));
    assert_eq!(layers_of(&a).last(), layers_of(&b).last());
    assert_refs_consistent(&s);
}

fn deletions_survive_commit_and_save_round_trips(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    let id = create(&s, "del");
    change(&s, &id, |root| {
        std::fs::remove_file(root.join("etc/gone")).unwrap();
        // An opaque dir: removed and made again, its old entries must stay hidden.
        std::fs::remove_dir_all(root.join("srv/low")).unwrap();
        std::fs::create_dir(root.join("srv/low")).unwrap();
        std::fs::write(root.join("srv/low/fresh"), b"fresh\n").unwrap();
    });
    s.ok(&["commit", "del", "deleted:v1"]);
    let check = |s: &Store, image: &str, name: &str| {
        let c = s.ok(&["create", "--name", name, image]).trim().to_string();
        change(s, &c, |root| {
            assert!(!root.join("etc/gone").exists(), "whiteout lost");
            assert!(root.join("etc/keep").exists());
            let mut names: Vec<_> = std::fs::read_dir(root.join("srv/low"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, ["fresh"], "opaque dir lost");
        });
    };
    check(&s, "deleted:v1", "viewer");
    // save → load into a fresh store → same image ID and same view.
    let tar = s.input.join("saved.tar");
    s.ok(&["save", "-o", tar.to_str().unwrap(), "deleted:v1"]);
    let t = Store::new(driver).unwrap();
    t.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(
        inspect(&t, "deleted:v1")["Id"],
        inspect(&s, "deleted:v1")["Id"]
    );
    check(&t, "deleted:v1", "viewer2");
}

fn empty_commit_adds_no_layer(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    create(&s, "idle");
    let before = s.info_value("Layers");
    s.ok(&["commit", "-m", "nothing", "idle", "idle:v1"]);
    let (base, img) = (inspect(&s, "busybox"), inspect(&s, "idle:v1"));
    // As Docker 20.10: no layer, an empty_layer history entry of size 0.
    assert_eq!(layers_of(&base), layers_of(&img));
    assert_eq!(s.info_value("Layers"), before);
    let history = s.ok(&["history", "idle:v1"]);
    let top = history.lines().nth(1).unwrap();
    assert!(top.contains(" 0B ") && top.contains("nothing"), "{history}");
}

fn big_file_commit_is_fast(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    let id = create(&s, "big");
    change(&s, &id, |root| {
        let mut f = std::fs::File::create(root.join("big")).unwrap();
        std::io::copy(&mut Noise::new(7, 64 << 20), &mut f).unwrap();
    });
    let start = Instant::now();
    s.ok(&["commit", "big", "big:v1"]);
    eprintln!(
        "{driver}: commit of a 64 MiB new file took {:?}",
        start.elapsed()
    );
    let img = inspect(&s, "big:v1");
    assert!(img["Size"].as_u64().unwrap() > 64 << 20);
}

fn history_tag_inspect_shapes(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    s.ok(&["tag", "busybox", "other:tag"]);
    let a = inspect(&s, "busybox");
    let b = inspect(&s, "other:tag");
    assert_eq!(a["Id"], b["Id"]);
    let mut tags: Vec<_> = a["RepoTags"].as_array().unwrap().to_vec();
    tags.sort_by_key(|t| t.to_string());
    assert_eq!(tags, ["busybox:latest", "other:tag"]);
    for key in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Config",
        "Architecture",
        "Os",
        "Size",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    assert_eq!(a["GraphDriver"]["Name"], driver);
    if driver == "overlay2" {
        for key in ["MergedDir", "UpperDir", "WorkDir"] {
            assert!(a["GraphDriver"]["Data"][key].is_string(), "{a}");
        }
    }
    assert_eq!(a["RootFS"]["Type"], "layers");
    let history = s.ok(&["history", "busybox"]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{history}"
    );
    assert!(
        lines[1].starts_with(&a["Id"].as_str().unwrap()[7..19]),
        "{history}"
    );
    let q = s.ok(&["history", "-q", "--no-trunc", "busybox"]);
    assert_eq!(q.trim(), a["Id"].as_str().unwrap());
    let err = s.fail(&["image", "inspect", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    // rmi names the container that uses the image.
    let id = create(&s, "user");
    s.ok(&["rmi", "other:tag"]);
    let err = s.fail(&["rmi", "busybox"]);
    assert!(err.contains(&id[..12]), "{err}");
}

fn prune_removes_exactly_the_unused(driver: &'static str) {
    let Some(s) = setup(driver) else { return };
    let stopped = create(&s, "stopped");
    change(&s, &stopped, |root| {
        std::fs::write(root.join("x"), b"x").unwrap()
    });
    let kept_image = s.ok(&["commit", "stopped", "kept:v1"]).trim().to_string();
    let dangling = s
        .ok(&["commit", "-m", "dangling", "-c", "ENV D=1", "stopped"])
        .trim()
        .to_string();
    // Without -f and without a terminal, nothing happens.
    let err = s.fail(&["prune"]);
    assert!(err.contains("-f"), "{err}");
    assert!(s.ok(&["ps", "-aq"]).contains(&stopped[..12]));
    let out = s.ok(&["prune", "-f"]);
    assert!(out.contains(&stopped), "{out}");
    assert!(out.contains(&dangling), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(s.ok(&["ps", "-aq"]).trim().is_empty());
    let ids = s.image_ids();
    assert!(
        ids.iter()
            .any(|i| kept_image.contains(i.as_str()) || i.contains(&kept_image[7..19])),
        "{ids:?}"
    );
    assert!(
        !ids.iter()
            .any(|i| dangling.contains(i.as_str()) || i.contains(&dangling[7..19])),
        "{ids:?}"
    );
    // busybox and kept:v1 hold their layers; the init layer went with the container.
    let t = s.ok(&["image", "inspect", "kept:v1"]);
    assert!(t.contains("kept:v1"));
    assert_refs_consistent(&s);
    let second = s.ok(&["prune", "-f"]);
    assert!(
        !second.contains("Deleted"),
        "a second prune finds nothing: {second}"
    );
    s.ok(&["rmi", "kept:v1", "busybox"]);
    s.ok(&["prune", "-f"]);
    assert_eq!(s.info_value("Layers"), "0");
    assert_refs_consistent(&s);
}
