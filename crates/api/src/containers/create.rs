//! `create` and `inspect`: Docker's create body (`ContainerCreateBody` with its
//! `HostConfig`) as strata's `ContainerConfig`, and the fields Docker's inspect always has
//! that the engine's lacks. What strata cannot do is refused (400) when ignoring it would
//! change what runs, and reported as a warning when it only changes the surroundings
//! (networking).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bollard_stubs::models::{ContainerCreateBody, ContainerCreateResponse, HostConfig, MountType};
use serde_json::{json, Value};
use strata_engine::{ContainerConfig, NetworkMode};

use crate::error::{ApiError, ApiResult};
use crate::params::{json_request, Query};
use crate::state::{AppState, Blocking};

/// `POST /containers/create?name=NAME` with Docker's `ContainerCreateBody`.
pub async fn create(
    State(state): State<AppState>,
    query: Query,
    body: Body,
) -> ApiResult<(StatusCode, Json<ContainerCreateResponse>)> {
    let request = json_request(body).await?;
    let (image, config, warnings) = config_of(request)?;
    let name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let c = state
        .daemon
        .run(move |e| Ok(e.containers().create(&image, config, name.as_deref())?))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse { id: c.id, warnings }),
    ))
}

/// `GET /containers/{id}/json`: the engine's inspect in Docker's shape, completed.
pub async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut value = state
        .daemon
        .run(move |e| Ok(crate::render::container(&e.containers().inspect(&id)?)))
        .await?;
    complete_inspect(&mut value);
    Ok(Json(value))
}

/// The image, the config, and warnings for the client.
fn config_of(body: ContainerCreateBody) -> ApiResult<(String, ContainerConfig, Vec<String>)> {
    let image = body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("no image given: the create body needs \"Image\""))?;
    let mut warnings = Vec::new();
    let host = body.host_config.clone().unwrap_or_default();
    let mut config = ContainerConfig {
        image: image.clone(),
        cmd: body.cmd.clone().unwrap_or_default(),
        // The CLI's `--entrypoint ""` arrives as `[""]`: no entrypoint at all.
        entrypoint: body
            .entrypoint
            .clone()
            .map(|e| e.into_iter().filter(|a| !a.is_empty()).collect()),
        env: body.env.clone().unwrap_or_default(),
        workdir: body.working_dir.clone().filter(|w| !w.is_empty()),
        user: body.user.clone().filter(|u| !u.is_empty()),
        hostname: body.hostname.clone().filter(|h| !h.is_empty()),
        tty: body.tty.unwrap_or(false),
        open_stdin: body.open_stdin.unwrap_or(false),
        labels: body
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        ..Default::default()
    };
    apply_host_config(&mut config, &host, &mut warnings)?;
    // `-v /path` arrives as `Volumes: {"/path": {}}`: an anonymous volume, unless a bind
    // or named volume already covers the path.
    for path in body.volumes.clone().unwrap_or_default() {
        let covered = config
            .volumes
            .iter()
            .filter_map(|spec| strata_engine::container::parse_volume(spec).ok())
            .any(|v| v.destination == path);
        if !covered {
            config.volumes.push(path);
        }
    }
    Ok((image, config, warnings))
}

