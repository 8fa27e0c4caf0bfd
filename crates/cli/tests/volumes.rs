//! `strata volume` and the volumes of containers, with real containers through runc on
//! overlay2: named volumes keep their data across containers, anonymous ones (`-v /path`,
//! an image's VOLUME) are removed by `rm -v` and `--rm` while named ones stay, and a volume
//! a container uses cannot be removed. They need root, runc and a static busybox.

mod common;

use common::*;

fn setup() -> Option<Store> {
    if !can_run_containers() {
        return None;
    }
    let s = Store::new("overlay2")?;
    let tar = s.input_file("bb.tar", &busybox_tar());
    s.ok(&["import", "-c", "VOLUME /data", &tar, "bb"]);
    Some(s)
}

/// /bin/busybox with applet links and /data/seed (the image's VOLUME).
fn busybox_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        if let Some(target) = link {
            h.set_link_name(target).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    for d in ["bin", "etc", "data", "tmp"] {
        add(d, tar::EntryType::Directory, 0o755, &[], None);
    }
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &std::fs::read(BUSYBOX).unwrap(),
        None,
    );
    for applet in ["sh", "echo", "cat", "ls", "sleep", "true"] {
        let path = format!("bin/{applet}");
        add(&path, tar::EntryType::Symlink, 0o777, &[], Some("busybox"));
    }
    add(
        "data/seed",
        tar::EntryType::Regular,
        0o644,
        b"from the image\n",
        None,
    );
    b.into_inner().unwrap()
}

fn volume_names(s: &Store) -> Vec<String> {
    lines(&s.ok(&["volume", "ls", "-q"]))
}

#[test]
fn named_volumes_outlive_containers_and_are_guarded() {
    let Some(s) = setup() else { return };
    assert_eq!(
        s.ok(&["volume", "create", "--label", "team=db", "store"])
            .trim(),
        "store"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["volume", "inspect", "store"])).unwrap();
    let v = &inspect[0];
    assert_eq!(v["Name"], "store");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "db");
    let mountpoint = s.root.join("volumes/store/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");

    // A new (empty) volume is filled from the image at first use, then written to.
    let out = s.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "store:/data",
        "bb",
        "sh",
        "-c",
        "cat /data/seed; echo kept > /data/new",
    ]);
    assert_eq!(out, "from the image\n");
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("new")).unwrap(),
        "kept\n"
    );
    // In use, even by a stopped container: refused, naming the container.
    let err = s.fail(&["volume", "rm", "store"]);
    assert_mentions(&err, &["store", "in use", "writer"]);
    s.ok(&["rm", "-v", "writer"]);
    assert!(
        volume_names(&s).contains(&"store".to_string()),
        "rm -v keeps named volumes"
    );
    let out = s.ok(&["run", "--rm", "-v", "store:/srv", "bb", "cat", "/srv/new"]);
    assert_eq!(out, "kept\n", "the data survives its container");

    // Prune without -a keeps named volumes; with -a removes the unused ones.
    s.ok(&["volume", "prune", "-f"]);
    assert_eq!(volume_names(&s), ["store"]);
    s.ok(&["volume", "prune", "-f", "-a"]);
    assert!(volume_names(&s).is_empty());
    assert!(!s.root.join("volumes/store").exists());
    let err = s.fail(&["volume", "inspect", "store"]);
    assert_mentions(&err, &["no such volume", "store"]);
    s.fail(&["volume", "rm", "store"]);
    s.ok(&["volume", "rm", "-f", "store"]);
    let err = s.fail(&["volume", "create", "a/b"]);
    assert_mentions(&err, &["a/b"]);
}

#[test]
fn anonymous_volumes_go_with_rm_v() {
    let Some(s) = setup() else { return };
    s.ok(&["volume", "create", "named"]);
    // The image's VOLUME /data and -v /cache are anonymous; named:/n is not.
    let id = s
        .ok(&[
            "create",
            "-v",
            "/cache",
            "-v",
            "named:/n",
            "bb",
            "sh",
            "-c",
            "cat /data/seed > /cache/copy",
        ])
        .trim()
        .to_string();
    let names = volume_names(&s);
    assert_eq!(names.len(), 3, "{names:?}");
    let anonymous: Vec<&String> = names.iter().filter(|n| *n != "named").collect();
    for name in &anonymous {
        assert_eq!(name.len(), 64, "{name}");
    }
    s.ok(&["start", "-a", &id]);
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", &id])).unwrap();
    let binds = inspect[0]["HostConfig"]["Binds"].to_string();
    assert!(
        binds.contains(":/cache") && binds.contains(":/data"),
        "{binds}"
    );
    // Docker's `Mounts`: one entry per volume, its data dir as the source.
    let mounts = inspect[0]["Mounts"].as_array().expect("Mounts").clone();
    let mut destinations: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    destinations.sort();
    assert_eq!(destinations, ["/cache", "/data", "/n"], "{mounts:?}");
    for m in &mounts {
        assert_eq!(m["Type"], "volume", "{m}");
        let source = m["Source"].as_str().unwrap();
        assert!(
            source.ends_with(&format!("volumes/{}/_data", m["Name"].as_str().unwrap()))
                && std::path::Path::new(source).is_dir(),
            "{m}"
        );
    }
    let copied = anonymous
        .iter()
        .map(|n| s.root.join("volumes").join(n).join("_data/copy"))
        .find(|p| p.exists())
        .expect("the anonymous /cache volume holds the copy");
    assert_eq!(std::fs::read_to_string(copied).unwrap(), "from the image\n");

    s.ok(&["rm", "-v", &id]);
    assert_eq!(
        volume_names(&s),
        ["named"],
        "rm -v removed only the anonymous ones"
    );

    // Without -v they stay (and prune takes them); --rm removes them, as in Docker.
    let id = s
        .ok(&["create", "-v", "/cache", "bb", "true"])
        .trim()
        .to_string();
    s.ok(&["rm", &id]);
    assert_eq!(volume_names(&s).len(), 3);
    s.ok(&["volume", "prune", "-f"]);
    assert_eq!(volume_names(&s), ["named"]);
    s.ok(&["run", "--rm", "-v", "/cache", "bb", "true"]);
    assert_eq!(
        volume_names(&s),
        ["named"],
        "--rm removed its anonymous volumes"
    );
}
