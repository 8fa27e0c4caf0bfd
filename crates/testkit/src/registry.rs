//! A real registry for end-to-end tests: Debian's `docker-registry` (distribution 2.8) as a
//! child bound to 127.0.0.1 on a free port, plain HTTP, storage in a temp dir; and `skopeo`
//! to push archives into it. Both return `None` after a `SKIP:` line when not installed.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: tempfile::TempDir,
}

fn in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Whether `skopeo` is there (else prints a `SKIP:` line).
pub fn have_skopeo() -> bool {
    let found = in_path("skopeo").is_some();
    if !found {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo)");
    }
    found
}

impl Registry {
    /// A plain-HTTP registry, or `None` (after a `SKIP:` line) without `docker-registry`.
    pub fn plain() -> Option<Registry> {
        let Some(binary) = in_path("docker-registry") else {
            eprintln!("SKIP: docker-registry is not installed (apt-get install docker-registry)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
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
        let mut registry = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&registry.addr).is_err() {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}): {}", registry.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(registry)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where the registry keeps blob `digest`'s bytes (for tampering with them).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Pushes a docker-archive to `127.0.0.1:PORT/<name>` with skopeo; the manifest's JSON.
    pub fn push_archive(&self, archive: &Path, name: &str) -> serde_json::Value {
        let dest = format!("docker://{}/{name}", self.addr);
        let out = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "-q"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(&dest)
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(&dest)
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("manifest JSON")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker-archive of one image from its layer tars (uncompressed) and a config `Cmd`,
/// for the host's architecture; returns the archive's bytes and the config's digest.
pub fn docker_archive(tag: &str, layers: &[Vec<u8>], cmd: &[&str]) -> (Vec<u8>, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| crate::sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = crate::sha256(&config);
    let names: Vec<String> = (0..layers.len()).map(|i| format!("layer{i}.tar")).collect();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [tag], "Layers": names,
    }]);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
        ("config.json".into(), config),
    ];
    for (n, l) in names.iter().zip(layers) {
        files.push((n.clone(), l.clone()));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    (crate::files_tar(&refs), config_digest)
}
