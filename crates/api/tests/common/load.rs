//! A load generator for `strata daemon`: N API clients (each its own bollard connection
//! pool) loop, each cycle being a short container's whole life as the docker CLI drives it,
//! until a deadline. Every cycle's latency and every error is recorded.
//!
//! Cycles alternate between two shapes:
//! - `docker run --rm IMG true`: create with `HostConfig.AutoRemove`, wait with
//!   `condition=removed` (opened before start), start, wait ends when the daemon removed it;
//! - `docker run IMG echo` + `docker rm`: create, attach (hijacked stream), wait with
//!   `condition=next-exit`, start, read the output to its end and check it, explicit delete.
//!
//! Shared by `examples/api_load.rs` (the bench) and `tests/concurrency_api.rs`.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;

pub struct LoadConfig {
    pub socket: String,
    pub clients: usize,
    pub duration: Duration,
    pub image: String,
}

#[derive(Default)]
pub struct LoadReport {
    pub cycles: u64,
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
    /// Every container ID created, to look for what they may have leaked (cgroups).
    pub ids: Vec<String>,
    pub elapsed: Duration,
}

impl LoadReport {
    /// The `p`-th percentile (0..=100) of the cycle latencies, nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn summary(&self) -> String {
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        let mut text = format!(
            "{} cycles in {:.1} s ({:.1}/s), {} errors; latency p50 {} p90 {} p99 {} max {}",
            self.cycles,
            self.elapsed.as_secs_f64(),
            self.cycles as f64 / self.elapsed.as_secs_f64().max(0.001),
            self.errors.len(),
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
        );
        for e in self.errors.iter().take(5) {
            text.push_str("\n  error: ");
            text.push_str(e);
        }
        text
    }
}

/// Runs the load; returns once every client finished its last cycle.
pub async fn run_load(config: &LoadConfig) -> LoadReport {
    let start = Instant::now();
    let until = start + config.duration;
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            let socket = config.socket.clone();
            let image = config.image.clone();
            tokio::spawn(async move { client_loop(client, &socket, &image, until).await })
        })
        .collect();
    let mut report = LoadReport::default();
    for client in clients {
        match client.await {
            Ok(part) => {
                report.cycles += part.cycles;
                report.latencies.extend(part.latencies);
                report.errors.extend(part.errors);
                report.ids.extend(part.ids);
            }
            Err(e) => report.errors.push(format!("client task failed: {e}")),
        }
    }
    report.elapsed = start.elapsed();
    report
}

async fn client_loop(client: usize, socket: &str, image: &str, until: Instant) -> LoadReport {
    let mut part = LoadReport::default();
    let docker = match bollard::Docker::connect_with_unix(socket, 600, bollard::API_DEFAULT_VERSION)
    {
        Ok(d) => d,
        Err(e) => {
            part.errors
                .push(format!("client {client}: connecting: {e}"));
            return part;
        }
    };
    let mut n = 0usize;
    while Instant::now() < until {
        let begin = Instant::now();
        let mut id = None;
        let result = if (client + n).is_multiple_of(2) {
            run_auto_remove(&docker, socket, image, &mut id).await
        } else {
            run_attached(&docker, socket, image, client, n, &mut id).await
        };
        if let Some(id) = &id {
            part.ids.push(id.clone());
        }
        match result {
            Ok(()) => {
                part.cycles += 1;
                part.latencies.push(begin.elapsed());
            }
            Err(e) => {
                part.errors.push(format!("client {client} cycle {n}: {e}"));
                // As a client would: remove what the failed cycle left, so later checks
                // see leaks of the daemon, not of this cycle.
                if let Some(id) = &id {
                    let force = RemoveContainerOptionsBuilder::default().force(true).build();
                    let _ = docker.remove_container(id, Some(force)).await;
                }
            }
        }
        n += 1;
    }
    part
}

