//! Layer 2: security headers on every response, errors included. The API
//! serves JSON only, so the Content-Security-Policy forbids everything; a
//! browser that renders a response as a page (after a content-type mix-up)
//! can run nothing and frame nothing.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;

/// The headers and their values, in the order they are set.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains; preload",
    ),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    // Responses carry one user's data: no shared or browser cache may keep them.
    ("cache-control", "no-store"),
];

/// Sets the headers on a response's header map and removes the ones that
/// advertise the server.
pub fn apply(headers: &mut HeaderMap) {
    headers.reserve(PREPARED.len());
    for (name, value) in PREPARED.iter() {
        headers.insert(name.clone(), value.clone());
    }
    // hyper sends no Server header; this keeps a future layer from adding one.
    headers.remove(header::SERVER);
    headers.remove(&POWERED_BY);
}

/// `HEADERS`, parsed once: clones of these copy no bytes.
static PREPARED: LazyLock<Vec<(HeaderName, HeaderValue)>> = LazyLock::new(|| {
    HEADERS
        .iter()
        .map(|&(name, value)| {
            (
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        })
        .collect()
});

static POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// This layer alone, as a response mapper (it cannot fail and sees every
/// response); the service runs `apply` as part of `super::stack`.
pub async fn layer(mut response: Response) -> Response {
    apply(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::middleware::test_support::call;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;

    #[tokio::test]
    async fn every_response_gets_the_headers_and_loses_server() {
        let app = Router::new()
            .route(
                "/ok",
                get(|| async { ([(header::SERVER, "leaky/1.0")], "ok") }),
            )
            .route("/err", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .layer(axum::middleware::map_response(layer));
        for path in ["/ok", "/err", "/missing"] {
            let response = call(
                app.clone(),
                axum::http::Request::get(path).body(Body::empty()).unwrap(),
            )
            .await;
            for (name, value) in HEADERS {
                assert_eq!(response.headers()[*name], *value, "{path} {name}");
            }
            assert!(response.headers().get(header::SERVER).is_none());
        }
    }
}
