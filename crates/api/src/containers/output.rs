//! A container's output as clients read it: `logs` (the json-file log, optionally
//! followed) and `attach` (the hijacked connection `docker run` reads a container's output
//! from and writes its stdin to). Both read the log the monitor writes, so output is never
//! lost between the client's attach and the container's start, nor after a `--rm`
//! container's removal (the log stays open).
//!
//! Without a terminal each chunk is framed with Docker's 8-byte header (stream 1 stdout,
//! 2 stderr, then the big-endian length); with one, output is raw.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use strata_engine::container::logs::{LogEntry, LogReader};
use strata_engine::daemon::{Daemon, Monitors};
use strata_engine::State as RunState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;

use super::record::{record, POLL};
use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};
use crate::stream::{blocking_body, frame, relay, upgrade, wants_upgrade, MULTIPLEXED, RAW};

/// When a follower stops reading.
#[derive(Clone, Copy, Debug)]
enum End {
    /// After what is written now (`logs` without `follow`).
    Now,
    /// When the container is not running (`logs -f`).
    Stopped,
    /// When the run after `finished_at` ended (an attach before or during a run).
    NextExit { finished_at: Option<i64> },
}

/// What a follower sends, and how.
struct Follow {
    id: String,
    log: LogReader,
    framed: bool,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    /// Unix seconds: entries before `since` or after `until` are skipped.
    since: Option<f64>,
    until: Option<f64>,
    end: End,
}

impl Follow {
    /// The bytes of `entry` as the client receives them (`None` if filtered out).
    fn encode(&self, entry: &LogEntry) -> Option<Vec<u8>> {
        let (wanted, stream) = if entry.is_stderr() {
            (self.stderr, 2u8)
        } else {
            (self.stdout, 1u8)
        };
        if !wanted || !self.in_window(&entry.time) {
            return None;
        }
        let mut data = Vec::with_capacity(entry.log.len() + 48);
        if self.timestamps {
            data.extend_from_slice(entry.time.as_bytes());
            data.push(b' ');
        }
        data.extend_from_slice(entry.log.as_bytes());
        if !self.framed {
            return Some(data);
        }
        Some(frame(stream, &data))
    }

    fn in_window(&self, time: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(time) else {
            return true;
        };
        let t = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// Sends entries as they come until [`End`]; stops early when `send` fails (the client
    /// went away).
    fn run(
        mut self,
        daemon: &Daemon,
        monitors: &Monitors,
        first: Vec<LogEntry>,
        send: &mut dyn FnMut(Vec<u8>) -> std::io::Result<()>,
    ) -> ApiResult<()> {
        let mut entries = first;
        loop {
            let chunk: Vec<u8> = entries
                .iter()
                .filter_map(|e| self.encode(e))
                .flatten()
                .collect();
            if !chunk.is_empty() && send(chunk).is_err() {
                return Ok(());
            }
            let mark = monitors.ended_count();
            let done = match self.end {
                End::Now => true,
                end => {
                    let now = daemon.with_engine(|e| record(e, &self.id))?;
                    match (end, now) {
                        (_, None) => true,
                        (End::Stopped, Some(c)) => c.state != RunState::Running,
                        (End::NextExit { finished_at }, Some(c)) => {
                            c.state != RunState::Running && c.finished_at != finished_at
                        }
                        (End::Now, _) => true,
                    }
                }
            };
            if done {
                // The monitor drained the streams before recording the exit: this read
                // gets the last lines.
                let last: Vec<u8> = self
                    .log
                    .read_new()?
                    .iter()
                    .filter_map(|e| self.encode(e))
                    .flatten()
                    .collect();
                if !last.is_empty() {
                    let _ = send(last);
                }
                return Ok(());
            }
            // Woken at once when a monitor ends: the end of a `--rm` container is its
            // monitor's exit, which also answers the client's `wait`.
            monitors.wait_after(mark, POLL);
            entries = self.log.read_new()?;
        }
    }
}

fn seconds(query: &Query, key: &str) -> ApiResult<Option<f64>> {
    match query.get(key).filter(|v| !v.is_empty() && *v != "0") {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}: give Unix seconds"))),
    }
}

/// `GET /containers/{id}/logs?stdout=1&stderr=1&follow=1&tail=N&timestamps=1&since=&until=`.
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Response> {
    let (stdout, stderr) = (query.flag("stdout"), query.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match query.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("invalid tail {n:?}: give a number or all"))
        })?),
    };
    let (since, until) = (seconds(&query, "since")?, seconds(&query, "until")?);
    let (id, tty, path) = state
        .daemon
        .run(move |e| {
            let c = e.containers().get(&id)?;
            let tty = e.containers().config(&c)?.tty;
            Ok((c.id.clone(), tty, e.containers().log_path(&c)))
        })
        .await?;
    let follow = Follow {
        id,
        log: LogReader::new(path),
        framed: !tty,
        stdout,
        stderr,
        timestamps: query.flag("timestamps"),
        since,
        until,
        end: if query.flag("follow") {
            End::Stopped
        } else {
            End::Now
        },
    };
    let daemon = state.daemon.clone();
    let monitors = state.daemon.monitors.clone();
    blocking_body(if tty { RAW } else { MULTIPLEXED }, move |out| {
        let mut follow = follow;
        let first = match tail {
            Some(n) => follow.log.tail(n)?,
            None => follow.log.read_new()?,
        };
        follow.run(&daemon, &monitors, first, &mut |chunk| {
            out.write_all(&chunk)?;
            out.flush()
        })
    })
    .await
}

