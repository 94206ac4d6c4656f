//! Answers given before an upload's body is read still reach the client.
//!
//! An upload can be refused before its body is read (no token, the hourly limit, no free
//! upload slot). hyper then closes the connection with the body's bytes still arriving; the
//! kernel answers them with a reset, which can reach the client before the answer does, so a
//! browser's `fetch` (or any HTTP client still sending) reports a network error instead of the
//! 401 or 429 (RFC 9112, section 9.6). The upload routes therefore read and discard whatever the
//! handler left of the body, up to the upload limit and for at most [`DRAIN_TIME`], before
//! answering. A body declared larger than the limit is not read: it is refused with 413 as it is.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

/// How long an answer waits for the rest of a body the handler did not read.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, shared between the handler and this layer, which reads what is left.
struct Shared(Arc<Mutex<Body>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Body> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.lock().size_hint()
    }
}

/// The middleware: runs the handler, then reads and drops what it left of the body (at most
/// `limit` bytes, for at most [`DRAIN_TIME`]) before the answer goes out.
pub async fn drain_unread(State(limit): State<u64>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = Arc::new(Mutex::new(body));
    let request = Request::from_parts(parts, Body::new(Shared(Arc::clone(&body))));
    let response = next.run(request).await;
    let mut rest = std::mem::take(&mut *Shared(body).lock());
    if !rest.is_end_stream() {
        let drain = async {
            let mut read = 0u64;
            while let Some(Ok(frame)) = rest.frame().await {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > limit {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    }
    response
}
