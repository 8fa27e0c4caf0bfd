//! The files a container's runtime bind-mounts over the init layer's empty ones:
//! `hostname`, `hosts` and `resolv.conf` under `containers/<id>/`, written at each start as
//! Docker does; and the fsync of a staged container directory.

use std::path::Path;

use strata_storage::error::IoContext;
use strata_sys::atomic::{write_atomic, Durability::Unsynced};

use super::config::{ContainerConfig, NetworkMode};
use crate::error::Result;

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// Google's resolvers, Docker's fallback when the host's only point at itself.
const DEFAULT_NAMESERVERS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n";

/// fsyncs every file in the staged `dir`, then `dir`. Syncing after all are written, not
/// each as it is written: the first fsync commits the journal with all of them, and the
/// others find nothing left to do (one journal commit instead of one per file, which under
/// a busy disk is most of a container creation's time).
pub fn sync_staged(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).ctx_path("listing", dir)? {
        let path = entry.ctx_path("listing", dir)?.path();
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .ctx_path("syncing", &path)?;
    }
    strata_storage::fs::sync_dir(dir)?;
    Ok(())
}

/// The container's host name: the one asked for, else the host's with `--network host`,
/// else the first 12 hex digits of its ID, as Docker does.
pub fn hostname(config: &ContainerConfig, id: &str) -> String {
    if let Some(h) = &config.hostname {
        return h.clone();
    }
    if config.network == NetworkMode::Host {
        return rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
    }
    id[..12].to_string()
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container's `dir`, at each start:
/// they are the container's view of the host's names and resolvers, made anew from its
/// config and the host's files (changes made to them inside a container last until it
/// stops, as with Docker). Each replaces the last atomically but is not fsynced: the next
/// start rewrites whatever a power cut left.
pub fn write_network_files(dir: &Path, config: &ContainerConfig, id: &str) -> Result<()> {
    let host = hostname(config, id);
    write_atomic(dir, "hostname", format!("{host}\n").as_bytes(), Unsynced)?;
    let hosts = match &config.network {
        // The host's names resolve as on the host.
        NetworkMode::Host => {
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.to_string())
        }
        NetworkMode::None | NetworkMode::Path(_) => format!("{DEFAULT_HOSTS}127.0.0.1\t{host}\n"),
    };
    write_atomic(dir, "hosts", hosts.as_bytes(), Unsynced)?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(
        dir,
        "resolv.conf",
        resolv_conf(&host_resolv, &config.network).as_bytes(),
        Unsynced,
    )?;
    Ok(())
}

/// The host's resolv.conf for the container: as is with the host's network; otherwise
/// without loopback nameservers (unreachable from another namespace), and Google's when
/// none remain, as Docker does.
pub fn resolv_conf(host: &str, network: &NetworkMode) -> String {
    if *network == NetworkMode::Host {
        return host.to_string();
    }
    let loopback = |line: &str| {
        let mut words = line.split_whitespace();
        words.next() == Some("nameserver")
            && words.next().is_some_and(|addr| {
                addr.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
            })
    };
    let kept: Vec<&str> = host.lines().filter(|l| !loopback(l)).collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    let has_nameserver = kept
        .iter()
        .any(|l| l.split_whitespace().next() == Some("nameserver"));
    if !has_nameserver {
        out.push_str(DEFAULT_NAMESERVERS);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_replaced_like_docker() {
        let local = "# systemd\nnameserver 127.0.0.53\noptions edns0\n";
        let out = resolv_conf(local, &NetworkMode::None);
        assert!(!out.contains("127.0.0.53"), "{out}");
        assert!(out.contains("nameserver 8.8.8.8"), "{out}");
        assert!(out.contains("options edns0"), "{out}");
        let real = "nameserver 10.0.0.2\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(real, &NetworkMode::None),
            "nameserver 10.0.0.2\n"
        );
        assert_eq!(resolv_conf(local, &NetworkMode::Host), local);
        assert_eq!(resolv_conf("", &NetworkMode::None), DEFAULT_NAMESERVERS);
    }

    #[test]
    fn network_files_are_replaced_at_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123";
        let mut config = ContainerConfig::default();
        write_network_files(dir.path(), &config, id).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("hostname"), "0123456789ab\n");
        assert!(read("hosts").contains("127.0.0.1\t0123456789ab\n"));
        config.hostname = Some("box".into());
        write_network_files(dir.path(), &config, id).unwrap();
        assert_eq!(read("hostname"), "box\n");
        assert!(read("hosts").ends_with("127.0.0.1\tbox\n"));
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["hostname", "hosts", "resolv.conf"]);
    }
}
