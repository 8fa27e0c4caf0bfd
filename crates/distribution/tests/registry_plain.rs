//! Push and pull against a real `docker-registry` over plain HTTP (localhost is insecure by
//! default, as in dockerd): round trips, resumes, platforms, and each kind of bad input.

mod common;

use std::io::Read;

use common::{test_image, Registry, OCI_INDEX};
use strata_distribution::{
    Client, CredentialSource, Error, Options, Platform, Reference, Resume, TransportConfig, Upload,
    Verifier,
};

fn read_all(mut reader: impl Read) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| Error::from_io(e, "reading a blob"))?;
    Ok(out)
}

#[test]
fn push_then_pull_by_tag_and_digest() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let image = test_image("amd64", b"hello from strata\n", "one");
    let reference = registry.reference("test/app:v1");
    assert_eq!(
        client.blob_exists(&reference, &image.layer_digest).unwrap(),
        None
    );
    assert_eq!(image.push(&client, &reference), image.manifest_digest);
    assert_eq!(
        client.blob_exists(&reference, &image.layer_digest).unwrap(),
        Some(image.layer.len() as u64)
    );

    let resolved = client.resolve(&reference, None).unwrap();
    assert_eq!(resolved.digest, image.manifest_digest);
    assert!(resolved.index.is_none());
    assert_eq!(resolved.manifest.bytes, image.manifest);
    assert_eq!(resolved.image.layers[0].digest, image.layer_digest);
    let layer = &resolved.image.layers[0];
    let blob = client
        .fetch_blob(&reference, &layer.digest, Some(layer.size), None)
        .unwrap();
    assert!(!blob.resumed());
    assert_eq!(read_all(blob).unwrap(), image.layer);
    let config = client
        .fetch_blob_bytes(
            &reference,
            &resolved.image.config.digest,
            Some(resolved.image.config.size),
            1 << 20,
        )
        .unwrap();
    assert_eq!(config, image.config);

    let pinned = reference.with_digest(&image.manifest_digest);
    assert_eq!(
        client.resolve(&pinned, None).unwrap().manifest.bytes,
        image.manifest
    );

    // Within one registry a blob is mounted, not uploaded again.
    let other = registry.reference("test/other:v1");
    assert!(client
        .mount_blob(&other, &image.layer_digest, "test/app")
        .unwrap());
    assert!(client
        .blob_exists(&other, &image.layer_digest)
        .unwrap()
        .is_some());
    let unknown = common::test_image("amd64", b"never pushed", "x");
    assert!(!client
        .mount_blob(&other, &unknown.layer_digest, "test/app")
        .unwrap());
}

#[test]
fn one_client_serves_many_threads() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let images: Vec<_> = (0..4u8)
        .map(|i| test_image("amd64", &vec![i; 100_000], &format!("t{i}")))
        .collect();
    let reference = registry.reference("test/threads:v1");
    std::thread::scope(|scope| {
        for image in &images {
            let (client, reference) = (
                client.clone(),
                reference.with_digest(&image.manifest_digest),
            );
            scope.spawn(move || {
                image.push(&client, &reference);
                let size = Some(image.layer.len() as u64);
                let blob = client
                    .fetch_blob(&reference, &image.layer_digest, size, None)
                    .unwrap();
                assert_eq!(read_all(blob).unwrap(), image.layer);
            });
        }
    });
}

#[test]
fn a_layer_compressed_while_it_uploads() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let reference = registry.reference("test/streamed:v1");
    let tar: Vec<u8> = (0..300_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut gzip = flate2::read::GzEncoder::new(tar.as_slice(), flate2::Compression::fast());
    let (digest, size) = client.push_blob_streamed(&reference, &mut gzip).unwrap();
    let mut again = Vec::new();
    flate2::read::GzEncoder::new(tar.as_slice(), flate2::Compression::fast())
        .read_to_end(&mut again)
        .unwrap();
    assert_eq!(
        (digest.clone(), size),
        (
            strata_distribution::sha256_digest(&again),
            again.len() as u64
        )
    );
    assert_eq!(client.blob_exists(&reference, &digest).unwrap(), Some(size));
    let blob = client
        .fetch_blob(&reference, &digest, Some(size), None)
        .unwrap();
    assert_eq!(read_all(blob).unwrap(), again);
}

