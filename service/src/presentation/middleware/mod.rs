//! The middleware stack, outermost first (see `crate::app::build_router`):
//!
//! 1. `request_id`: take or make the request id, open the request span, log
//!    one line per request, echo the id.
//! 2. `security_headers`: HSTS, CSP, frame, sniffing, referrer and
//!    permissions policies on every response, errors included.
//! 3. `timeout`: a deadline for the whole request.
//! 4. `body_limit`: header and body size limits (413 with or without
//!    `Content-Length`).
//! 5. `rate_limit`: per user, else per client address.
//! 6. `csrf`: signed double-submit for cookie-authenticated unsafe methods.
//! 7. `auth`: verify the bearer or cookie token; handlers then take the
//!    identity through the `AuthUser` extractor.
//!
//! Each layer checks what it is responsible for itself and trusts nothing an
//! outer layer decided. Each module also offers its layer on its own, as
//! axum middleware, for its tests; the service runs them all through
//! `stack`, in one service.

pub mod auth;
pub mod body_limit;
pub mod csrf;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
pub mod stack;
pub mod timeout;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::presentation::cookies;

/// Where a request's credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer`.
    Header,
    /// The `access_token` cookie.
    Cookie,
}

/// An `Authorization` header that is present but not `Bearer <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization;

/// The credential a request carries: the `Authorization` header wins over the
/// cookie. `Err` when the header is present but not a well-formed bearer.
pub fn credential(
    headers: &HeaderMap,
) -> Result<Option<(&str, CredentialSource)>, MalformedAuthorization> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        // UTF-8, not `HeaderValue::to_str`'s visible-ASCII check: the same
        // answer for every token that can verify (they are base64url), and
        // `from_utf8` checks a word at a time where `to_str` goes byte by
        // byte, on a header three layers read.
        let text = std::str::from_utf8(value.as_bytes()).map_err(|_| MalformedAuthorization)?;
        let (scheme, token) = text.split_once(' ').ok_or(MalformedAuthorization)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(MalformedAuthorization);
        }
        return Ok(Some((token.trim(), CredentialSource::Header)));
    }
    Ok(cookies::get(headers, cookies::ACCESS_TOKEN).map(|token| (token, CredentialSource::Cookie)))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A one-route app for testing one layer at a time.
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::{Request, Response};
    use tower::ServiceExt as _;

    pub(crate) async fn call(router: axum::Router, request: Request<Body>) -> Response<Body> {
        router.oneshot(request).await.unwrap()
    }

    pub(crate) async fn body_json(response: Response<Body>) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}
