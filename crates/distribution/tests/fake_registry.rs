//! What a real registry will not do on request, from a scripted server: redirect loops, a
//! bearer-token server (scopes, caching, expiry), manifests that lie about their digest or
//! are too large, schema 1, and statuses that are or are not auth errors.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use common::fake::{serve, Reply, Request};
use common::DOCKER_MANIFEST;
use strata_distribution::{
    sha256_digest, Client, CredentialSource, Credentials, Error, Options, Reference,
};

const MANIFEST: &str = r#"{"schemaVersion":2,"config":{"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;

fn client(credentials: CredentialSource) -> Client {
    Client::new(Options {
        credentials,
        ..Default::default()
    })
}

fn reference(addr: &str, name: &str) -> Reference {
    format!("{addr}/{name}").parse().unwrap()
}

fn manifest_reply(body: &str, announced: &str, media_type: &str) -> Reply {
    Reply::new(200)
        .header("Content-Type", media_type)
        .header("Docker-Content-Digest", announced)
        .body(body)
}

#[test]
fn redirects_are_followed_without_credentials_and_loops_end() {
    let addr = serve(|request: &Request| {
        match (request.target.as_str(), request.header("authorization")) {
            ("/v2/", None) => Reply::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#),
            ("/v2/", Some(_)) => Reply::new(200),
            ("/v2/loop/app/manifests/v1", _) => {
                Reply::new(302).header("Location", "/v2/loop/app/manifests/v1")
            }
            ("/v2/ok/app/manifests/v1", Some(_)) => {
                Reply::new(307).header("Location", "/storage/manifest")
            }
            // Storage behind a redirect (S3, a CDN) must not see the registry's credentials.
            ("/storage/manifest", None) => manifest_reply(
                MANIFEST,
                &sha256_digest(MANIFEST.as_bytes()),
                DOCKER_MANIFEST,
            ),
            ("/storage/manifest", Some(_)) => Reply::new(400).body("credentials leaked"),
            _ => Reply::new(401),
        }
    });
    let creds = Credentials::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let client = client(CredentialSource::Fixed([(addr.clone(), creds)].into()));
    let manifest = client
        .fetch_manifest(&reference(&addr, "ok/app:v1"))
        .unwrap();
    assert_eq!(manifest.bytes, MANIFEST.as_bytes());
    let err = client
        .fetch_manifest(&reference(&addr, "loop/app:v1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyRedirects { max: 10, .. }) && !err.is_auth(),
        "{err}"
    );
    assert!(err.to_string().contains("loop/app"), "{err}");
}

#[test]
fn bearer_tokens_by_scope_cached_and_renewed() {
    let own_addr: Arc<OnceLock<String>> = Arc::default();
    let epoch = Arc::new(AtomicUsize::new(1));
    let token_requests = Arc::new(AtomicUsize::new(0));
    let (a, e, t) = (own_addr.clone(), epoch.clone(), token_requests.clone());
    let addr = serve(move |request: &Request| {
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            a.get().unwrap()
        );
        let good_basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pw")
        );
        let token = format!("T{}", e.load(Ordering::SeqCst));
        if request.target == "/v2/" {
            return Reply::new(401).header("WWW-Authenticate", &challenge);
        }
        if let Some(query) = request.target.strip_prefix("/token?") {
            t.fetch_add(1, Ordering::SeqCst);
            if request.header("authorization") != Some(good_basic.as_str()) {
                return Reply::new(401)
                    .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#);
            }
            assert!(
                query.contains("service=fake")
                    && query.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                "{query}"
            );
            return Reply::new(200).body(format!(r#"{{"token":"{token}","expires_in":300}}"#));
        }
        if request.header("authorization") != Some(format!("Bearer {token}").as_str()) {
            return Reply::new(401).header(
                "WWW-Authenticate",
                &format!(r#"{challenge},error="invalid_token""#),
            );
        }
        manifest_reply(
            MANIFEST,
            &sha256_digest(MANIFEST.as_bytes()),
            DOCKER_MANIFEST,
        )
    });
    own_addr.set(addr.clone()).unwrap();
    let with = |password: &str| {
        let creds = Credentials::Basic {
            username: "alice".into(),
            password: password.into(),
        };
        client(CredentialSource::Fixed([(addr.clone(), creds)].into()))
    };
    let good = with("pw");
    let app = reference(&addr, "team/app:v1");
    good.fetch_manifest(&app).unwrap();
    good.fetch_manifest(&app).unwrap();
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "the token is cached per scope"
    );
    // The server expires the token: one 401, one fresh token, then the answer.
    epoch.store(2, Ordering::SeqCst);
    good.fetch_manifest(&app).unwrap();
    assert_eq!(token_requests.load(Ordering::SeqCst), 2);
    // Threads that all see the token rejected renew it once between them.
    epoch.store(3, Ordering::SeqCst);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| good.fetch_manifest(&app).unwrap());
        }
    });
    assert_eq!(token_requests.load(Ordering::SeqCst), 3);

    let err = with("wrong").fetch_manifest(&app).unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(
        err.to_string().contains("token from http://") && err.to_string().contains("bad password"),
        "{err}"
    );
}

