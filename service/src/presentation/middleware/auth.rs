//! Layer 7: authentication. The token comes from `Authorization: Bearer` or,
//! failing that, the `access_token` cookie, and is verified here (RS256 only,
//! keys from the JWKS, audience and issuer pinned). A request without a token
//! continues anonymous; a request with a bad one stops here with 401 (or 503
//! when the keys cannot be fetched). Handlers get the identity only through
//! the `AuthUser` extractor, which refuses a request this layer did not
//! authenticate, so a handler that needs a user cannot forget to ask.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::app::AppState;
use crate::application::auth::{AuthError, VerifiedToken};
use crate::domain::UserId;
use crate::presentation::error::ApiError;
use crate::presentation::middleware::credential;

/// The verified identity, put in the request extensions by this layer only.
#[derive(Debug, Clone)]
struct Authenticated(VerifiedToken);

/// Verifies the request's token, if it carries one, and records the
/// verified identity in the request for `AuthUser`. `Ok(None)`: anonymous.
/// A bad token is refused here with 401 (503 when the keys are unavailable).
#[allow(clippy::result_large_err)] // the refusal is the response itself, built once
pub async fn authenticate(
    state: &AppState,
    request: &mut Request,
) -> Result<Option<UserId>, Response> {
    let token = match credential(request.headers()) {
        Ok(Some((token, _))) => token,
        Ok(None) => return Ok(None),
        Err(_) => return Err(ApiError::from(AuthError::Malformed).into_response()),
    };

    match state.verifier.verify(token).await {
        Ok(verified) => {
            let user = verified.user.clone();
            request.extensions_mut().insert(Authenticated(verified));
            Ok(Some(user))
        }
        Err(err) => {
            tracing::info!(reason = %err, "token refused");
            Err(ApiError::from(err).into_response())
        }
    }
}

/// This layer alone, as `from_fn_with_state` middleware; the service runs
/// `authenticate` as part of `super::stack`.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match authenticate(&state, &mut request).await {
        Ok(_) => next.run(request).await,
        Err(refusal) => refusal,
    }
}

/// The authenticated user, as an extractor: the only way a handler learns who
/// is calling. The id is the verified token's `sub`, never anything the
/// client sent in the body, path or query.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The verified subject.
    pub id: UserId,
    /// The token's `exp`.
    pub expires_at: u64,
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(verified)) => Ok(Self {
                id: verified.user.clone(),
                expires_at: verified.expires_at,
            }),
            None => Err(AuthError::Missing.into()),
        }
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
    use axum::http::StatusCode;
    use axum::routing::get;

    async fn app() -> Router {
        let state = state().await;
        Router::new()
            .route(
                "/me",
                get(|user: AuthUser| async move { user.id.as_str().to_owned() }),
            )
            .route("/public", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(state, layer))
    }

    #[tokio::test]
    async fn anonymous_requests_reach_public_routes_only() {
        let public = call(
            app().await,
            axum::http::Request::get("/public")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(public.status(), StatusCode::OK);
        let me = call(
            app().await,
            axum::http::Request::get("/me").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(me).await["error"]["code"], "unauthenticated");
    }

    #[tokio::test]
    async fn bad_tokens_and_schemes_stop_here() {
        for value in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer not.a.jwt"] {
            let request = axum::http::Request::get("/public")
                .header("authorization", value)
                .body(Body::empty())
                .unwrap();
            let response = call(app().await, request).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value}");
        }
    }
}