#[test]
fn docker_hub_pulls_go_to_the_mirrors_first() {
    let (Some(empty), Some(mirror)) = (Registry::plain(), Registry::plain()) else {
        return;
    };
    let image = test_image("amd64", b"mirrored", "mirror");
    let pusher = mirror.client(CredentialSource::Anonymous);
    image.push(&pusher, &mirror.reference("library/busybox:latest"));
    let mirrors = vec![
        format!("http://{}", empty.addr),
        format!("http://{}/", mirror.addr),
    ];
    let transport = TransportConfig {
        registry_mirrors: mirrors,
        ..Default::default()
    };
    let client = Client::new(Options {
        transport,
        credentials: CredentialSource::Anonymous,
    });
    let busybox: Reference = "busybox".parse().unwrap();
    let resolved = client.resolve(&busybox, None).unwrap();
    assert_eq!(resolved.digest, image.manifest_digest);
    assert_eq!(resolved.source.registry(), mirror.addr);
    assert_eq!(resolved.source.repository(), "library/busybox");
    let layer = &resolved.image.layers[0];
    let blob = client
        .fetch_blob(&resolved.source, &layer.digest, Some(layer.size), None)
        .unwrap();
    assert_eq!(read_all(blob).unwrap(), image.layer);

    let transport = TransportConfig {
        registry_mirrors: vec!["ftp://x".into()],
        ..Default::default()
    };
    let client = Client::new(Options {
        transport,
        credentials: CredentialSource::Anonymous,
    });
    let err = client.resolve(&busybox, None).unwrap_err();
    assert!(matches!(err, Error::InvalidMirror { .. }), "{err}");
}

#[test]
fn resumes_with_a_range_request() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let content: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let image = test_image("amd64", &content, "big");
    let reference = registry.reference("test/resume:v1");
    image.push(&client, &reference);
    let half = image.layer.len() / 2;
    let mut verifier = Verifier::new(&image.layer_digest).unwrap();
    verifier.update(&image.layer[..half]);
    let resume = Resume {
        offset: half as u64,
        verifier,
    };
    let blob = client
        .fetch_blob(
            &reference,
            &image.layer_digest,
            Some(image.layer.len() as u64),
            Some(resume),
        )
        .unwrap();
    assert!(blob.resumed(), "the registry honours Range");
    assert_eq!(blob.start(), half as u64);
    assert_eq!(read_all(blob).unwrap(), image.layer[half..]);

    // A wrong first half is caught at the end, by the digest.
    let mut verifier = Verifier::new(&image.layer_digest).unwrap();
    verifier.update(&vec![0u8; half]);
    let resume = Resume {
        offset: half as u64,
        verifier,
    };
    let blob = client
        .fetch_blob(&reference, &image.layer_digest, None, Some(resume))
        .unwrap();
    assert!(matches!(read_all(blob), Err(Error::DigestMismatch { .. })));
}

#[test]
fn index_pulls_the_right_platform() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let reference = registry.reference("test/multi:v1");
    let host = Platform::host();
    let other_arch = if host.architecture == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let native = test_image(&host.architecture, b"native", "native");
    let foreign = test_image(other_arch, b"foreign", "foreign");
    for image in [&native, &foreign] {
        image.push(&client, &reference.with_digest(&image.manifest_digest));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [foreign.descriptor(other_arch), native.descriptor(&host.architecture)],
    });
    let index = serde_json::to_vec(&index).unwrap();
    let index_digest = client.push_manifest(&reference, OCI_INDEX, &index).unwrap();

    let resolved = client.resolve(&reference, None).unwrap();
    assert_eq!(resolved.digest, index_digest);
    assert_eq!(resolved.index.as_ref().unwrap().bytes, index);
    assert_eq!(resolved.manifest.digest, native.manifest_digest);
    let wanted = Platform::parse(&format!("linux/{other_arch}")).unwrap();
    assert_eq!(
        client
            .resolve(&reference, Some(&wanted))
            .unwrap()
            .manifest
            .digest,
        foreign.manifest_digest
    );

    let err = client
        .resolve(&reference, Some(&Platform::parse("linux/s390x").unwrap()))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("no matching manifest for linux/s390x")
            && message.contains(&registry.addr),
        "{message}"
    );
}

