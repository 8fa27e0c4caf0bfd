//! `strata daemon`: the Docker Engine API on Unix sockets (crate `strata-api`), configured
//! like dockerd: `-H unix:///PATH` (repeatable), and `--config-file` with daemon.json's
//! `data-root`, `storage-driver`, `storage-opts`, `hosts`, `log-level`. Flags given on the
//! command line win over the file; the file wins over defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde::Deserialize;
use strata_engine::EngineOptions;

use super::args::GlobalArgs;

pub const DEFAULT_SOCKET: &str = "/run/strata.sock";

#[derive(Args)]
pub struct DaemonArgs {
    /// Where to listen: unix:///PATH (repeatable; default unix:///run/strata.sock).
    /// tcp://HOST:PORT is refused: the API has no TLS or authentication here.
    #[arg(short = 'H', long = "host", value_name = "unix:///PATH")]
    pub hosts: Vec<String>,
    /// A daemon.json: data-root, storage-driver, storage-opts, hosts, log-level.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

/// The keys of dockerd's daemon.json that strata reads; others are ignored with a warning.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DaemonJson {
    data_root: Option<PathBuf>,
    storage_driver: Option<String>,
    storage_opts: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    log_level: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Runs the daemon until SIGTERM or SIGINT. Logging is set up here (not in `main`), since
/// daemon.json may choose its level.
pub fn run(cli: &GlobalArgs, matches: &ArgMatches, args: &DaemonArgs) -> Result<()> {
    let file = match &args.config_file {
        Some(path) => read_config(path)?,
        None => DaemonJson::default(),
    };
    let explicit = |id: &str| {
        matches.value_source(id) == Some(ValueSource::CommandLine)
            || matches.value_source(id) == Some(ValueSource::EnvVariable)
    };
    let log_level = match (&file.log_level, explicit("log_level")) {
        (Some(level), false) => level.clone(),
        (None, false) => "info".to_string(),
        _ => cli.log_level.clone(),
    };
    crate::output::init_logging(&log_level);
    for key in file.other.keys() {
        tracing::warn!("daemon.json: {key:?} is not supported by strata and is ignored");
    }
    let root = match (&file.data_root, explicit("root")) {
        (Some(root), false) => root.clone(),
        _ => cli.root.clone(),
    };
    let driver = match (&file.storage_driver, explicit("storage_driver")) {
        (Some(d), false) => Some(d.clone()),
        _ => cli.storage_driver.clone(),
    };
    let driver_options = match (&file.storage_opts, cli.storage_opts.is_empty()) {
        (Some(opts), true) => opts.clone(),
        _ => cli.storage_opts.clone(),
    };
    let hosts = if !args.hosts.is_empty() {
        args.hosts.clone()
    } else {
        file.hosts.clone().unwrap_or_default()
    };
    let sockets = sockets(&hosts)?;
    let options = strata_api::ServeOptions {
        engine: EngineOptions {
            root,
            driver,
            driver_options,
        },
        sockets,
        monitor: std::env::current_exe().context("finding the strata binary for the monitors")?,
    };
    strata_api::serve_blocking(options)?;
    Ok(())
}

fn read_config(path: &Path) -> Result<DaemonJson> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the daemon configuration {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid daemon.json (keys: data-root, storage-driver, storage-opts, hosts, log-level)",
            path.display()
        )
    })
}

/// The socket paths of `hosts` (`unix:///PATH`), the default one when none is given.
fn sockets(hosts: &[String]) -> Result<Vec<PathBuf>> {
    if hosts.is_empty() {
        return Ok(vec![PathBuf::from(DEFAULT_SOCKET)]);
    }
    hosts.iter().map(|h| socket_of(h)).collect()
}

fn socket_of(host: &str) -> Result<PathBuf> {
    if let Some(path) = host.strip_prefix("unix://") {
        if !path.starts_with('/') {
            bail!("invalid host {host:?}: give an absolute socket path, unix:///PATH");
        }
        return Ok(PathBuf::from(path));
    }
    if host.starts_with("tcp://") || host.starts_with("fd://") || host.starts_with("ssh://") {
        bail!(
            "host {host:?} is not supported: strata serves its API only on Unix sockets (no TLS or authentication for TCP); use -H unix:///PATH, and ssh to reach it from elsewhere"
        );
    }
    if host.starts_with('/') {
        return Ok(PathBuf::from(host));
    }
    bail!("invalid host {host:?}: use unix:///PATH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_unix_sockets_only() {
        assert_eq!(sockets(&[]).unwrap(), [PathBuf::from("/run/strata.sock")]);
        assert_eq!(
            socket_of("unix:///tmp/s.sock").unwrap(),
            PathBuf::from("/tmp/s.sock")
        );
        let tcp = socket_of("tcp://0.0.0.0:2375").unwrap_err().to_string();
        assert!(tcp.contains("only on Unix sockets"), "{tcp}");
        assert!(socket_of("unix://relative").is_err());
    }

    #[test]
    fn daemon_json_keys_are_read() {
        let json: DaemonJson = serde_json::from_str(
            r#"{"data-root":"/srv/strata","storage-driver":"vfs","storage-opts":["a=b"],
                "hosts":["unix:///tmp/x.sock"],"log-level":"debug","iptables":false}"#,
        )
        .unwrap();
        assert_eq!(json.data_root, Some(PathBuf::from("/srv/strata")));
        assert_eq!(json.storage_driver.as_deref(), Some("vfs"));
        assert_eq!(json.storage_opts, Some(vec!["a=b".to_string()]));
        assert_eq!(json.hosts, Some(vec!["unix:///tmp/x.sock".to_string()]));
        assert_eq!(json.log_level.as_deref(), Some("debug"));
        assert!(json.other.contains_key("iptables"));
    }
}
