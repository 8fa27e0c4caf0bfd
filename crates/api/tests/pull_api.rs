//! Pulls through `strata daemon` from a real registry (Debian's `docker-registry` on
//! 127.0.0.1, an image pushed by skopeo): `POST /images/create?fromImage=` streams Docker's
//! jsonmessage progress, and the docker CLI's `docker pull` works against it.

mod common;

use common::docker::*;
use common::*;
use strata_testkit::registry::{docker_archive, have_skopeo, Registry};

/// A registry holding `bb:latest` (two layers); the config digest.
fn registry_with_image(d: &Daemon) -> Option<(Registry, String)> {
    let registry = Registry::plain()?;
    if !have_skopeo() {
        return None;
    }
    let layers = vec![
        busybox_tar(),
        strata_testkit::file_tar("hello.txt", b"pulled\n"),
    ];
    let (archive, config) = docker_archive("bb:latest", &layers, &["sh"]);
    let path = d.dir.path().join("bb.tar");
    std::fs::write(&path, archive).unwrap();
    registry.push_archive(&path, "bb:latest");
    Some((registry, config))
}

#[test]
fn images_create_streams_docker_progress() {
    let Some(d) = Daemon::start() else { return };
    let Some((registry, config)) = registry_with_image(&d) else {
        return;
    };
    let from = format!("{}/bb", registry.addr);
    let res = d.raw(
        "POST",
        &format!("/images/create?fromImage={from}&tag=latest"),
        b"",
    );
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let lines: Vec<serde_json::Value> = res
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses[0], "latest: Pulling from bb");
    let fs_layer = lines
        .iter()
        .find(|l| l["status"] == "Pulling fs layer")
        .expect("a Pulling fs layer line");
    assert_eq!(fs_layer["id"].as_str().unwrap().len(), 12);
    assert_eq!(fs_layer["progressDetail"], serde_json::json!({}));
    let downloading = lines
        .iter()
        .find(|l| l["status"] == "Downloading")
        .expect("a Downloading line");
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap() > 0);
    assert!(downloading["progress"].as_str().unwrap().starts_with('['));
    assert!(statuses.contains(&"Pull complete"), "{statuses:?}");
    assert!(statuses.iter().any(|s| s.starts_with("Digest: sha256:")));
    assert_eq!(
        *statuses.last().unwrap(),
        format!("Status: Downloaded newer image for {from}:latest")
    );
    let inspect = d.raw("GET", &format!("/images/{from}:latest/json"), b"");
    assert_eq!(inspect.json()["Id"], config.as_str());

    let missing = d.raw(
        "POST",
        &format!("/images/create?fromImage={from}&tag=nope"),
        b"",
    );
    assert_eq!(missing.status, 404, "{}", missing.message());
}

#[test]
fn docker_pull_through_the_daemon() {
    if !docker_installed() {
        return;
    }
    let Some(d) = Daemon::start() else { return };
    let Some((registry, config)) = registry_with_image(&d) else {
        return;
    };
    let reference = format!("{}/bb:latest", registry.addr);
    let out = ok(&d, &["pull", &reference]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{out}"
    );
    let id = ok(&d, &["image", "inspect", "-f", "{{.Id}}", &reference]);
    assert_eq!(id.trim(), config);
    let again = ok(&d, &["pull", &reference]);
    assert!(again.contains("Image is up to date"), "{again}");
    let err = fail(&d, &["pull", &format!("{}/bb:nope", registry.addr)]);
    assert!(err.contains("not found"), "{err}");
    if can_run_containers() {
        // An image not yet pulled: the docker CLI pulls it on create's 404, then runs it.
        ok(&d, &["rmi", &reference]);
        let out = ok(&d, &["run", "--rm", &reference, "cat", "/hello.txt"]);
        assert!(out.ends_with("pulled\n"), "{out}");
    }
}
