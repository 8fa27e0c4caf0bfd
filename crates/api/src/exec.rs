//! Exec: `POST /containers/{id}/exec` makes an instance, `POST /exec/{id}/start` runs it
//! (the connection hijacked with `Upgrade: tcp` as for attach: output framed with the 8-byte
//! header without a terminal, raw with one; input into its stdin or terminal), `GET
//! /exec/{id}/json` reports it (`Running`, `ExitCode`, `Pid`), `POST /exec/{id}/resize`
//! sizes its terminal. The process is the engine's exec (the runtime's own `exec` with the
//! container's spec); its exit code is recorded before the stream ends, so a client that
//! inspects the instance when its output ends (the docker CLI) reads the code.
//!
//! Instances live in the daemon's state ([`strata_engine::daemon::Execs`]), as Docker's do:
//! they do not outlive it.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, ProcessConfig};
use bytes::Bytes;
use serde_json::json;
use strata_engine::container::exec::ExecOptions;
use strata_engine::container::tty;
use strata_engine::daemon::{ExecRequest, Instance};
use strata_engine::State as RunState;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::params::{json_body, Query, MAX_JSON_BODY};
use crate::state::AppState;
use crate::stream::{frame, upgrade, wants_upgrade, MULTIPLEXED, RAW};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

fn instance(state: &AppState, id: &str) -> ApiResult<Arc<Instance>> {
    state
        .daemon
        .execs
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

/// `POST /containers/{id}/exec`: 201 `{"Id"}`; 409 if the container does not run.
async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let config: ExecConfig = crate::params::json_request(body).await?;
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let c = crate::containers::record::container(&state, &id).await?;
    if c.state != RunState::Running {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let exec_id = strata_sys::id::random_hex(32, "an exec ID")
        .map_err(|e| ApiError::from(strata_engine::Error::from(e)))?;
    let request = ExecRequest {
        cmd: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        working_dir: config.working_dir,
        user: config.user,
        tty: config.tty.unwrap_or(false),
        attach_stdin: config.attach_stdin.unwrap_or(false),
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
    };
    state.daemon.execs.insert(exec_id.clone(), c.id, request);
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))))
}

/// `GET /exec/{id}/json`.
async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExecInspectResponse>> {
    let i = instance(&state, &id)?;
    let run = i.run();
    let cmd = i.request.cmd.clone();
    let (entrypoint, arguments) = match cmd.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(Json(ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(String::new()),
        id: Some(i.id.clone()),
        running: Some(run.running),
        exit_code: run.exit_code,
        process_config: Some(ProcessConfig {
            privileged: Some(false),
            user: Some(i.request.user.clone().unwrap_or_default()),
            tty: Some(i.request.tty),
            entrypoint: Some(entrypoint),
            arguments: Some(arguments),
        }),
        open_stdin: Some(i.request.attach_stdin),
        open_stderr: Some(i.request.attach_stderr.unwrap_or(false)),
        open_stdout: Some(i.request.attach_stdout.unwrap_or(false)),
        container_id: Some(i.container_id.clone()),
        pid: Some(run.pid.unwrap_or(0)),
    }))
}

/// `POST /exec/{id}/resize?h=&w=`.
async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let i = instance(&state, &id)?;
    let size = |key: &str| -> ApiResult<u16> {
        let v = query.int(key)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::bad_request(format!("invalid {key} {v}")))
    };
    let (rows, cols) = (size("h")?, size("w")?);
    let master = i.run().master.clone();
    if let Some(master) = master {
        tty::set_size(&master, rows, cols)
            .map_err(|e| ApiError::internal(format!("resizing the exec's terminal: {e}")))?;
    }
    Ok(StatusCode::OK)
}

/// What a started exec gives the relay: output chunks (framed or raw, as the client reads
/// them) and, when input is wanted, where it goes.
struct Streams {
    output: mpsc::Receiver<Bytes>,
    input: Option<Box<dyn Write + Send>>,
}