/// `docker run --rm IMG true`.
async fn run_auto_remove(
    docker: &bollard::Docker,
    socket: &str,
    image: &str,
    id_out: &mut Option<String>,
) -> Result<(), String> {
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec!["true".into()]),
        host_config: Some(HostConfig {
            auto_remove: Some(true),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(None, body)
        .await
        .map_err(|e| format!("create: {e}"))?
        .id;
    *id_out = Some(id.clone());
    // The wait must be registered before start, as the docker CLI does (else a fast
    // container is gone before the wait arrives): its response head is the proof.
    let waiter = wait_registered(socket, &id, "removed").await?;
    docker
        .start_container(&id, None)
        .await
        .map_err(|e| format!("start {id}: {e}"))?;
    match waiter.await? {
        0 => Ok(()),
        code => Err(format!("{id} exited {code}")),
    }
}

/// `docker run IMG echo TEXT` (attached) then `docker rm`.
async fn run_attached(
    docker: &bollard::Docker,
    socket: &str,
    image: &str,
    client: usize,
    n: usize,
    id_out: &mut Option<String>,
) -> Result<(), String> {
    let text = format!("c{client}-{n}");
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec!["echo".into(), text.clone()]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(None, body)
        .await
        .map_err(|e| format!("create: {e}"))?
        .id;
    *id_out = Some(id.clone());
    let attach = AttachContainerOptionsBuilder::default()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut attached = docker
        .attach_container(&id, Some(attach))
        .await
        .map_err(|e| format!("attach {id}: {e}"))?;
    let waiter = wait_registered(socket, &id, "next-exit").await?;
    docker
        .start_container(&id, None)
        .await
        .map_err(|e| format!("start {id}: {e}"))?;
    let mut output = String::new();
    while let Some(chunk) = attached.output.next().await {
        match chunk.map_err(|e| format!("attach stream {id}: {e}"))? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                output.push_str(&String::from_utf8_lossy(&message))
            }
            other => return Err(format!("{id}: unexpected output {other:?}")),
        }
    }
    let code = waiter.await?;
    if code != 0 {
        return Err(format!("{id} exited {code}"));
    }
    if output != format!("{text}\n") {
        return Err(format!(
            "{id}: attached output {output:?}, expected {text:?}"
        ));
    }
    docker
        .remove_container(&id, None)
        .await
        .map_err(|e| format!("rm {id}: {e}"))
}

/// `POST /containers/ID/wait?condition=...` over its own connection, returned once the
/// daemon answered the head (it has looked the container up: the wait is registered); the
/// future resolves to the exit code.
async fn wait_registered(
    socket: &str,
    id: &str,
    condition: &str,
) -> Result<impl std::future::Future<Output = Result<i64, String>>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("wait {id}: connecting: {e}"))?;
    let request = format!(
        "POST /v1.47/containers/{id}/wait?condition={condition} HTTP/1.1\r\nHost: d\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("wait {id}: sending: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("wait {id}: reading: {e}"))?;
        if n == 0 {
            return Err(format!("wait {id}: connection closed before an answer"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    if !head.starts_with("HTTP/1.1 200") {
        let _ = stream.read_to_end(&mut raw).await;
        return Err(format!("wait {id}: {}", String::from_utf8_lossy(&raw)));
    }
    let id = id.to_string();
    Ok(async move {
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("wait {id}: reading: {e}"))?;
        // The JSON object inside the (possibly chunked) body.
        let body = String::from_utf8_lossy(&raw[head_end + 4..]).to_string();
        let json = body
            .find('{')
            .zip(body.rfind('}'))
            .map(|(a, b)| &body[a..=b])
            .ok_or_else(|| format!("wait {id}: no result in {body:?}"))?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("wait {id}: {e} in {json:?}"))?;
        if let Some(message) = value["Error"]["Message"].as_str() {
            return Err(format!("wait {id}: {message}"));
        }
        value["StatusCode"]
            .as_i64()
            .ok_or_else(|| format!("wait {id}: no StatusCode in {json:?}"))
    })
}

/// Mount points under `root` (from /proc/self/mountinfo, octal escapes decoded).
pub fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", root.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| m.starts_with(&prefix) || m == &prefix[..prefix.len() - 1])
        .collect()
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Cgroup directories left for any of `ids` under /sys/fs/cgroup/*/strata/ (v1 hierarchies)
/// or /sys/fs/cgroup/strata/ (v2).
pub fn leftover_cgroups(ids: &[String]) -> Vec<String> {
    let mut parents = vec![std::path::PathBuf::from("/sys/fs/cgroup/strata")];
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        parents.push(entry.path().join("strata"));
    }
    let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut left = Vec::new();
    for parent in parents {
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if ids.contains(entry.file_name().to_string_lossy().as_ref()) {
                left.push(entry.path().display().to_string());
            }
        }
    }
    left
}
