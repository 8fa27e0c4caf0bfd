//! Bodies that flow between the async server and the synchronous engine: a request body
//! read as a `std::io::Read` on a blocking thread (import, load), a response written by a
//! blocking `std::io::Write` (save, export), and Docker's jsonmessage lines (`{"status":
//! ...}`, `{"stream": ...}`, `{"error": ...}`) for progress streams.

use std::io::{self, Read, Write};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
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
