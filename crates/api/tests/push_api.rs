//! `POST /images/{name}/push` and `POST /auth` through `strata daemon`, against a real
//! `docker-registry` on 127.0.0.1: the docker CLI's `push`, and the jsonmessage stream.

mod common;
#[path = "../../distribution/tests/common/mod.rs"]
mod registry;

use common::docker::*;
use common::*;
use registry::Registry;

#[test]
fn docker_push_through_the_daemon_then_again_uploads_nothing() {
    if !docker_installed() {
        return;
    }
    let Some(registry) = Registry::plain() else {
        return;
    };
    let Some(d) = Daemon::start() else { return };
    let name = format!("{}/bb:1", registry.addr);
    let id = import_busybox(&d, &name);

    let first = ok(&d, &["push", &name]);
    assert!(first.contains("Pushed"), "{first}");
    assert!(first.contains("1: digest: sha256:"), "{first}");
    let second = ok(&d, &["push", &name]);
    assert!(second.contains("Layer already exists"), "{second}");

    // The stream itself, as other clients read it.
    let path = format!("/v1.47/images/{}/bb/push?tag=1", registry.addr);
    let response = raw_request(&d.socket, "POST", &path, &[("X-Registry-Auth", "e30")], b"");
    assert_eq!(response.status, 200);
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["status"],
        format!("The push refers to repository [{}/bb]", registry.addr)
    );
    let aux = &lines.last().unwrap()["aux"];
    assert_eq!(aux["Tag"], "1");
    assert!(aux["Digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(lines
        .iter()
        .any(|l| l["status"] == "Layer already exists" && l["id"].is_string()));

    // The manifest names the image's config: the same ID wherever it is pulled.
    let manifest = registry
        .client(strata_distribution::CredentialSource::Anonymous)
        .resolve(&registry.reference("bb:1"), None)
        .unwrap();
    assert_eq!(manifest.image.config.digest, id);

    // An image not tagged for that registry: the error in the stream.
    let err = fail(&d, &["push", &format!("{}/none:1", registry.addr)]);
    assert!(err.contains("does not exist locally"), "{err}");

    // No auth on this registry: any login succeeds.
    let body = format!(
        r#"{{"username":"u","password":"p","serveraddress":"{}"}}"#,
        registry.addr
    );
    let response = raw_request(
        &d.socket,
        "POST",
        "/v1.47/auth",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.message());
    assert_eq!(response.json()["Status"], "Login Succeeded");
    let out = ok(&d, &["login", "-u", "u", "-p", "p", &registry.addr]);
    assert!(out.contains("Login Succeeded"), "{out}");
}
