//! Credentials as the docker CLI keeps them in `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`): `credHelpers` per registry first, then `credsStore`, then
//! the base64 `user:password` in `auths`. Helpers are the same `docker-credential-NAME get`
//! programs docker runs, so logins made with docker work here.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::reference::DOCKER_HUB;
use crate::{Error, Result};

/// Docker Hub's credentials are filed under its v1 index address.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
    /// A bearer token used as it is (`registrytoken`).
    RegistryToken(String),
}

/// Where a [`crate::Client`] finds credentials for a registry.
#[derive(Clone, Debug, Default)]
pub enum CredentialSource {
    #[default]
    Anonymous,
    /// A docker CLI config file (`None`: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`); a missing file means anonymous.
    DockerConfig(Option<PathBuf>),
    /// Fixed credentials by registry (as written in references, `docker.io` for Docker Hub),
    /// e.g. from an API request's `X-Registry-Auth`.
    Fixed(HashMap<String, Credentials>),
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl CredentialSource {
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Fixed(map) => Ok(map.get(registry).cloned()),
            CredentialSource::DockerConfig(path) => {
                let path = match path {
                    Some(p) => p.clone(),
                    None => match default_config_path() {
                        Some(p) => p,
                        None => return Ok(None),
                    },
                };
                from_config_file(&path, registry)
            }
        }
    }
}

fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The key docker files a registry's credentials under.
fn server_key(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    }
}

/// docker's `ConvertToHostname`: `https://host:5000/v1/` is filed as `host:5000`.
fn key_hostname(key: &str) -> &str {
    let key = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn from_config_file(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let bad = |message: String| Error::Credentials {
        registry: registry.to_string(),
        message,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("{}: {e}", path.display()))),
    };
    let config: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "{} is not a docker config file: {e}",
            path.display()
        ))
    })?;
    let key = server_key(registry);
    let hostname = key_hostname(key);
    let helper = config
        .cred_helpers
        .get(hostname)
        .or_else(|| config.cred_helpers.get(key))
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper.filter(|h| !h.is_empty()) {
        return run_helper(helper, key, registry);
    }
    let entry = config.auths.get(key).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| key_hostname(k) == hostname)
            .map(|(_, v)| v)
    });
    let Some(entry) = entry else { return Ok(None) };
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::RegistryToken(token.clone())));
    }
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| {
                bad(format!(
                    "{}: auth for {key} is not base64: {e}",
                    path.display()
                ))
            })?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("{}: auth for {key} is not UTF-8", path.display())))?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err(bad(format!(
                "{}: auth for {key} is not user:password",
                path.display()
            )));
        };
        return Ok(Some(basic(username, password)));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(basic(u, p))),
        _ => Ok(None),
    }
}

fn basic(username: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    }
}

/// The credential helper protocol: the server URL on stdin, `{"Username","Secret"}` on
/// stdout; "credentials not found" (on stdout, with a failing status) means none stored.
fn run_helper(helper: &str, server: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let bad = |message: String| Error::Credentials {
        registry: registry.to_string(),
        message,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| bad(format!("cannot run credential helper {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is judged by its answer, not by EPIPE.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| bad(format!("credential helper {program}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = if stdout.trim().is_empty() {
            stderr.trim()
        } else {
            stdout.trim()
        };
        return Err(bad(format!(
            "credential helper {program} failed ({}): {said}",
            out.status
        )));
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|e| {
        bad(format!(
            "credential helper {program} gave no credentials JSON: {e}"
        ))
    })?;
    if answer.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(answer.secret)));
    }
    Ok(Some(basic(&answer.username, &answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write_config(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        let path = write_config(
            dir.path(),
            &format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}},
                    "http://reg.example:5000/v2/": {{"username": "bob", "password": "pw"}},
                    "tok.example": {{"identitytoken": "refresh"}}}}}}"#
            ),
        );
        let source = CredentialSource::DockerConfig(Some(path));
        assert_eq!(
            source.lookup("docker.io").unwrap(),
            Some(basic("alice", "s3:cret"))
        );
        assert_eq!(
            source.lookup("reg.example:5000").unwrap(),
            Some(basic("bob", "pw"))
        );
        assert_eq!(
            source.lookup("tok.example").unwrap(),
            Some(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(source.lookup("other.example").unwrap(), None);
        let missing = CredentialSource::DockerConfig(Some(dir.path().join("nope.json")));
        assert_eq!(missing.lookup("docker.io").unwrap(), None);
    }

    #[test]
    fn credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\ncase \"$server\" in\n\
             reg.example) echo '{\"ServerURL\":\"reg.example\",\"Username\":\"h\",\"Secret\":\"pw\"}';;\n\
             https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"idt\"}';;\n\
             broken.example) echo 'helper exploded' >&2; exit 2;;\n\
             *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = write_config(
            dir.path(),
            r#"{"auths": {"reg.example": {"auth": "eDp5"}}, "credsStore": "fake",
                "credHelpers": {"none.example": "missing-helper"}}"#,
        );
        let path_var = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        // The only test in this crate that runs a program, so no other test sees the change.
        std::env::set_var("PATH", path_var);
        let source = CredentialSource::DockerConfig(Some(path));
        assert_eq!(
            source.lookup("reg.example").unwrap(),
            Some(basic("h", "pw"))
        );
        assert_eq!(
            source.lookup("docker.io").unwrap(),
            Some(Credentials::IdentityToken("idt".into()))
        );
        assert_eq!(source.lookup("unknown.example").unwrap(), None);
        let err = source.lookup("broken.example").unwrap_err().to_string();
        assert!(err.contains("helper exploded"), "{err}");
        let err = source.lookup("none.example").unwrap_err().to_string();
        assert!(err.contains("docker-credential-missing-helper"), "{err}");
    }
}
