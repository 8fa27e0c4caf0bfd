//! How a registry is reached, as dockerd decides it: HTTPS verified against the system roots
//! plus `/etc/docker/certs.d/<host:port>/*.crt`, with `client.cert`/`client.key` pairs
//! presented; registries listed as insecure (by name or CIDR, `127.0.0.0/8` by default, so
//! localhost) are tried over HTTPS without verification, then over plain HTTP. A registry
//! mirror is reached by the scheme its URL names, and only by it.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// `insecure-registries` of `daemon.json`: `host[:port]` or CIDRs.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors` of `daemon.json`: `http[s]://host[:port]` URLs tried, in order,
    /// before Docker Hub for pulls of `docker.io` images.
    pub registry_mirrors: Vec<String>,
    /// Per-registry CA and client certificates, `<dir>/<host[:port]>/`.
    pub certs_dir: PathBuf,
    /// Redirects followed before giving up, as Go's HTTP client (10).
    pub max_redirects: u32,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            insecure_registries: vec!["127.0.0.0/8".to_string()],
            registry_mirrors: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            max_redirects: 10,
            connect_timeout: Duration::from_secs(30),
            user_agent: concat!("strata/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// One way to reach a registry: a base URL and the HTTP agent configured for it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// `https://host:port` (no trailing slash).
    pub base: String,
    pub agent: ureq::Agent,
    pub max_redirects: u32,
}

/// The mirrors' hosts with the scheme each is reached by, as dockerd validates them.
pub(crate) fn mirrors(config: &TransportConfig) -> Result<Vec<(String, String)>> {
    config
        .registry_mirrors
        .iter()
        .map(|mirror| {
            let bad = |why: &str| Error::InvalidMirror {
                mirror: mirror.clone(),
                why: why.into(),
            };
            let (scheme, rest) = mirror
                .split_once("://")
                .ok_or_else(|| bad("no http:// or https://"))?;
            if scheme != "http" && scheme != "https" {
                return Err(bad("the scheme must be http or https"));
            }
            let host = rest.strip_suffix('/').unwrap_or(rest);
            if host.is_empty() || host.contains(['/', '?', '#']) {
                return Err(bad("a mirror is a host[:port], without a path"));
            }
            Ok((scheme.to_string(), host.to_string()))
        })
        .collect()
}

/// The endpoints to try for `host` (as in the reference, with its port), in order. A mirror
/// has exactly one: the scheme its URL names.
pub(crate) fn endpoints(config: &TransportConfig, host: &str) -> Result<Vec<Endpoint>> {
    let mirror_scheme = mirrors(config)?
        .into_iter()
        .find(|(_, h)| h == host)
        .map(|(s, _)| s);
    let insecure = is_insecure(config, host);
    let dir = config.certs_dir.join(host);
    let (extra_roots, client_cert) = read_certs_dir(&dir)?;
    let mut roots: Vec<Certificate<'static>> = system_roots().as_ref().clone();
    roots.extend(extra_roots);
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client_cert)
        .disable_verification(insecure)
        .build();
    let agent_config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(config.max_redirects)
        .timeout_connect(Some(config.connect_timeout))
        .user_agent(config.user_agent.as_str())
        .tls_config(tls)
        .build();
    let endpoint = |scheme: &str| Endpoint {
        base: format!("{scheme}://{host}"),
        agent: ureq::Agent::new_with_config(agent_config.clone()),
        max_redirects: config.max_redirects,
    };
    let list = match mirror_scheme.as_deref() {
        Some(scheme) => vec![endpoint(scheme)],
        None if insecure => vec![endpoint("https"), endpoint("http")],
        None => vec![endpoint("https")],
    };
    Ok(list)
}

/// Loaded once: every registry's agent starts from the same system roots.
fn system_roots() -> Arc<Vec<Certificate<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<Certificate<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!("system root certificates: {error}");
            }
            Arc::new(
                found
                    .certs
                    .iter()
                    .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                    .collect(),
            )
        })
        .clone()
}

/// dockerd's `ReadCertsDirectory`: `*.crt` are CAs; `X.cert` goes with `X.key`.
fn read_certs_dir(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let bad = |message: String| Error::Certificates {
        path: dir.display().to_string(),
        message,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")));
    let mut roots = Vec::new();
    let mut client = None;
    for name in &names {
        if name.ends_with(".crt") {
            let pem = read(name)?;
            for item in ureq::tls::parse_pem(&pem) {
                // A key filed as .crt is not a CA; it has no use here.
                if let PemItem::Certificate(c) = item.map_err(|e| bad(format!("{name}: {e}")))? {
                    roots.push(c);
                }
            }
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key_name = format!("{stem}.key");
            if !names.contains(&key_name) {
                return Err(bad(format!(
                    "missing key {key_name} for client certificate {name}"
                )));
            }
            let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&read(name)?)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if chain.is_empty() {
                return Err(bad(format!("{name} holds no certificate")));
            }
            let key = PrivateKey::from_pem(&read(&key_name)?)
                .map_err(|e| bad(format!("{key_name}: {e}")))?;
            client = Some(ClientCert::new_with_certs(&chain, key));
        } else if let Some(stem) = name.strip_suffix(".key") {
            if !names.contains(&format!("{stem}.cert")) {
                return Err(bad(format!(
                    "missing client certificate {stem}.cert for key {name}"
                )));
            }
        }
    }
    Ok((roots, client))
}

/// dockerd's `isSecureIndex`, inverted: listed by name, or any of its addresses in a CIDR.
fn is_insecure(config: &TransportConfig, host: &str) -> bool {
    if config.insecure_registries.iter().any(|entry| entry == host) {
        return true;
    }
    let cidrs: Vec<(IpAddr, u8)> = config
        .insecure_registries
        .iter()
        .filter_map(|e| parse_cidr(e))
        .collect();
    if cidrs.is_empty() {
        return false;
    }
    let name = host_without_port(host);
    let addresses: Vec<IpAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (name, 0)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    addresses
        .iter()
        .any(|ip| cidrs.iter().any(|(net, bits)| in_cidr(*ip, *net, *bits)))
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = entry.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(insecure: &[&str]) -> TransportConfig {
        TransportConfig {
            insecure_registries: insecure.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn insecure_by_name_or_cidr() {
        let default = TransportConfig::default();
        assert!(is_insecure(&default, "127.0.0.1:5000"));
        assert!(is_insecure(&default, "localhost:5000"));
        assert!(is_insecure(&default, "localhost"));
        assert!(!is_insecure(&default, "10.1.2.3:5000"));
        assert!(!is_insecure(&config(&[]), "127.0.0.1:5000"));
        assert!(is_insecure(
            &config(&["reg.internal:5000"]),
            "reg.internal:5000"
        ));
        assert!(!is_insecure(
            &config(&["reg.internal:5000"]),
            "reg.internal:5001"
        ));
        assert!(is_insecure(&config(&["10.0.0.0/8"]), "10.1.2.3:5000"));
        assert!(is_insecure(&config(&["::1/128"]), "[::1]:5000"));
        assert!(!is_insecure(&config(&["10.0.0.0/8"]), "11.1.2.3"));
    }

    #[test]
    fn certs_dir_pairs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_certs_dir(&dir.path().join("absent"))
            .unwrap()
            .0
            .is_empty());
        std::fs::write(dir.path().join("client.key"), "x").unwrap();
        let err = read_certs_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("missing client certificate client.cert"),
            "{err}"
        );
        std::fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        std::fs::remove_file(dir.path().join("client.key")).unwrap();
        assert!(read_certs_dir(dir.path()).unwrap().0.is_empty());
    }
}