#[test]
fn bad_blobs_are_clear_errors() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let content: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_be_bytes()).collect();
    let image = test_image("amd64", &content, "bad");
    let reference = registry.reference("test/bad:v1");
    image.push(&client, &reference);
    let size = Some(image.layer.len() as u64);

    // Same length, one byte changed: the digest catches it at the end of the stream.
    let path = registry.blob_path(&image.layer_digest);
    let mut tampered = image.layer.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    std::fs::write(&path, &tampered).unwrap();
    let err = read_all(
        client
            .fetch_blob(&reference, &image.layer_digest, size, None)
            .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&image.layer_digest) && err.to_string().contains(&registry.addr),
        "{err}"
    );

    // Truncated on the registry's disk.
    std::fs::write(&path, &image.layer[..mid]).unwrap();
    let err = read_all(
        client
            .fetch_blob(&reference, &image.layer_digest, size, None)
            .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");

    // Missing: a 404 that never reads as an auth problem.
    let missing = test_image("amd64", b"missing", "m");
    let err = client
        .fetch_blob(&reference, &missing.layer_digest, None, None)
        .err()
        .unwrap();
    assert!(err.is_not_found() && !err.is_auth(), "{err}");

    // A manifest naming blobs the registry lacks is refused at push.
    let err = client
        .push_manifest(
            &registry.reference("test/bad:missing"),
            common::DOCKER_MANIFEST,
            &missing.manifest,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Registry { status: 400, .. })
            && err.to_string().contains("MANIFEST_BLOB_UNKNOWN"),
        "{err}"
    );

    // An upload whose bytes do not hash to the digest given.
    let err = client
        .push_blob(
            &reference,
            &missing.layer_digest,
            image.config.len() as u64,
            &mut image.config.as_slice(),
            Upload::Monolithic,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Registry { status: 400, .. })
            && err.to_string().contains("DIGEST_INVALID"),
        "{err}"
    );
    // A reader shorter than the size promised.
    let err = client
        .push_blob(
            &reference,
            &missing.layer_digest,
            1000,
            &mut &b"short"[..],
            Upload::Chunked(100),
        )
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
}

#[test]
fn missing_manifests_are_not_found() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let image = test_image("amd64", b"m", "m");
    let reference = registry.reference("test/manifest:v1");
    image.push(&client, &reference);
    let err = client
        .fetch_manifest(&registry.reference("test/manifest:nope"))
        .unwrap_err();
    assert!(err.is_not_found() && !err.is_auth(), "{err}");
    let err = client
        .fetch_manifest(&registry.reference("test/never-pushed:v1"))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let other = test_image("amd64", b"other", "o");
    let err = client
        .fetch_manifest(&reference.with_digest(&other.manifest_digest))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

/// Loopback throughput of one blob stream, hashed (`--ignored`; figures go to bench/).
#[test]
#[ignore]
fn throughput() {
    let Some(registry) = Registry::plain() else {
        return;
    };
    let client = registry.client(CredentialSource::Anonymous);
    let reference = registry.reference("test/big:v1");
    let mut state = 0x9e3779b97f4a7c15u64;
    let blob: Vec<u8> = (0..(256usize << 20) / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let digest = strata_distribution::sha256_digest(&blob);
    let started = std::time::Instant::now();
    client
        .push_blob(
            &reference,
            &digest,
            blob.len() as u64,
            &mut blob.as_slice(),
            Upload::Monolithic,
        )
        .unwrap();
    let push = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let mut reader = client
        .fetch_blob(&reference, &digest, Some(blob.len() as u64), None)
        .unwrap();
    let mut buf = vec![0u8; 256 << 10];
    while reader.read(&mut buf).unwrap() > 0 {}
    let pull = started.elapsed().as_secs_f64();
    let mb = blob.len() as f64 / 1e6;
    eprintln!(
        "push {:.0} MB/s, pull+sha256 {:.0} MB/s",
        mb / push,
        mb / pull
    );
    let url = format!("http://{}/v2/test/big/blobs/{digest}", registry.addr);
    let started = std::time::Instant::now();
    let curl = std::process::Command::new("curl")
        .args(["-sfo", "/dev/null", &url])
        .status();
    if curl.is_ok_and(|s| s.success()) {
        let secs = started.elapsed().as_secs_f64();
        eprintln!("curl, for the registry's own pace: {:.0} MB/s", mb / secs);
    }
}
