//! Bodies that flow between the async server and the synchronous engine: a request body
//! read as a `std::io::Read` on a blocking thread (import, load), a response written by a
//! blocking `std::io::Write` (save, export), and Docker's jsonmessage lines (`{"status":
//! ...}`, `{"stream": ...}`, `{"error": ...}`) for progress streams. And hijacked
//! connections (attach, exec start): the `101 Upgrade: tcp` answer, the relay of a
//! process's output and input over the connection, and Docker's 8-byte stream frames.

use std::future::Future;
use std::io::{self, Read, Write};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};

/// A request body as a blocking reader (use it only on a blocking thread).
pub fn blocking_reader(body: Body) -> impl Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    tokio_util::io::SyncIoBridge::new(reader)
}

type Chunk = Result<Bytes, io::Error>;

/// A blocking writer whose bytes become a response body, in chunks of up to 64 KiB. A
/// client that went away makes writes fail (`BrokenPipe`), so the work stops.
pub struct BodyWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    sent: bool,
}

const CHUNK: usize = 64 * 1024;

impl BodyWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.sent = true;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Ends the body with an error: the client sees the stream cut, not a clean end.
    fn abort(&mut self, message: &str) {
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(message.to_string())));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Runs `work` on a blocking thread writing the response body. The status and headers go
/// out with the first bytes; a failure before any byte is an ordinary error response (so
/// `docker save nosuch` gets a 404), one after is a cut stream.
pub async fn blocking_body<F>(content_type: &'static str, work: F) -> ApiResult<Response>
where
    F: FnOnce(&mut BodyWriter) -> ApiResult<()> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Chunk>(8);
    let task = tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter {
            tx,
            buf: Vec::new(),
            sent: false,
        };
        let mut result = work(&mut w);
        if result.is_ok() {
            result = w
                .send()
                .map_err(|e| ApiError::internal(format!("sending the response: {e}")));
        }
        if let Err(e) = &result {
            if w.sent {
                tracing::warn!("stream cut after its start: {e}");
                w.abort(&e.message);
            }
        }
        (result, w.sent)
    });
    let first = rx.recv().await;
    let rest = ReceiverStream::new(rx);
    let body = match first {
        Some(first) => {
            let stream = futures_util::stream::iter([first]).chain_rest(rest);
            Body::from_stream(stream)
        }
        None => {
            // Nothing was sent: the outcome decides the answer.
            let (result, _) = task
                .await
                .map_err(|e| ApiError::internal(format!("a streaming task failed: {e}")))?;
            result?;
            Body::empty()
        }
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("a valid response"))
}

trait ChainRest: futures_util::Stream + Sized {
    fn chain_rest<S: futures_util::Stream<Item = Self::Item>>(
        self,
        rest: S,
    ) -> futures_util::stream::Chain<Self, S> {
        futures_util::StreamExt::chain(self, rest)
    }
}

impl<S: futures_util::Stream> ChainRest for S {}

/// One jsonmessage line.
pub fn json_message(value: serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(&value).expect("JSON serialises");
    line.push(b'\n');
    Bytes::from(line)
}

/// `{"status": text}`.
pub fn status_line(text: &str) -> Bytes {
    json_message(serde_json::json!({ "status": text }))
}

/// `{"stream": text}`.
pub fn stream_line(text: &str) -> Bytes {
    json_message(serde_json::json!({ "stream": text }))
}

/// A finished jsonmessage stream as a 200 response.
pub fn json_lines(lines: Vec<Bytes>) -> Response {
    let body: Vec<u8> = lines.concat();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

/// Docker's media types of a hijacked or streamed container output: framed with
/// [`frame`] (no terminal), or the terminal's bytes as they come.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
pub const RAW: &str = "application/vnd.docker.raw-stream";

/// Docker's 8-byte header (stream 1 stdout or 2 stderr, three zero bytes, the big-endian
/// length), then the data.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(data.len() + 8);
    framed.extend_from_slice(&[stream, 0, 0, 0]);
    framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
    framed.extend_from_slice(data);
    framed
}

/// Whether the client asks to take the connection over (`Upgrade: tcp`), as the docker
/// CLI does for `attach` and exec `start`.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"))
}

/// Answers `101 Switching Protocols` with `Upgrade: tcp` and the stream's `content_type`;
/// once hyper hands the connection over, `relay` runs on it (`what` names the request in
/// the warning when the switch fails).
pub fn upgrade<F, Fut>(
    req: &mut Request,
    what: &'static str,
    content_type: &'static str,
    relay: F,
) -> Response
where
    F: FnOnce(TokioIo<Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => relay(TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!("{what} upgrade failed: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "Upgrade"),
            (header::UPGRADE, "tcp"),
            (header::CONTENT_TYPE, content_type),
        ],
    )
        .into_response()
}

/// Relays a hijacked connection: `input` gets the client's side to read from (on a task of
/// its own, if it starts one), while `output` goes to the client until it ends or the
/// client goes away, after `settle` (see exec's `HIJACK_SETTLE`); then our side is shut
/// and the input task stopped.
pub async fn relay<IO>(
    io: IO,
    mut output: mpsc::Receiver<Bytes>,
    settle: Duration,
    input: impl FnOnce(ReadHalf<IO>) -> Option<JoinHandle<()>>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(io);
    let input_task = input(reader);
    if !settle.is_zero() {
        tokio::time::sleep(settle).await;
    }
    while let Some(chunk) = output.recv().await {
        if writer.write_all(&chunk).await.is_err() || writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
    if let Some(task) = input_task {
        task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_length() {
        let f = frame(2, b"abc");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
