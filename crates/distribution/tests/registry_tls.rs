//! A real `docker-registry` over TLS with a test CA, client certificates and htpasswd basic
//! auth: certs.d, credentials (fixed and from a docker config file), and errors that are
//! auth errors only when the registry said 401.

mod common;

use std::collections::HashMap;
use std::io::Read;

use base64::Engine as _;
use common::{basic, test_image, Registry, PASSWORD, USER};
use strata_distribution::{Client, CredentialSource, Error, Options, TransportConfig};

fn fixed(registry: &Registry, user: &str, password: &str) -> CredentialSource {
    CredentialSource::Fixed(HashMap::from([(
        registry.addr.clone(),
        basic(user, password),
    )]))
}

#[test]
fn push_and_pull_with_tls_client_certs_and_basic_auth() {
    let Some(registry) = Registry::tls() else {
        return;
    };
    let client = registry.client(fixed(&registry, USER, PASSWORD));
    let image = test_image("amd64", b"over tls\n", "tls");
    let reference = registry.reference("secure/app:1");
    assert_eq!(image.push(&client, &reference), image.manifest_digest);
    let resolved = client.resolve(&reference, None).unwrap();
    let layer = &resolved.image.layers[0];
    let mut bytes = Vec::new();
    client
        .fetch_blob(&reference, &layer.digest, Some(layer.size), None)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes, image.layer);

    // The same credentials from a docker CLI config file.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = registry.dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let from_file = registry.client(CredentialSource::DockerConfig(Some(config)));
    assert_eq!(
        from_file.resolve(&reference, None).unwrap().digest,
        image.manifest_digest
    );

    // With good credentials a missing blob is a 404, not an auth problem.
    let missing = test_image("amd64", b"missing", "m");
    let err = client
        .fetch_blob(&reference, &missing.layer_digest, None, None)
        .err()
        .unwrap();
    assert!(err.is_not_found() && !err.is_auth(), "{err}");
}

#[test]
fn wrong_or_no_credentials_are_auth_errors() {
    let Some(registry) = Registry::tls() else {
        return;
    };
    let reference = registry.reference("secure/app:1");
    for credentials in [
        fixed(&registry, USER, "wrong"),
        fixed(&registry, "mallory", PASSWORD),
        CredentialSource::Anonymous,
    ] {
        let client = registry.client(credentials);
        let err = client.resolve(&reference, None).unwrap_err();
        assert!(err.is_auth(), "{err}");
        assert!(
            matches!(err, Error::Unauthorized { status: 401, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&registry.addr), "{err}");
        let image = test_image("amd64", b"x", "x");
        let err = client
            .blob_exists(&reference, &image.layer_digest)
            .unwrap_err();
        assert!(err.is_auth(), "{err}");
    }
}

#[test]
fn certificates_that_do_not_verify_are_tls_errors() {
    let Some(registry) = Registry::tls() else {
        return;
    };
    let reference = registry.reference("secure/app:1");
    let credentials = fixed(&registry, USER, PASSWORD);
    // No CA for this registry and not insecure: the server certificate does not verify.
    let transport = TransportConfig {
        insecure_registries: vec![],
        certs_dir: registry.certs_dir(true),
        ..Default::default()
    };
    let client = Client::new(Options {
        transport,
        credentials: credentials.clone(),
    });
    let err = client.resolve(&reference, None).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }) && !err.is_auth(), "{err}");
    assert!(err.to_string().contains(&registry.addr), "{err}");

    // Without a client certificate the registry hangs up in the handshake.
    let empty = registry.dir.path().join("empty-certs.d");
    let transport = TransportConfig {
        insecure_registries: vec![registry.addr.clone()],
        certs_dir: empty,
        ..Default::default()
    };
    let client = Client::new(Options {
        transport,
        credentials: credentials.clone(),
    });
    let err = client.resolve(&reference, None).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }) && !err.is_auth(), "{err}");

    // Listed as insecure: verification is off, the client certificate still goes.
    let image = test_image("amd64", b"insecure", "i");
    let transport = TransportConfig {
        insecure_registries: vec![registry.addr.clone()],
        certs_dir: registry.certs_dir(true),
        ..Default::default()
    };
    let client = Client::new(Options {
        transport,
        credentials,
    });
    assert_eq!(image.push(&client, &reference), image.manifest_digest);
}
