//! End-to-end tests of the container records: `create`, `ps`, `inspect`, `diff`, `rm` on a
//! real store, per driver (overlay2 only as root). Nothing runs yet: these check the init
//! layer, the writable layer, `containers/<id>/` and the rows, and that every refusal leaves
//! nothing behind.

#[macro_use]
mod common;

use std::path::Path;

use common::*;

per_driver!(
    create_ps_inspect_rm,
    two_containers_share_one_init_layer,
    name_conflict_is_refused,
    unknown_image_leaves_nothing,
    bad_flags_are_refused_clearly,
    rmi_of_image_used_by_a_container_is_refused,
    recovery_sweeps_orphans_and_marks_dead,
);

fn setup(driver: &'static str) -> Option<(Store, usize)> {
    let s = Store::new(driver)?;
    s.import(&rootfs_tar(), "busybox:latest");
    let layers = layer_count(&s);
    Some((s, layers))
}

fn layer_count(s: &Store) -> usize {
    s.info_value("Layers").parse().unwrap()
}

fn container_dirs(s: &Store) -> Vec<String> {
    list(&s.root.join("containers"))
}

fn create_ps_inspect_rm(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let id = s
        .ok(&[
            "create", "--name", "web", "-e", "A=1", "-m", "64m", "busybox", "sh", "-c", "true",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = s.ok(&["ps", "-a"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(lines[1].starts_with(&id[..12]), "{ps}");
    for want in ["busybox", "\"sh -c true\"", "Created", "web"] {
        assert!(lines[1].contains(want), "{want}: {ps}");
    }
    assert_eq!(
        s.ok(&["ps"]).lines().count(),
        1,
        "ps without -a shows only running ones"
    );
    assert_eq!(lines_of(&s.ok(&["ps", "-aq"])), [id[..12].to_string()]);

    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Path"], "sh");
    assert_eq!(v["Args"], serde_json::json!(["-c", "true"]));
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["HostConfig"]["Memory"], 64 << 20);
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&"A=1".into()));
    // Written at the first start, as Docker does: empty until then.
    for key in ["HostnamePath", "HostsPath", "ResolvConfPath"] {
        assert_eq!(v[key], "", "{key}");
    }
    let data = &v["GraphDriver"]["Data"];
    assert_eq!(v["GraphDriver"]["Name"], driver);
    let dirs: &[&str] = if driver == "overlay2" {
        &["LowerDir", "UpperDir", "MergedDir", "WorkDir"]
    } else {
        &["Dir"]
    };
    for key in dirs {
        for p in data[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {data}"))
            .split(':')
        {
            assert!(Path::new(p).is_dir(), "{key} {p}");
        }
    }
    // By unique prefix too, and a fresh container has no changes: the init layer's files
    // are below its writable layer.
    assert_eq!(s.ok(&["diff", &id[..8]]), "");
    assert_eq!(layer_count(&s), image_layers + 1, "one init layer");

    assert_eq!(lines_of(&s.ok(&["rm", "web"])), ["web"]);
    assert_eq!(
        layer_count(&s),
        image_layers + 1,
        "the init layer is kept for the image's next container"
    );
    assert!(container_dirs(&s).is_empty(), "{:?}", container_dirs(&s));
    assert!(s.layer_names().is_empty());
    assert_eq!(s.ok(&["ps", "-a"]).lines().count(), 1);
    assert!(s.mounts_inside().is_empty());
    let err = s.fail(&["rm", "web"]);
    assert_mentions(&err, &["web"]);
}

fn two_containers_share_one_init_layer(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let a = s.ok(&["create", "busybox"]).trim().to_string();
    let b = s.ok(&["create", "busybox"]).trim().to_string();
    assert_ne!(a, b);
    assert_eq!(
        layer_count(&s),
        image_layers + 1,
        "the init layer is shared"
    );
    s.ok(&["rm", &a]);
    assert_eq!(layer_count(&s), image_layers + 1, "still used by the other");
    s.ok(&["rm", &b[..12]]);
    assert_eq!(
        layer_count(&s),
        image_layers + 1,
        "kept, unused, for the next one"
    );
    assert!(container_dirs(&s).is_empty());
    // Reused, not rebuilt, by the next container; gone with the image.
    let c = s.ok(&["create", "busybox"]).trim().to_string();
    assert_eq!(layer_count(&s), image_layers + 1);
    let err = s.fail(&["rmi", "busybox"]);
    assert_mentions(&err, &[&c[..12]]);
    s.ok(&["rm", &c]);
    s.ok(&["rmi", "busybox"]);
    assert_eq!(layer_count(&s), 0, "rmi took the unused init layer too");
}

fn name_conflict_is_refused(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let id = s
        .ok(&["create", "--name", "x", "busybox"])
        .trim()
        .to_string();
    let err = s.fail(&["create", "--name", "x", "busybox"]);
    assert_mentions(&err, &["\"/x\"", "already in use", &id[..12]]);
    let err = s.fail(&["create", "--name", "bad/name", "busybox"]);
    assert_mentions(&err, &["bad/name"]);
    assert_eq!(container_dirs(&s), std::slice::from_ref(&id));
    assert_eq!(layer_count(&s), image_layers + 1);
    assert_eq!(s.layer_names(), [id]);
}

fn unknown_image_leaves_nothing(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let err = s.fail(&["create", "--name", "c", "nosuchimage:v9"]);
    assert_mentions(&err, &["nosuchimage"]);
    assert_eq!(layer_count(&s), image_layers);
    assert!(container_dirs(&s).is_empty(), "{:?}", container_dirs(&s));
    assert!(s.layer_names().is_empty());
    assert_eq!(s.ok(&["ps", "-a"]).lines().count(), 1);
    assert!(list(&s.root.join("tmp")).is_empty());
}

fn bad_flags_are_refused_clearly(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let cases: &[(&[&str], &[&str])] = &[
        (&["-m", "12x"], &["--memory", "12x"]),
        (&["--cpus", "0"], &["--cpus", "0"]),
        (&["-v", "srv"], &["-v", "srv", "SOURCE:DESTINATION"]),
        (&["-v", "/srv:/a:/b:ro"], &["-v", "SOURCE:DESTINATION"]),
        (&["-v", "/srv:rel"], &["-v", "absolute"]),
        (&["--network", "bridge"], &["network", "bridge"]),
        (&["--tmpfs", "tmp"], &["--tmpfs", "tmp"]),
        (&["--pids-limit", "0"], &["--pids-limit"]),
        (&["-m", "1k"], &["--memory", "6m"]),
    ];
    for (flags, needles) in cases {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.push("busybox");
        let err = s.fail(&args);
        assert_mentions(&err, needles);
    }
    assert_eq!(layer_count(&s), image_layers);
    assert!(container_dirs(&s).is_empty());
}

fn rmi_of_image_used_by_a_container_is_refused(driver: &'static str) {
    let Some((s, _)) = setup(driver) else { return };
    let id = s.ok(&["create", "busybox"]).trim().to_string();
    let err = s.fail(&["rmi", "busybox"]);
    assert_mentions(&err, &["busybox", &id[..12], "container"]);
    s.ok(&["rm", &id]);
    s.ok(&["rmi", "busybox"]);
    s.assert_clean("rm then rmi");
    assert!(container_dirs(&s).is_empty());
}

fn lines_of(text: &str) -> Vec<String> {
    lines(text)
}

/// What a crash leaves: a dir without a row goes at the next open; a container whose dir
/// is gone shows as Dead and `rm` cleans it.
fn recovery_sweeps_orphans_and_marks_dead(driver: &'static str) {
    let Some((s, image_layers)) = setup(driver) else {
        return;
    };
    let orphan = "ab".repeat(32);
    std::fs::create_dir(s.root.join("containers").join(&orphan)).unwrap();
    std::fs::create_dir(s.root.join("containers").join(format!(".tmp-{orphan}"))).unwrap();
    let id = s
        .ok(&["create", "--name", "lost", "busybox"])
        .trim()
        .to_string();
    assert_eq!(
        container_dirs(&s),
        std::slice::from_ref(&id),
        "orphans swept at open"
    );
    std::fs::remove_dir_all(s.root.join("containers").join(&id)).unwrap();
    assert!(s.ok(&["ps", "-a"]).contains("Dead"));
    s.ok(&["rm", "lost"]);
    assert_eq!(layer_count(&s), image_layers + 1, "the init layer is kept");
    assert!(s.layer_names().is_empty());
}
