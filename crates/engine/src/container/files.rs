//! The files a container's runtime bind-mounts over the init layer's empty ones:
//! `hostname`, `hosts` and `resolv.conf` under `containers/<id>/`, written at each start as
//! Docker does; and the atomic writes (staging file, fsync, rename, fsync of the directory)
//! the container's durable files go through.

use std::io::Write;
use std::path::Path;

use strata_storage::error::IoContext;

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

/// Writes `dir/name` so that a reader sees the old content or the new, never a part.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let staged = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    let mut file = std::fs::File::create(&staged).ctx_path("creating", &staged)?;
    file.write_all(bytes).ctx_path("writing", &staged)?;
    file.sync_all().ctx_path("syncing", &staged)?;
    std::fs::rename(&staged, &dest)
        .ctx(|| format!("renaming {} to {}", staged.display(), dest.display()))?;
    strata_storage::fs::sync_dir(dir)?;
    Ok(())
}

/// Replaces `dir/name` through a staging file and a rename, without fsyncs: for files
/// regenerated before each use.
fn write_replacing(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let staged = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    std::fs::write(&staged, bytes).ctx_path("writing", &staged)?;
    std::fs::rename(&staged, &dest)
        .ctx(|| format!("renaming {} to {}", staged.display(), dest.display()))?;
    Ok(())
}

/// Writes the new file `dir/name`, for a directory still being staged: the caller makes
/// the directory durable once with [`sync_staged`] before renaming it into place, and the
/// rename makes every file appear at once.
pub fn write_staged(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx_path("creating", &path)?;
    file.write_all(bytes).ctx_path("writing", &path)?;
    Ok(())
}

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
    write_replacing(dir, "hostname", format!("{host}\n").as_bytes())?;
    let hosts = match &config.network {
        // The host's names resolve as on the host.
        NetworkMode::Host => {
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.to_string())
        }
        NetworkMode::None | NetworkMode::Path(_) => format!("{DEFAULT_HOSTS}127.0.0.1\t{host}\n"),
    };
    write_replacing(dir, "hosts", hosts.as_bytes())?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_replacing(
        dir,
        "resolv.conf",
        resolv_conf(&host_resolv, &config.network).as_bytes(),
    )
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
    fn atomic_write_replaces_and_leaves_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "hosts", b"one").unwrap();
        write_atomic(dir.path(), "hosts", b"two").unwrap();
        assert_eq!(std::fs::read(dir.path().join("hosts")).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
