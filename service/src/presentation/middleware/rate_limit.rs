//! Layer 5: rate limits per user, falling back to the client address for
//! anonymous requests (and for requests whose token does not verify).
//!
//! The user is taken from a *verified* token only: keying on an unverified
//! `sub` would let anyone spend another user's quota with a forged token, or
//! dodge their own by inventing subjects. This layer therefore asks the token
//! verifier itself rather than trusting anything the auth layer (which runs
//! later) will decide; the verifier remembers verified tokens briefly, so the
//! second verification of the same token costs a hash lookup.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::app::AppState;
use crate::application::rate_limit::{Decision, RateKey};
use crate::presentation::error::ApiError;
use crate::presentation::middleware::credential;

/// Paths never limited: probes must keep answering while a client is throttled.
const EXEMPT: &[&str] = &["/healthz", "/readyz"];

/// The key a request is counted under: the verified user, else the address.
pub async fn key_for(state: &AppState, token: Option<&str>, peer: Option<SocketAddr>) -> RateKey {
    if let Some(token) = token
        && let Ok(verified) = state.verifier.verify(token).await
    {
        return RateKey::User(verified.user);
    }
    // NOTE: the peer address is used as is; behind a reverse proxy, configure
    // the proxy to limit too, since this sees only the proxy's address.
    RateKey::Address(peer.map(|addr| addr.ip()))
}

/// Counts the request and refuses it (429 with `Retry-After`) when any limit
/// is spent, or (503) when the store cannot be asked.
///
/// Takes the parts it reads, not `&Request`: the body is not `Sync`, so a
/// reference to the request held across the verifier's `.await` would make
/// the caller's future not `Send`.
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once
pub async fn admit(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<(), Response> {
    if EXEMPT.contains(&path) {
        return Ok(());
    }
    let token = match credential(headers) {
        Ok(Some((token, _))) => Some(token),
        _ => None,
    };
    let key = key_for(state, token, peer).await;
    let decision = match state.rate_limits.check_at_once(&key, &state.rate_policy) {
        Some(decision) => Ok(decision),
        None => state.rate_limits.check(&key, &state.rate_policy).await,
    };
    match decision {
        Ok(Decision::Allowed) => Ok(()),
        Ok(Decision::Limited { retry_after }) => {
            tracing::info!(
                retry_after_ms = retry_after.as_millis() as u64,
                "rate limited"
            );
            Err(ApiError::rate_limited(retry_after).into_response())
        }
        Err(err) => {
            Err(
                ApiError::unavailable("rate_limit_unavailable", "retry later", err.to_string())
                    .into_response(),
            )
        }
    }
}

/// The address the connection came from, when the server recorded it.
pub fn peer(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// This layer alone, as `from_fn_with_state` middleware; the service runs
/// `admit` as part of `super::stack`.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = peer(&request);
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    match admit(&state, &path, &headers, peer).await {
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
    use axum::routing::get;

    #[tokio::test]
    async fn eleventh_request_in_a_second_gets_429_with_retry_after() {
        let state = state().await;
        let app = Router::new()
            .route("/x", get(|| async { "ok" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(state, layer));
        let request = || axum::http::Request::get("/x").body(Body::empty()).unwrap();
        for _ in 0..10 {
            assert_eq!(call(app.clone(), request()).await.status(), StatusCode::OK);
        }
        let limited = call(app.clone(), request()).await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body_json(limited).await["error"]["code"], "rate_limited");

        let probe = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(app, probe).await.status(), StatusCode::OK);
    }
}
