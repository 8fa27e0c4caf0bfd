//! `_ping`, `version`, `info`, `system/df`: what clients ask first, to learn the API
//! version and what the daemon stores.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bollard_stubs::models::{
    Commit, LocalNodeState, PluginsInfo, Runtime, SwarmInfo, SystemInfo,
    SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};
use serde_json::json;
use strata_engine::State as RunState;

use crate::error::ApiResult;
use crate::state::{AppState, Blocking};
use crate::version::{API_VERSION, MIN_API_VERSION};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(disk_usage))
}

/// `GET`/`HEAD /_ping`: `OK`, with the headers that tell a client our API version (added to
/// every answer by the version middleware) and the builder it may use.
async fn ping() -> Response {
    let mut response = "OK".into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // The classic builder's protocol (no BuildKit here).
    headers.insert("Builder-Version", HeaderValue::from_static("1"));
    headers.insert("Swarm", HeaderValue::from_static("inactive"));
    response
}

pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Docker's (Go's) name of this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

async fn version() -> Json<SystemVersion> {
    let details = [
        ("ApiVersion", API_VERSION.to_string()),
        ("MinAPIVersion", MIN_API_VERSION.to_string()),
        ("Os", "linux".to_string()),
        ("Arch", go_arch().to_string()),
        ("KernelVersion", kernel_version()),
        ("Experimental", "false".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Json(SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: format!("strata {SERVER_VERSION}"),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: SERVER_VERSION.into(),
            details: Some(details),
        }]),
        version: Some(SERVER_VERSION.into()),
        api_version: Some(API_VERSION.to_string()),
        min_api_version: Some(MIN_API_VERSION.to_string()),
        git_commit: Some(String::new()),
        go_version: Some(String::new()),
        os: Some("linux".into()),
        arch: Some(go_arch().into()),
        kernel_version: Some(kernel_version()),
        experimental: Some(false),
        build_time: Some(String::new()),
    })
}

async fn info(State(state): State<AppState>) -> ApiResult<Json<SystemInfo>> {
    let (info, containers) = state
        .daemon
        .run(|engine| Ok((engine.info()?, engine.containers(true)?)))
        .await?;
    let count = |s: RunState| containers.iter().filter(|c| c.state == s).count() as i64;
    let running = count(RunState::Running);
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let cgroup_v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    Ok(Json(SystemInfo {
        id: Some(format!("strata-{hostname}")),
        containers: Some(containers.len() as i64),
        containers_running: Some(running),
        containers_paused: Some(0),
        containers_stopped: Some(containers.len() as i64 - running),
        images: Some(info.images as i64),
        driver: Some(info.driver.clone()),
        driver_status: Some(
            info.driver_status
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect(),
        ),
        docker_root_dir: Some(info.root.display().to_string()),
        plugins: Some(PluginsInfo {
            volume: Some(vec!["local".into()]),
            network: Some(vec!["host".into(), "null".into()]),
            authorization: None,
            log: Some(vec!["json-file".into()]),
        }),
        memory_limit: Some(true),
        swap_limit: Some(false),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(false),
        ipv4_forwarding: Some(false),
        debug: Some(tracing::enabled!(tracing::Level::DEBUG)),
        nfd: Some(open_fds()),
        n_goroutines: Some(0),
        system_time: Some(chrono::Local::now().to_rfc3339()),
        logging_driver: Some("json-file".into()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if cgroup_v2 {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: Some(info.kernel.clone()),
        operating_system: Some(operating_system()),
        os_version: Some(String::new()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map_or(1, |n| n.get()) as i64),
        mem_total: Some(mem_total()),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        name: Some(hostname),
        labels: Some(vec![]),
        experimental_build: Some(false),
        server_version: Some(SERVER_VERSION.into()),
        runtimes: Some(
            [(
                "runc".to_string(),
                Runtime {
                    path: Some("runc".into()),
                    ..Default::default()
                },
            )]
            .into(),
        ),
        default_runtime: Some("runc".into()),
        swarm: Some(SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            remote_managers: None,
            ..Default::default()
        }),
        live_restore_enabled: Some(true),
        init_binary: Some(String::new()),
        containerd_commit: Some(Commit {
            id: Some(String::new()),
        }),
        runc_commit: Some(Commit {
            id: Some(String::new()),
        }),
        init_commit: Some(Commit {
            id: Some(String::new()),
        }),
        security_options: Some(vec![]),
        warnings: Some(vec![]),
        ..Default::default()
    }))
}

fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64)
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// `system/df` in the shape of API 1.47 (`LayersSize`, `Images`, `Containers`, `Volumes`,
/// `BuildCache`), which is what clients at that version read.
async fn disk_usage(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let (images, layers_size) = crate::images::summaries_with_usage(&state).await?;
    let containers = crate::containers::summaries(&state, true).await?;
    let volumes = state.daemon.run(crate::volumes::usage).await?;
    Ok(Json(json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}
