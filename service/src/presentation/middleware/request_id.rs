//! Layer 1: the request id. A client's `X-Request-ID` is kept when it is
//! well-formed (1 to 64 characters of `[A-Za-z0-9._-]`), otherwise one is
//! made. It is echoed in the response, put in every error body, and bound to
//! the request's tracing span, so every log line of the request carries it.
//! This layer also writes the one access-log line per request: request id,
//! user id, route, status and latency, and the internal detail of a 5xx. No
//! header values, bodies, tokens or cookies are logged.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::presentation::error::ErrorDetail;

/// The header carrying the id.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn is_well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn generate() -> String {
    let mut bytes = [0u8; 16];
    // Randomness failing is not worth failing a request over: fall back to a
    // time-based id, which is unique enough for correlation.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return uuid::Uuid::now_v7().simple().to_string();
    }
    hex::encode(bytes)
}

/// The middleware.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(generate, str::to_owned);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(HEADER.clone(), value);
    }

    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        user_id = tracing::field::Empty,
    );

    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;

    let status = response.status().as_u16();
    let _entered = span.enter();
    match response.extensions_mut().remove::<ErrorDetail>() {
        Some(ErrorDetail(detail)) if status >= 500 => {
            tracing::error!(status, latency_ms, %detail, "request failed");
        }
        _ if status >= 500 => tracing::error!(status, latency_ms, "request failed"),
        _ => tracing::info!(status, latency_ms, "request completed"),
    }

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::error::ApiError;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;

    fn app() -> Router {
        Router::new()
            .route("/ok", get(|| async { current().unwrap_or_default() }))
            .route(
                "/fail",
                get(|| async { ApiError::new(StatusCode::BAD_REQUEST, "bad", "bad") }),
            )
            .layer(axum::middleware::from_fn(layer))
    }

    #[tokio::test]
    async fn keeps_a_well_formed_id_and_binds_it() {
        let request = axum::http::Request::get("/ok")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap();
        let response = call(app(), request).await;
        assert_eq!(response.headers()["x-request-id"], "abc-123");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"abc-123");
    }

    #[tokio::test]
    async fn replaces_a_malformed_id_and_puts_it_in_errors() {
        let request = axum::http::Request::get("/fail")
            .header("x-request-id", "<script>alert(1)</script>")
            .body(Body::empty())
            .unwrap();
        let response = call(app(), request).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(is_well_formed(&id) && id.len() == 32);
        assert_eq!(
            body_json(response).await["error"]["request_id"],
            id.as_str()
        );
    }

    #[test]
    fn well_formed_ids() {
        assert!(is_well_formed("a.b_c-1"));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(65)));
        assert!(!is_well_formed("a b"));
    }
}