#[test]
fn lying_oversized_and_schema1_manifests() {
    let good = sha256_digest(MANIFEST.as_bytes());
    let big = format!(r#"{{"schemaVersion":2,"pad":"{}"}}"#, "x".repeat(4 << 20));
    let schema1 = r#"{"schemaVersion":1,"name":"old/app","tag":"v1","fsLayers":[]}"#;
    let addr = serve(move |request: &Request| match request.target.as_str() {
        "/v2/" => Reply::new(200),
        "/v2/lies/app/manifests/v1" => {
            manifest_reply(&MANIFEST.replace("[]", "[ ]"), &good, DOCKER_MANIFEST)
        }
        "/v2/big/app/manifests/v1" => {
            manifest_reply(&big, &sha256_digest(big.as_bytes()), DOCKER_MANIFEST)
        }
        "/v2/old/app/manifests/v1" => manifest_reply(
            schema1,
            &sha256_digest(schema1.as_bytes()),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        "/v2/broken/app/manifests/v1" => Reply::new(500).body("database on fire"),
        "/v2/denied/app/manifests/v1" => {
            Reply::new(403).body(r#"{"errors":[{"code":"DENIED","message":"no"}]}"#)
        }
        _ => Reply::new(404),
    });
    let client = client(CredentialSource::Anonymous);
    let fetch = |name: &str| client.fetch_manifest(&reference(&addr, name)).unwrap_err();
    let err = fetch("lies/app:v1");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = client
        .fetch_manifest(&reference(
            &addr,
            &format!("lies/app@{}", sha256_digest(MANIFEST.as_bytes())),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = fetch("big/app:v1");
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err}");
    let err = fetch("old/app:v1");
    assert!(
        matches!(err, Error::UnsupportedManifest { .. }) && err.to_string().contains("schema 1"),
        "{err}"
    );
    let err = fetch("broken/app:v1");
    assert!(
        matches!(err, Error::Registry { status: 500, .. }) && !err.is_auth(),
        "{err}"
    );
    assert!(err.to_string().contains("database on fire"), "{err}");
    let err = fetch("denied/app:v1");
    assert!(
        matches!(err, Error::Unauthorized { status: 403, .. }),
        "{err}"
    );
}

#[test]
fn unreachable_registries_are_not_auth_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client(CredentialSource::Anonymous)
        .fetch_manifest(&reference(&format!("127.0.0.1:{port}"), "x:v1"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. }) && !err.is_auth(),
        "{err}"
    );
}

#[test]
fn identity_tokens_are_exchanged_by_post() {
    let own_addr: Arc<OnceLock<String>> = Arc::default();
    let a = own_addr.clone();
    let addr = serve(move |request: &Request| {
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="fake""#,
            a.get().unwrap()
        );
        match (request.method.as_str(), request.target.as_str()) {
            (_, "/v2/") => Reply::new(401).header("WWW-Authenticate", &challenge),
            // The refresh token travels in the form body, never in the URL.
            ("POST", "/token") => Reply::new(200).body(r#"{"access_token":"A","expires_in":60}"#),
            (_, "/token") => Reply::new(405),
            _ if request.header("authorization") == Some("Bearer A") => manifest_reply(
                MANIFEST,
                &sha256_digest(MANIFEST.as_bytes()),
                DOCKER_MANIFEST,
            ),
            _ => Reply::new(401).header("WWW-Authenticate", &challenge),
        }
    });
    own_addr.set(addr.clone()).unwrap();
    let creds = Credentials::IdentityToken("refresh-me".into());
    let client = client(CredentialSource::Fixed([(addr.clone(), creds)].into()));
    client
        .fetch_manifest(&reference(&addr, "team/app:v1"))
        .unwrap();
}

#[test]
fn a_dropped_connection_is_not_a_digest_or_auth_error() {
    let blob = vec![7u8; 10_000];
    let digest = sha256_digest(&blob);
    let path = format!("/v2/drop/app/blobs/{digest}");
    let addr = serve(move |request: &Request| match request.target.as_str() {
        "/v2/" => Reply::new(200),
        p if p == path => Reply::new(200).body(blob.clone()).cut(4000),
        _ => Reply::new(404),
    });
    let client = client(CredentialSource::Anonymous);
    let reference = reference(&addr, "drop/app:v1");
    let mut reader = client
        .fetch_blob(&reference, &digest, Some(10_000), None)
        .unwrap();
    let err = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err();
    let err = Error::from_io(err, "copy");
    assert!(
        matches!(err, Error::Connect { .. }) && !err.is_auth(),
        "{err}"
    );
    assert!(err.to_string().contains("after 4000 bytes"), "{err}");
    assert_eq!(reader.position(), 4000, "where a resume would start");
}
