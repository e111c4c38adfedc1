//! Layer 6: CSRF protection for cookie-authenticated unsafe requests. A
//! browser attaches cookies to cross-site requests but cannot make a
//! cross-site page read our `csrf_token` cookie or set a custom header, so an
//! unsafe request authenticated by the `access_token` cookie must echo the
//! cookie's signed token in `X-CSRF-Token`. Requests with an `Authorization`
//! header are exempt: a browser never adds that header cross-site.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::app::AppState;
use crate::application::csrf::CsrfTokens;
use crate::presentation::cookies;
use crate::presentation::error::ApiError;
use crate::presentation::middleware::{CredentialSource, credential};

/// The header that carries the token back.
pub static HEADER: HeaderName = HeaderName::from_static("x-csrf-token");
/// The secret the tokens are signed with.
// portcullis:allow rust-hardcoded-password the name of the secret file, not its value
pub const SIGNING_KEY_SECRET: &str = "csrf_signing_key";

/// The CSRF signer, with the current key from the secrets provider.
pub fn tokens(state: &AppState) -> Result<CsrfTokens, ApiError> {
    let key = state
        .secrets
        .get(SIGNING_KEY_SECRET)
        .map_err(|err| ApiError::internal(format!("CSRF key: {err}")))?;
    if key.expose().len() < 32 {
        return Err(ApiError::internal("CSRF key shorter than 32 bytes"));
    }
    Ok(CsrfTokens::new(&key))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses (403) a cookie-authenticated unsafe request whose
/// `X-CSRF-Token` header does not carry the signed token of its
/// `csrf_token` cookie; lets every other request through.
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once
pub fn check(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<(), Response> {
    if is_safe(method) {
        return Ok(());
    }
    let is_cookie_authenticated =
        matches!(credential(headers), Ok(Some((_, CredentialSource::Cookie))));
    if !is_cookie_authenticated {
        return Ok(());
    }

    let header = headers.get(&HEADER).and_then(|value| value.to_str().ok());
    let cookie = cookies::get(headers, cookies::CSRF_TOKEN);
    let verdict = tokens(state).and_then(|csrf| {
        csrf.verify(header, cookie, crate::app::now_secs())
            .map_err(ApiError::from)
    });
    verdict.map_err(|err| {
        tracing::info!(code = err.code(), "CSRF check failed");
        err.into_response()
    })
}

/// This layer alone, as `from_fn_with_state` middleware; the service runs
/// `check` as part of `super::stack`.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::app::testing::state;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::routing::post;

    async fn post_with(headers: &[(&str, String)]) -> (StatusCode, serde_json::Value) {
        let state = state().await;
        let app = Router::new()
            .route("/x", post(|| async { axum::Json(serde_json::json!({})) }))
            .layer(axum::middleware::from_fn_with_state(state, layer));
        let mut builder = axum::http::Request::post("/x");
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let response = call(app, builder.body(Body::empty()).unwrap()).await;
        (response.status(), body_json(response).await)
    }

    #[tokio::test]
    async fn cookie_requests_need_a_matching_signed_token() {
        let state = state().await;
        let token = tokens(&state)
            .unwrap()
            .issue(crate::app::now_secs())
            .unwrap();
        let cookie = |csrf: &str| {
            (
                header::COOKIE.as_str(),
                format!("access_token=t; csrf_token={csrf}"),
            )
        };

        let (status, body) = post_with(&[cookie(&token)]).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_missing"))
        );

        let (status, body) = post_with(&[cookie(&token), ("x-csrf-token", "other".into())]).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_mismatch"))
        );

        let (status, _) = post_with(&[cookie(&token), ("x-csrf-token", token.clone())]).await;
        assert_eq!(status, StatusCode::OK);

        // Bearer requests are not exposed to CSRF.
        let (status, _) = post_with(&[("authorization", "Bearer t".into())]).await;
        assert_eq!(status, StatusCode::OK);
    }
}
