//! skopeo against the same real registry: what this crate pushes, skopeo pulls (verifying
//! every digest); what skopeo pushes (an OCI image made by umoci), this crate pulls.

mod common;

use std::process::Command;

use common::{test_image, Registry};
use strata_distribution::CredentialSource;

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        eprintln!("SKIP: {name} is not installed (scripts/setup.sh installs it)");
    }
    found
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?}: {stderr}");
}

#[test]
fn skopeo_pulls_what_we_push_and_we_pull_what_skopeo_pushes() {
    if !tool("skopeo") || !tool("umoci") {
        return;
    }
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let image = test_image("amd64", b"for skopeo\n", "interop");
    image.push(&client, &registry.reference("interop/ours:v1"));
    let work = registry.dir.path();
    let ours = format!("docker://{}/interop/ours:v1", registry.addr);
    let layout = work.join("from-registry");
    let dest = format!("oci:{}:v1", layout.display());
    run("skopeo", &["copy", "--src-tls-verify=false", &ours, &dest]);
    assert!(layout.join("index.json").is_file());

    // An OCI image from umoci, pushed by skopeo, pulled here.
    let made = work.join("umoci-layout");
    let made_ref = format!("{}:v1", made.display());
    run("umoci", &["init", "--layout", &made.display().to_string()]);
    run("umoci", &["new", "--image", &made_ref]);
    let file = work.join("hello.txt");
    std::fs::write(&file, "from umoci\n").unwrap();
    let file = file.display().to_string();
    run(
        "umoci",
        &["insert", "--image", &made_ref, &file, "/hello.txt"],
    );
    let theirs = format!("docker://{}/interop/theirs:v1", registry.addr);
    let src = format!("oci:{made_ref}");
    run(
        "skopeo",
        &["copy", "--dest-tls-verify=false", &src, &theirs],
    );
    let reference = registry.reference("interop/theirs:v1");
    let resolved = client.resolve(&reference, None).unwrap();
    assert_eq!(
        resolved.manifest.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = &resolved.image.config;
    let bytes = client
        .fetch_blob_bytes(&reference, &config.digest, Some(config.size), 1 << 20)
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("rootfs"));
    assert_eq!(resolved.image.layers.len(), 1);
    for layer in &resolved.image.layers {
        let mut blob = client
            .fetch_blob(&reference, &layer.digest, Some(layer.size), None)
            .unwrap();
        std::io::copy(&mut blob, &mut std::io::sink()).unwrap();
    }
}
