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

/// Gives a response's headers the security headers, with these values
/// whatever the handler set, and removes the ones that advertise the
/// server. Every other header the response had is kept, in order.
///
/// The response's map is replaced by a copy of one prepared with these
/// headers, and its own headers are moved in after them: copying the
/// prepared map copies no bytes and hashes nothing, where inserting nine
/// headers into the handler's map hashed each and grew the map on the way.
pub fn apply(headers: &mut HeaderMap) {
    let own = std::mem::replace(headers, PREPARED.clone());
    let mut name = None;
    for (next, value) in own {
        // `None`: another value of the header before.
        if next.is_some() {
            name = next;
        }
        let Some(name) = name.as_ref() else { continue };
        let is_ours = PREPARED.contains_key(name);
        // hyper sends no Server header; this keeps a handler or a future
        // layer from adding one.
        let is_advertising = name == header::SERVER || name == POWERED_BY;
        if !is_ours && !is_advertising {
            headers.append(name.clone(), value);
        }
    }
}

/// `HEADERS`, as a map, parsed once: a clone of it copies no header bytes.
static PREPARED: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut map = HeaderMap::with_capacity(HEADERS.len());
    for &(name, value) in HEADERS {
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
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

    #[test]
    fn the_handlers_headers_are_kept_and_ours_win() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=600"),
        );
        headers.append(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("ALLOWALL"),
        );
        headers.append(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        headers.insert(header::SERVER, HeaderValue::from_static("leaky/1.0"));
        headers.insert(POWERED_BY.clone(), HeaderValue::from_static("php"));
        apply(&mut headers);

        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let cookies: Vec<_> = headers.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        for (name, value) in HEADERS {
            let values: Vec<_> = headers.get_all(*name).iter().collect();
            assert_eq!(values, [*value], "{name}");
        }
        assert!(!headers.contains_key(header::SERVER));
        assert!(!headers.contains_key(&POWERED_BY));
        assert_eq!(headers.len(), HEADERS.len() + 3);

        // Applying twice changes nothing.
        let once = headers.clone();
        apply(&mut headers);
        assert_eq!(headers, once);
    }
}
