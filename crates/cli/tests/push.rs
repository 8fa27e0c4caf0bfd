//! `strata push`, `login` and `logout` against a real `docker-registry` on 127.0.0.1: the
//! pushed image reads back with the same ID through skopeo and `strata load`, a second push
//! uploads nothing, and login checks htpasswd credentials over TLS with a test CA.

mod common;
#[path = "../../distribution/tests/common/mod.rs"]
mod registry;

use std::process::{Command, Output};

use common::{busybox_tar, expect_fail, expect_ok, Store};
use registry::{Registry, PASSWORD, USER};

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIP: {tool} is not installed");
    }
    found
}

/// The store's command with its own docker config dir (never the caller's credentials).
fn cmd(store: &Store, config: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = store.cmd(args);
    cmd.env("DOCKER_CONFIG", config)
        .env_remove("STRATA_CERTS_D");
    common::run_with_stdin(cmd, b"")
}

fn image_id(store: &Store, name: &str) -> String {
    let out = store.ok(&["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    v["Id"].as_str().unwrap().to_string()
}

#[test]
fn push_reads_back_with_the_same_id_and_a_second_push_uploads_nothing() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    if !have("skopeo") {
        return;
    }
    let store = Store::create("vfs");
    let config = store.dir.path().join("docker");
    let name = format!("{}/bb:1", registry.addr);
    store.import(&busybox_tar(&["sh", "ls"]), &name);
    let id = image_id(&store, &name);

    let args = ["push", name.as_str()];
    let first = expect_ok(&args, cmd(&store, &config, &args));
    assert!(
        first.contains(&format!(
            "The push refers to repository [{}/bb]",
            registry.addr
        )),
        "{first}"
    );
    assert!(
        first.contains(": Preparing") && first.contains(": Pushed"),
        "{first}"
    );
    assert!(first.contains("1: digest: sha256:"), "{first}");

    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    let manifest: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(manifest["config"]["digest"].as_str().unwrap(), id);

    // Through skopeo into a docker-archive, then back in: the same image.
    let archive = store.dir.path().join("copied.tar");
    let copy = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("docker-archive:{}:copy/bb:1", archive.display()))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{copy:?}");
    let other = Store::create("vfs");
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(image_id(&other, "copy/bb:1"), id);

    let second = expect_ok(&args, cmd(&store, &config, &args));
    assert!(second.contains("Layer already exists"), "{second}");
    assert!(!second.contains(": Pushed"), "{second}");

    // -q: only the reference.
    let args = ["push", "-q", name.as_str()];
    assert_eq!(expect_ok(&args, cmd(&store, &config, &args)).trim(), name);

    // Not tagged with that registry: Docker's message.
    let args = ["push", "127.0.0.1:1/none:1"];
    let err = expect_fail(&args, cmd(&store, &config, &args));
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
}

#[test]
fn login_over_tls_then_push_and_wrong_password_is_an_auth_error() {
    let Some(registry) = Registry::tls() else {
        return;
    };
    let store = Store::create("vfs");
    let config = store.dir.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.json"), r#"{"credsStore":"","other":1}"#).unwrap();
    let certs = registry.certs_dir(false);
    let with_certs = |args: &[&str]| {
        let mut c = store.cmd(args);
        c.env("DOCKER_CONFIG", &config)
            .env("STRATA_CERTS_D", &certs);
        common::run_with_stdin(c, b"")
    };
    let server = registry.addr.as_str();

    let args = ["login", "-u", USER, "-p", "wrong", server];
    let err = expect_fail(&args, with_certs(&args));
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );

    let args = ["login", "-u", USER, "-p", PASSWORD, server];
    assert!(expect_ok(&args, with_certs(&args)).contains("Login Succeeded"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["other"], 1, "other keys are kept: {saved}");
    assert!(saved["auths"][server]["auth"].is_string(), "{saved}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(config.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let name = format!("{server}/secure/bb:1");
    store.import(&busybox_tar(&["sh"]), &name);
    let args = ["push", name.as_str()];
    let out = expect_ok(&args, with_certs(&args));
    assert!(out.contains("1: digest: sha256:"), "{out}");

    let args = ["logout", server];
    assert!(expect_ok(&args, with_certs(&args)).contains("Removing login credentials"));
    // Logged out: the progress so far on stdout, then the auth error.
    let out = with_certs(&["push", name.as_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
}
