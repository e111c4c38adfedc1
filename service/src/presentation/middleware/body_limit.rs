//! Layer 4: size limits. Headers beyond a total size or count get 431. A body
//! announced larger than the limit gets 413 before it is read; every body,
//! announced or chunked, is also wrapped in a counting limiter, so reading
//! past the limit fails and the JSON extractor turns that into the same 413.
//! hyper's own header limit (about 400 KiB) still applies below this one and
//! answers a bare 431 for headers that do not even parse.

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http_body_util::Limited;

use crate::presentation::error::ApiError;

/// The limits enforced here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest body, in bytes (1 MiB by default).
    pub body_bytes: usize,
    /// Largest total of header names and values, in bytes.
    pub header_bytes: usize,
    /// Most headers.
    pub header_count: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            header_bytes: 16 * 1024,
            header_count: 64,
        }
    }
}

/// Refuses a request whose headers or announced body are too large, and
/// otherwise wraps its body in a counting limiter (in place: the request is
/// not moved, it is large).
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once
pub fn check(limits: SizeLimits, request: &mut Request) -> Result<(), Response> {
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.header_count || header_bytes > limits.header_bytes {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "request headers must be at most {} bytes in at most {} fields",
                limits.header_bytes, limits.header_count
            ),
        )
        .into_response());
    }

    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let Some(length) = length
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_content_length",
                "invalid Content-Length",
            )
            .into_response());
        };
        if length > limits.body_bytes as u64 {
            return Err(ApiError::payload_too_large(limits.body_bytes).into_response());
        }
    }

    // The announced length may lie and chunked bodies announce nothing:
    // count. A body already known to be empty (a GET, `Content-Length: 0`)
    // has nothing to count.
    if !request.body().is_end_stream() {
        let body = std::mem::take(request.body_mut());
        *request.body_mut() = Body::new(Limited::new(body, limits.body_bytes));
    }
    Ok(())
}

/// This layer alone, as `from_fn_with_state` middleware; the service runs
/// `check` as part of `super::stack`.
pub async fn layer(State(limits): State<SizeLimits>, mut request: Request, next: Next) -> Response {
    match check(limits, &mut request) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::extract::ApiJson;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::Router;
    use axum::routing::post;

    fn app() -> Router {
        let limits = SizeLimits {
            body_bytes: 64,
            header_bytes: 512,
            header_count: 8,
        };
        Router::new()
            .route(
                "/echo",
                post(|ApiJson(value): ApiJson<serde_json::Value>| async move { value.to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(limits, layer))
    }

    fn json_request(body: Body, length: Option<usize>) -> Request {
        let mut builder =
            axum::http::Request::post("/echo").header(header::CONTENT_TYPE, "application/json");
        if let Some(length) = length {
            builder = builder.header(header::CONTENT_LENGTH, length);
        }
        builder.body(body).unwrap()
    }

    #[tokio::test]
    async fn announced_and_unannounced_oversize_bodies_get_413() {
        let big = format!("\"{}\"", "a".repeat(100));
        let announced = call(
            app(),
            json_request(Body::from(big.clone()), Some(big.len())),
        )
        .await;
        assert_eq!(announced.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body_json(announced).await["error"]["code"],
            "payload_too_large"
        );

        // A streamed body has no Content-Length, like a chunked upload.
        let chunks = futures_util::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"0123456789"))),
        );
        let streamed = call(app(), json_request(Body::from_stream(chunks), None)).await;
        assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body_json(streamed).await["error"]["code"],
            "payload_too_large"
        );

        let small = call(app(), json_request(Body::from("[1,2]"), Some(5))).await;
        assert_eq!(small.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn too_many_or_too_large_headers_get_431() {
        let mut builder = axum::http::Request::post("/echo");
        for idx in 0..9 {
            builder = builder.header(format!("x-h{idx}"), "v");
        }
        let response = call(app(), builder.body(Body::empty()).unwrap()).await;
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );

        let huge = axum::http::Request::post("/echo")
            .header("x-big", "a".repeat(600))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            call(app(), huge).await.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
