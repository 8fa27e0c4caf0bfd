//! Attaching to a container with a terminal (`docker run -it`): the client's hijacked
//! connection is relayed to the monitor's `attach.sock` (see `strata_engine::container::tty`):
//! raw terminal output back, input forwarded as data frames; `resize` sends the window size
//! on the same connection (or keeps it for the connection about to be made), so the first
//! client gets the terminal's output from its first byte.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use strata_engine::container::tty::FRAME_DATA;
use strata_engine::daemon::Daemon;
use strata_engine::{Container, State as RunState};
use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::sync::mpsc;

use super::record::{record, POLL};
use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::AppState;

/// `POST /containers/{id}/resize?h=ROWS&w=COLS`.
pub async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let size = |key: &str| -> ApiResult<u16> {
        let v = query.int(key)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::bad_request(format!("invalid {key} {v}")))
    };
    let (rows, cols) = (size("h")?, size("w")?);
    let c = super::record::container(&state, &id).await?;
    state.daemon.terminals.resize(&c.id, rows, cols);
    Ok(StatusCode::OK)
}

/// Connects to `c`'s terminal once its monitor offers it (the client may attach before
/// `start`); `None` if the run ended or never came within a minute.
fn connect(daemon: &Daemon, c: &Container) -> Option<UnixStream> {
    let finished_at = c.finished_at;
    for _ in 0..6000 {
        let now = daemon.with_engine(|e| -> crate::error::ApiResult<_> {
            let now = record(e, &c.id)?;
            let stream = match &now {
                Some(now) => e.containers().attach_terminal(now).ok(),
                None => None,
            };
            Ok((now, stream))
        });
        match now {
            Ok((_, Some(stream))) => return Some(stream),
            Ok((None, _)) | Err(_) => return None,
            Ok((Some(now), None)) => {
                if now.state != RunState::Running
                    && now.finished_at != finished_at
                    && now.finished_at.is_some()
                {
                    return None;
                }
            }
        }
        std::thread::sleep(POLL);
    }
    None
}

/// Relays the upgraded connection `io` and `c`'s terminal until the terminal ends.
pub async fn relay<IO>(state: AppState, c: Container, io: IO, stdin: bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let daemon = state.daemon.clone();
    let target = c.clone();
    let Ok(Some(stream)) = tokio::task::spawn_blocking(move || connect(&daemon, &target)).await
    else {
        return;
    };
    let Ok(input) = stream.try_clone() else {
        return;
    };
    let terminals = state.daemon.terminals.clone();
    terminals.attached(&c.id, input);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut output = stream;
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match output.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let input = |mut reader: ReadHalf<IO>| {
        stdin.then(|| {
            let terminals = terminals.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let (terminals, id, chunk) =
                                (terminals.clone(), id.clone(), buf[..n].to_vec());
                            let sent = tokio::task::spawn_blocking(move || {
                                terminals.send(&id, FRAME_DATA, &chunk)
                            })
                            .await;
                            if !matches!(sent, Ok(true)) {
                                return;
                            }
                        }
                    }
                }
            })
        })
    };
    crate::stream::relay(io, rx, Duration::ZERO, input).await;
    terminals.detached(&c.id);
}
