//! Docker's JSON shapes of what the engine reports: `inspect` of a container and of an
//! image, and a volume, so scripts written against `docker inspect` read them unchanged.
//! The API serves them, with the fields Docker always sends filled in where a handler needs
//! them; the CLI prints them as they are (`strata inspect`, `image inspect`, `volume
//! inspect`).

use serde_json::{json, Value};
use strata_engine::container::{ContainerDetails, MountPoint};
use strata_engine::volumes::LOCAL_DRIVER;
use strata_engine::{Container, ContainerConfig, ImageDetails, State, Volume};

/// Docker's zero time, for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `inspect CONTAINER`: `Id`, `State`, `GraphDriver`, `Config`, `HostConfig`, ...
pub fn container(d: &ContainerDetails) -> Value {
    let c = &d.container;
    let config = &d.config;
    let argv = config.argv();
    let (path, args) = match argv.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let path_or_empty = |p: &Option<std::path::PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => String::new(),
    };
    json!({
        "Id": c.id,
        "Created": time(Some(c.created)),
        "Path": path,
        "Args": args,
        "State": state(c, d.paused),
        "Image": c.image,
        "ResolvConfPath": path_or_empty(&d.paths.resolv_conf),
        "HostnamePath": path_or_empty(&d.paths.hostname),
        "HostsPath": path_or_empty(&d.paths.hosts),
        "LogPath": d.paths.log.display().to_string(),
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": d.driver,
        "Platform": "linux",
        "HostConfig": host_config(config),
        "GraphDriver": {"Name": d.driver, "Data": d.layer_dirs},
        "Mounts": d.mounts.iter().map(mount).collect::<Vec<_>>(),
        "Config": container_config(c, config),
    })
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

/// One of Docker's `Mounts`.
fn mount(m: &MountPoint) -> Value {
    let source = m.source.display().to_string();
    match &m.volume {
        None => json!({
            "Type": "bind",
            "Source": source,
            "Destination": m.destination,
            "Mode": if m.read_only { "ro" } else { "" },
            "RW": !m.read_only,
            "Propagation": "rprivate",
        }),
        Some(name) => json!({
            "Type": "volume",
            "Name": name,
            "Source": source,
            "Destination": m.destination,
            "Driver": LOCAL_DRIVER,
            "Mode": if m.read_only { "ro" } else { "z" },
            "RW": !m.read_only,
            "Propagation": "",
        }),
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
        "Hostname": config.hostname.clone().unwrap_or_else(|| c.short_id().to_string()),
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

/// `image inspect NAME`. The image's own config JSON is shown as stored, so fields strata
/// does not model survive.
pub fn image(d: &ImageDetails) -> Value {
    let image = &d.image;
    let c: Value = serde_json::from_slice(&d.config.bytes).unwrap_or(Value::Null);
    let last_comment = c["history"]
        .as_array()
        .and_then(|h| h.last())
        .map(|h| h["comment"].clone());
    let comment = match &c["comment"] {
        Value::String(s) => json!(s),
        _ => last_comment.unwrap_or(json!("")),
    };
    json!({
        "Id": image.id,
        "RepoTags": image.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "RepoDigests": [],
        "Parent": "",
        "Comment": comment,
        "Created": c["created"],
        "Container": c["container"].as_str().unwrap_or_default(),
        "Author": c["author"].as_str().unwrap_or_default(),
        "Config": c["config"],
        "Architecture": c["architecture"],
        "Os": c["os"],
        "Size": image.size,
        "GraphDriver": {"Name": d.driver, "Data": d.layer_dirs},
        "RootFS": {
            "Type": c["rootfs"]["type"].as_str().unwrap_or("layers"),
            "Layers": c["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    })
}

/// `volume inspect NAME`.
pub fn volume(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": LOCAL_DRIVER,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}
