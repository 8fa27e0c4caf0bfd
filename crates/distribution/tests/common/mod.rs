//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) started as a
//! child on 127.0.0.1, a free port and a temp storage dir; optionally TLS with a test CA
//! made by `openssl`, client certificates and htpasswd basic auth. Plus tiny images to push.

#![allow(dead_code)]

pub mod fake;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_distribution::{
    sha256_digest, Client, Descriptor, Options, Reference, TransportConfig, Upload,
};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

pub struct Registry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub tls: bool,
}

/// The registry binary, or `None` after printing why the test is skipped.
fn registry_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("docker-registry"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("SKIP: docker-registry is not installed (scripts/setup.sh installs it)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all from `openssl`.
fn make_certs(dir: &Path) {
    let ossl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    ossl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=strata test CA",
            ],
        ]
        .concat(),
    );
    for (name, usage, san) in [
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1\n"),
        ("client", "clientAuth", ""),
    ] {
        ossl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("{san}basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

impl Registry {
    pub fn plain() -> Option<Registry> {
        Registry::start(false)
    }

    /// TLS with the test CA, client certificates required, htpasswd basic auth.
    pub fn tls() -> Option<Registry> {
        Registry::start(true)
    }

    fn start(tls: bool) -> Option<Registry> {
        let binary = registry_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if tls {
            make_certs(dir.path());
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            let d = dir.path().display();
            config.push_str(&format!(
                "  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n    clientcas:\n      - {d}/ca.crt\nauth:\n  htpasswd:\n    realm: test-realm\n    path: {d}/htpasswd\n"
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry {
            child,
            addr,
            dir,
            tls,
        };
        registry.wait_ready();
        Some(registry)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn reference(&self, name: &str) -> Reference {
        format!("{}/{name}", self.addr).parse().unwrap()
    }

    /// A certs.d directory for this registry: the CA unless `without_ca`, the client pair.
    pub fn certs_dir(&self, without_ca: bool) -> PathBuf {
        let root = self.dir.path().join(if without_ca {
            "certs.d-no-ca"
        } else {
            "certs.d"
        });
        let host = root.join(&self.addr);
        std::fs::create_dir_all(&host).unwrap();
        let copy = |from: &str, to: &str| {
            std::fs::copy(self.dir.path().join(from), host.join(to)).unwrap()
        };
        if !without_ca {
            copy("ca.crt", "ca.crt");
        }
        copy("client.crt", "client.cert");
        copy("client.key", "client.key");
        root
    }

    /// Where the registry keeps blob `digest`'s bytes (for tampering with them).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// A client as strata would use it: no insecure registries for TLS set-ups.
    pub fn client(&self, credentials: strata_distribution::CredentialSource) -> Client {
        let transport = if self.tls {
            TransportConfig {
                insecure_registries: vec![],
                certs_dir: self.certs_dir(false),
                ..Default::default()
            }
        } else {
            TransportConfig::default()
        };
        Client::new(Options {
            transport,
            credentials,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn basic(user: &str, password: &str) -> strata_distribution::Credentials {
    strata_distribution::Credentials::Basic {
        username: user.into(),
        password: password.into(),
    }
}

/// A small image: one gzip layer holding `file`, a config naming `arch`.
pub struct TestImage {
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn test_image(arch: &str, content: &[u8], annotation: &str) -> TestImage {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", content).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_digest = sha256_digest(&layer);
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["/hello"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    )
    .into_bytes();
    let config_digest = sha256_digest(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{layer_digest}"}}],"annotations":{{"note":"{annotation}"}}}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    let manifest_digest = sha256_digest(&manifest);
    TestImage {
        layer,
        layer_digest,
        config,
        config_digest,
        manifest,
        manifest_digest,
    }
}

impl TestImage {
    /// Pushes blobs (the layer in one PUT, the config in small PATCH chunks) and the manifest.
    pub fn push(&self, client: &Client, reference: &Reference) -> String {
        for (digest, bytes, mode) in [
            (&self.layer_digest, &self.layer, Upload::Monolithic),
            (&self.config_digest, &self.config, Upload::Chunked(64)),
        ] {
            if client.blob_exists(reference, digest).unwrap().is_none() {
                client
                    .push_blob(
                        reference,
                        digest,
                        bytes.len() as u64,
                        &mut bytes.as_slice(),
                        mode,
                    )
                    .unwrap();
            }
        }
        client
            .push_manifest(reference, DOCKER_MANIFEST, &self.manifest)
            .unwrap()
    }

    pub fn descriptor(&self, arch: &str) -> Descriptor {
        Descriptor {
            media_type: DOCKER_MANIFEST.into(),
            digest: self.manifest_digest.clone(),
            size: self.manifest.len() as u64,
            platform: Some(strata_distribution::Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: None,
            }),
            urls: vec![],
        }
    }
}
