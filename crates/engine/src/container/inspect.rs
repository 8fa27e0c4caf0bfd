//! `inspect` of a container, in Docker's JSON shape (`Id`, `State`, `GraphDriver`, `Config`,
//! `HostConfig`, ...), so scripts written against `docker inspect` read it unchanged.

use serde_json::{json, Value};

use super::{Container, ContainerConfig, State};
use crate::error::Result;
use crate::Engine;

/// Docker's zero time, for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Engine {
    /// `inspect CONTAINER`.
    pub fn inspect_container(&self, name_or_id: &str) -> Result<Value> {
        let c = self.container(name_or_id)?;
        let config = self.container_config(&c)?;
        let dir = self.container_dir(&c.id);
        let path_of = |name: &str| dir.join(name).display().to_string();
        // Written at the first start: empty before, as Docker shows them.
        let written_at_start = |name: &str| match dir.join(name).exists() {
            true => path_of(name),
            false => String::new(),
        };
        let argv = config.argv();
        let (path, args) = match argv.split_first() {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let graph_driver = match self.inspect(&c.rw_layer) {
            Ok(details) => {
                let mut data = details.graph_driver.data;
                if let Some(upper) = data.get("UpperDir").cloned() {
                    // Docker shows the work dir whether or not the layer is mounted.
                    let work = std::path::Path::new(&upper).with_file_name("work");
                    if work.is_dir() {
                        data.entry("WorkDir".into())
                            .or_insert(work.display().to_string());
                    }
                }
                json!({"Name": details.graph_driver.name, "Data": data})
            }
            Err(_) => json!({"Name": self.layers.driver().name(), "Data": null}),
        };
        Ok(json!({
            "Id": c.id,
            "Created": time(Some(c.created)),
            "Path": path,
            "Args": args,
            "State": state(&c, self.is_paused(&c)),
            "Image": c.image,
            "ResolvConfPath": written_at_start("resolv.conf"),
            "HostnamePath": written_at_start("hostname"),
            "HostsPath": written_at_start("hosts"),
            "LogPath": path_of(&format!("{}-json.log", c.id)),
            "Name": format!("/{}", c.name),
            "RestartCount": 0,
            "Driver": self.layers.driver().name(),
            "Platform": "linux",
            "HostConfig": host_config(&config),
            "GraphDriver": graph_driver,
            "Mounts": self.mounts_of(&config),
            "Config": container_config(&c, &config),
        }))
    }
}

fn state(c: &Container, paused: bool) -> Value {
    let status = if paused { "paused" } else { c.state.as_str() };
    json!({
        "Status": status,
        "Running": c.state == State::Running,
        "Paused": paused,
        "Restarting": false,
        "OOMKilled": false,
        "Dead": c.state == State::Dead,
        "Pid": c.pid.unwrap_or(0),
        "ExitCode": c.exit_code.unwrap_or(0),
        "Error": "",
        "StartedAt": time(c.started_at),
        "FinishedAt": time(c.finished_at),
    })
}

impl Engine {
    /// Docker's `Mounts`: the container's volumes and binds (tmpfs mounts are only in
    /// `HostConfig.Tmpfs`, as Docker shows them).
    fn mounts_of(&self, config: &ContainerConfig) -> Vec<Value> {
        config
            .volumes
            .iter()
            .filter_map(|spec| super::parse_volume(spec).ok())
            .map(|v| {
                let mode = if v.read_only { "ro" } else { "" };
                if v.source.starts_with('/') {
                    json!({
                        "Type": "bind",
                        "Source": v.source,
                        "Destination": v.destination,
                        "Mode": mode,
                        "RW": !v.read_only,
                        "Propagation": "rprivate",
                    })
                } else {
                    let data = self.volumes_dir().join(&v.source).join("_data");
                    json!({
                        "Type": "volume",
                        "Name": v.source,
                        "Source": data.display().to_string(),
                        "Destination": v.destination,
                        "Driver": "local",
                        "Mode": if v.read_only { "ro" } else { "z" },
                        "RW": !v.read_only,
                        "Propagation": "",
                    })
                }
            })
            .collect()
    }
}

fn host_config(config: &ContainerConfig) -> Value {
    let tmpfs: serde_json::Map<String, Value> = config
        .tmpfs
        .iter()
        .map(|spec| {
            let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
            (dst.to_string(), Value::from(opts))
        })
        .collect();
    json!({
        "Binds": config.volumes,
        "NetworkMode": config.network.as_str(),
        "AutoRemove": config.auto_remove,
        "ReadonlyRootfs": config.read_only,
        "Tmpfs": tmpfs,
        "Memory": config.memory.unwrap_or(0),
        "NanoCpus": config.nano_cpus.unwrap_or(0),
        "PidsLimit": config.pids_limit,
    })
}

fn container_config(c: &Container, config: &ContainerConfig) -> Value {
    json!({
        "Hostname": config.hostname.clone().unwrap_or_else(|| c.id[..12].to_string()),
        "Domainname": "",
        "User": config.user.clone().unwrap_or_default(),
        "AttachStdin": config.open_stdin,
        "AttachStdout": true,
        "AttachStderr": true,
        "Tty": config.tty,
        "OpenStdin": config.open_stdin,
        "StdinOnce": config.open_stdin,
        "Env": config.env,
        "Cmd": config.cmd,
        "Image": config.image,
        "WorkingDir": config.workdir.clone().unwrap_or_default(),
        "Entrypoint": config.entrypoint,
        "Labels": config.labels,
    })
}

/// RFC 3339 with nanoseconds, as Docker writes times; Docker's zero time for `None`.
fn time(nanos: Option<i64>) -> String {
    match nanos {
        Some(n) => chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(n)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => ZERO_TIME.to_string(),
    }
}
