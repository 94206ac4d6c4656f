//! Request ids: every response carries `X-Request-Id` (the client's own when it sent a sane
//! one, else a new one), every log line of the request carries it, and a job keeps the id of
//! the upload that created it.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// `X-Request-Id`.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being handled (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Whether a client's id can be kept as it is: 1 to 128 characters from `A-Z a-z 0-9 - _ . : /
/// + =` (UUIDs, ULIDs, trace ids, base64), nothing that could break a log line.
pub fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// The middleware: picks the id, runs the request inside a `request` span that names it, and
/// sets the response header.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_others_replaced() {
        for ok in [
            "a",
            "3f2c9a1e-8d7b-4c6a-9e5f-0a1b2c3d4e5f",
            "01HZX3K9Q8W7E6R5T4Y3U2I1O0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "dGVzdA==",
        ] {
            assert!(is_sane(ok), "{ok}");
        }
        let long = "x".repeat(129);
        for bad in ["", "has space", "new\nline", "quote\"", "é", long.as_str()] {
            assert!(!is_sane(bad), "{bad:?}");
        }
    }
}