fn apply_host_config(
    config: &mut ContainerConfig,
    host: &HostConfig,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    config.network = match host.network_mode.as_deref().unwrap_or("") {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        // The CLI's default: no warning, or every `docker run` would print one.
        "" | "default" => NetworkMode::None,
        "bridge" => {
            warnings.push(
                "strata has no bridge networking yet: the container gets only a loopback interface (--network none)"
                    .into(),
            );
            NetworkMode::None
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "network mode {other:?} is not supported: use none or host"
            )))
        }
    };
    if host.privileged == Some(true) {
        return Err(ApiError::bad_request(
            "--privileged is not supported by strata",
        ));
    }
    if host.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
        warnings.push("published ports are ignored: strata has no port forwarding yet".into());
    }
    config.volumes = host.binds.clone().unwrap_or_default();
    config.tmpfs = host
        .tmpfs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(dst, opts)| {
            if opts.is_empty() {
                dst
            } else {
                format!("{dst}:{opts}")
            }
        })
        .collect();
    for m in host.mounts.clone().unwrap_or_default() {
        let target = m.target.clone().unwrap_or_default();
        let read_only = if m.read_only == Some(true) { ":ro" } else { "" };
        match m.typ {
            Some(MountType::BIND) | Some(MountType::VOLUME) => {
                let source = m.source.clone().unwrap_or_default();
                if source.is_empty() {
                    // `--mount type=volume,target=/x`: anonymous.
                    config.volumes.push(format!("{target}{read_only}"));
                } else {
                    config.volumes.push(format!("{source}:{target}{read_only}"));
                }
            }
            Some(MountType::TMPFS) => config.tmpfs.push(target),
            other => {
                return Err(ApiError::bad_request(format!(
                    "mount type {other:?} is not supported: use bind, volume or tmpfs"
                )))
            }
        }
    }
    config.memory = host.memory.filter(|m| *m > 0).map(|m| m as u64);
    config.nano_cpus = host.nano_cpus.filter(|n| *n > 0).map(|n| n as u64);
    config.pids_limit = host.pids_limit.filter(|p| *p != 0);
    config.read_only = host.readonly_rootfs.unwrap_or(false);
    config.auto_remove = host.auto_remove.unwrap_or(false);
    config.runtime = host
        .runtime
        .clone()
        .filter(|r| !r.is_empty() && r != "runc")
        .unwrap_or_default();
    Ok(())
}

/// Adds to the engine's inspect what Docker always sends and clients index.
fn complete_inspect(value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    for (key, default) in [
        ("MountLabel", json!("")),
        ("ProcessLabel", json!("")),
        ("AppArmorProfile", json!("")),
        ("ExecIDs", Value::Null),
    ] {
        map.entry(key).or_insert(default);
    }
    let network_mode = map["HostConfig"]["NetworkMode"].clone();
    map.entry("NetworkSettings").or_insert(json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": {}, "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "MacAddress": "", "EndpointID": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
        "Networks": { network_mode.as_str().unwrap_or("none"): {
            "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "MacAddress": "", "Aliases": null, "Links": null,
        }},
    }));
    if let Some(host) = map.get_mut("HostConfig").and_then(Value::as_object_mut) {
        host.entry("LogConfig")
            .or_insert(json!({"Type": "json-file", "Config": {}}));
        host.entry("RestartPolicy")
            .or_insert(json!({"Name": "no", "MaximumRetryCount": 0}));
        host.entry("Privileged").or_insert(json!(false));
        host.entry("PortBindings").or_insert(json!({}));
        host.entry("Runtime").or_insert(json!("runc"));
    }
    if let Some(config) = map.get_mut("Config").and_then(Value::as_object_mut) {
        config.entry("ExposedPorts").or_insert(Value::Null);
        config.entry("Volumes").or_insert(Value::Null);
        config.entry("OnBuild").or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clis_create_body_becomes_a_config() {
        let body: ContainerCreateBody = serde_json::from_str(
            r#"{"Image":"bb","Cmd":["echo","hi"],"Entrypoint":[""],"Env":["A=1"],
                "Tty":false,"OpenStdin":true,"ExposedPorts":{},"Volumes":null,
                "HostConfig":{"NetworkMode":"default","AutoRemove":true,"Binds":["/srv:/data:ro"],
                  "Tmpfs":{"/run":"size=1m"},"Memory":67108864,"PidsLimit":null},
                "Unknown":1}"#,
        )
        .unwrap();
        let (image, config, warnings) = config_of(body).unwrap();
        assert_eq!(image, "bb");
        assert_eq!(config.cmd, ["echo", "hi"]);
        assert_eq!(config.entrypoint, Some(vec![]));
        assert!(config.open_stdin && config.auto_remove);
        assert_eq!(config.network, NetworkMode::None);
        assert_eq!(config.volumes, ["/srv:/data:ro"]);
        assert_eq!(config.tmpfs, ["/run:size=1m"]);
        assert_eq!(config.memory, Some(64 << 20));
        assert!(warnings.is_empty(), "{warnings:?}");
        let missing: ContainerCreateBody = serde_json::from_str(r#"{"Cmd":["true"]}"#).unwrap();
        assert!(config_of(missing).is_err());
    }
}