/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&logs=0`: with
/// `Upgrade: tcp`, answers 101 and turns the connection into the container's streams (its
/// output until it exits, our input into its stdin); without, streams the output as the
/// body.
pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
    mut req: Request,
) -> ApiResult<Response> {
    let logs = query.flag("logs");
    let (c, config, mut log) = state
        .daemon
        .run(move |e| {
            let c = e.containers().get(&id)?;
            let config = e.containers().config(&c)?;
            // Opened now: a `--rm` container's log is read to its end even once removed.
            let log = LogReader::create(e.containers().log_path(&c))?;
            Ok((c, config, log))
        })
        .await?;
    if config.tty {
        return attach_terminal(state, c, &query, req);
    }
    let first = tokio::task::spawn_blocking(move || {
        let entries = log.read_new();
        (log, entries)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (log, entries) = first;
    let first = if logs { entries? } else { Vec::new() };
    let stdin = query.flag("stdin") && config.open_stdin;
    if stdin && c.state != RunState::Running {
        state.daemon.expect_stdin_attach(&c.id);
    }
    let follow = Follow {
        id: c.id.clone(),
        log,
        framed: true,
        stdout: query.flag("stdout"),
        stderr: query.flag("stderr"),
        timestamps: false,
        since: None,
        until: None,
        end: if query.flag("stream") {
            End::NextExit {
                finished_at: if c.state == RunState::Running {
                    None
                } else {
                    c.finished_at
                },
            }
        } else {
            End::Now
        },
    };
    let fifo = stdin.then(|| state_fifo(&c.id, &state));
    let upgraded = wants_upgrade(req.headers());
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let daemon = state.daemon.clone();
    let monitors = state.daemon.monitors.clone();
    tokio::task::spawn_blocking(move || {
        let result = follow.run(&daemon, &monitors, first, &mut |chunk| {
            tx.blocking_send(Bytes::from(chunk))
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        });
        if let Err(e) = result {
            tracing::warn!("attach output: {e}");
        }
    });
    if !upgraded {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
        let mut response = Body::from_stream(stream).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(MULTIPLEXED));
        return Ok(response);
    }
    Ok(upgrade(&mut req, "attach", MULTIPLEXED, move |io| {
        relay_to_fifo(io, rx, fifo)
    }))
}

/// The stdin FIFO of container `id` (the engine creates it at start).
fn state_fifo(id: &str, state: &AppState) -> PathBuf {
    state
        .daemon
        .options()
        .root
        .join("containers")
        .join(id)
        .join("stdin")
}

/// Copies the output to the client until it ends, and the client's input into the
/// container's stdin FIFO (closed, so the container sees end of input, when the client
/// half-closes).
async fn relay_to_fifo<IO>(io: IO, output: mpsc::Receiver<Bytes>, fifo: Option<PathBuf>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    relay(io, output, Duration::ZERO, |mut reader| {
        fifo.map(|fifo| {
            tokio::spawn(async move {
                let Some(mut pipe) = open_fifo(&fifo).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if pipe.write_all(&buf[..n]).await.is_err() {
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

/// Opens the stdin FIFO for writing once the monitor has opened its end (it is created at
/// start, possibly after the attach); gives up after a minute.
async fn open_fifo(fifo: &std::path::Path) -> Option<tokio::net::unix::pipe::Sender> {
    for _ in 0..6000 {
        match tokio::net::unix::pipe::OpenOptions::new().open_sender(fifo) {
            Ok(sender) => return Some(sender),
            // ENXIO: no reader yet; ENOENT: not created yet.
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
    tracing::warn!("no container read {} within a minute", fifo.display());
    None
}

/// `attach` to a container with a terminal: raw output, input as typed; only upgraded.
fn attach_terminal(
    state: AppState,
    c: strata_engine::Container,
    query: &Query,
    mut req: Request,
) -> ApiResult<Response> {
    if !wants_upgrade(req.headers()) {
        return Err(ApiError::bad_request(
            "attaching to a container with a terminal needs an upgraded connection (Upgrade: tcp)",
        ));
    }
    if c.state != RunState::Running {
        // Its monitor holds the output for us until we connect.
        state.daemon.expect_stdin_attach(&c.id);
    }
    let stdin = query.flag("stdin");
    Ok(upgrade(&mut req, "attach", RAW, move |io| {
        super::terminal::relay(state, c, io, stdin)
    }))
}