/// `POST /exec/{id}/start` with `{"Detach", "Tty"}`.
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut req: Request,
) -> ApiResult<Response> {
    let i = instance(&state, &id)?;
    let headers = req.headers().clone();
    let body = std::mem::take(req.body_mut());
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
    let start: ExecStartConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        json_body(&bytes)?
    };
    {
        let mut run = i.run();
        if run.started {
            return Err(ApiError::conflict(format!(
                "exec instance {} has already been started",
                i.id
            )));
        }
        run.started = true;
        run.running = true;
    }
    let detach = start.detach.unwrap_or(false);
    let tty = i.request.tty || start.tty.unwrap_or(false);
    let instance = i.clone();
    let daemon = state.daemon.clone();
    let streams = tokio::task::spawn_blocking(move || {
        daemon.with_engine(|e| launch(e, &instance, tty, detach))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let streams = match streams {
        Ok(s) => s,
        Err(e) => {
            i.finish(126);
            return Err(e);
        }
    };
    if detach {
        return Ok(StatusCode::OK.into_response());
    }
    let content_type = if tty { RAW } else { MULTIPLEXED };
    if !wants_upgrade(&headers) {
        let stream = tokio_stream::wrappers::ReceiverStream::new(streams.output);
        let stream = tokio_stream::StreamExt::map(stream, Ok::<_, std::io::Error>);
        return Ok((
            [(header::CONTENT_TYPE, content_type)],
            Body::from_stream(stream),
        )
            .into_response());
    }
    Ok(upgrade(&mut req, "exec", content_type, move |io| {
        relay(io, streams)
    }))
}

/// How long a hijacked exec's output is held back after the upgrade (see [`relay`]).
const HIJACK_SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Starts the process; threads carry its output to the returned channel and record its
/// exit code (before the channel closes) when it ends.
fn launch(
    engine: &strata_engine::Engine,
    i: &Arc<Instance>,
    tty: bool,
    detach: bool,
) -> ApiResult<Streams> {
    let argv = i.request.cmd.clone();
    let options = ExecOptions {
        env: i.request.env.clone(),
        workdir: i.request.working_dir.clone().filter(|w| !w.is_empty()),
        user: i.request.user.clone().filter(|u| !u.is_empty()),
        tty,
        detach: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let want_stdin = i.request.attach_stdin && !detach;
    if tty && !detach {
        let terminal = engine
            .containers()
            .exec_terminal(&i.container_id, &argv, &options)?;
        let master = Arc::new(terminal.master);
        {
            let mut run = i.run();
            run.pid = Some(terminal.pid as i64);
            run.master = Some(master.clone());
        }
        let reader = master
            .try_clone()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let input = want_stdin
            .then(|| master.try_clone().ok())
            .flatten()
            .map(|f| Box::new(f) as Box<dyn Write + Send>);
        let instance = i.clone();
        let pid = terminal.pid;
        std::thread::spawn(move || {
            pump(reader, None, &tx);
            let code = match strata_runtime::wait_exit_code(pid) {
                Ok(code) => code as i64,
                Err(_) => 255,
            };
            instance.finish(code);
            drop(tx);
        });
        return Ok(Streams { output: rx, input });
    }
    let piped = |on: bool| {
        if on && !detach {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let io = strata_runtime::Io {
        stdin: piped(want_stdin),
        stdout: piped(i.request.attach_stdout.unwrap_or(true)),
        stderr: piped(i.request.attach_stderr.unwrap_or(true)),
    };
    let mut spawned = engine
        .containers()
        .spawn_exec(&i.container_id, &argv, &options, io)?;
    // The runtime writes the pid as it starts the process: for inspect, if soon enough.
    for _ in 0..20 {
        if let Some(pid) = spawned.pid() {
            i.run().pid = Some(pid as i64);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let stdout = spawned.process.child.stdout.take();
    let stderr = spawned.process.child.stderr.take();
    let input = spawned
        .process
        .child
        .stdin
        .take()
        .map(|s| Box::new(s) as Box<dyn Write + Send>);
    let instance = i.clone();
    std::thread::spawn(move || {
        let err_tx = tx.clone();
        let errors = stderr.map(|e| std::thread::spawn(move || pump(e, Some(2), &err_tx)));
        if let Some(out) = stdout {
            pump(out, Some(1), &tx);
        }
        if let Some(errors) = errors {
            let _ = errors.join();
        }
        let code = match spawned.wait() {
            Ok(code) => code as i64,
            Err(e) => {
                let code = e.exit_code() as i64;
                let message = format!("{e}\n");
                let _ = tx.blocking_send(Bytes::from(frame(2, message.as_bytes())));
                code
            }
        };
        instance.finish(code);
        drop(tx);
    });
    Ok(Streams { output: rx, input })
}

/// Copies `from` to `tx` until its end, framed for `stream` (raw when `None`).
fn pump(mut from: impl Read, stream: Option<u8>, tx: &mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            // EIO: a terminal whose last writer closed it.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = match stream {
                    Some(s) => Bytes::from(frame(s, &buf[..n])),
                    None => Bytes::copy_from_slice(&buf[..n]),
                };
                if tx.blocking_send(chunk).is_err() {
                    // The client went away: keep draining so the process is not blocked.
                    continue;
                }
            }
        }
    }
}

/// Relays the hijacked connection: output until the process ended (its code is recorded
/// by then), the client's input into the process until the client half-closes.
async fn relay<IO>(io: IO, streams: Streams)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let Streams { output, input } = streams;
    // Clients that read the 101 response through a buffered reader and then take the raw
    // socket (docker-py, over Python's http.client) lose whatever arrived with the headers.
    // Docker's exec takes long enough to start that its output comes later; a quick process
    // here can answer before the client has parsed the headers (docker-py's `exec_run` got
    // empty output about one time in two). Holding the output back a moment lets such
    // clients switch over first.
    crate::stream::relay(io, output, HIJACK_SETTLE, |mut reader| {
        input.map(|mut sink| {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            std::thread::spawn(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    if sink.write_all(&chunk).and_then(|()| sink.flush()).is_err() {
                        return;
                    }
                }
                // Dropped here: the process sees the end of its input.
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            })
        })
    })
    .await;
}
