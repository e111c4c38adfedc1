//! The application state and the router. `build_router` is the one place the
//! middleware stack is assembled; `main` only binds, serves and shuts down,
//! and tests call `build_router` directly.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::application::auth::TokenVerifier;
use crate::application::messages::MessageService;
use crate::application::rate_limit::{RateLimitPolicy, RateLimitStore};
use crate::application::secrets::SecretsProvider;
use crate::presentation::middleware::body_limit::SizeLimits;
use crate::presentation::middleware::stack::SecureLayer;
use crate::presentation::{openapi, routes};

/// Everything a request may need, shared by all of them: one reference to
/// `AppServices`. axum clones the state for every request's handler, so a
/// clone is one reference count (on a line both cores share), not one per
/// service.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    /// The state over `services`.
    pub fn new(services: AppServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;

    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The services and settings behind `AppState`.
#[derive(Debug)]
pub struct AppServices {
    /// The messages use cases.
    pub messages: MessageService,
    /// Access-token verification.
    pub verifier: TokenVerifier,
    /// Secrets (the CSRF key), cached.
    pub secrets: Arc<dyn SecretsProvider>,
    /// Where rate-limit state lives.
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// The limits.
    pub rate_policy: Arc<RateLimitPolicy>,
    /// Header and body size limits.
    pub size_limits: SizeLimits,
    /// Deadline of one request.
    pub request_timeout: Duration,
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0)
}

/// The routes with the full middleware stack.
pub fn build_router(state: AppState) -> Router {
    with_middleware(bare_router(state.clone()), state)
}

/// Wraps `routes` in the whole middleware stack. `build_router` is this over
/// the service's routes; tests use it over routes of their own (a handler
/// that panics, say).
pub fn with_middleware(routes: Router, state: AppState) -> Router {
    // Outermost first (`presentation::middleware::stack` runs them in this
    // order, one module each):
    //  1. request id, span and access log (sees every response, so logs all)
    //  2. Authorization and Cookie marked sensitive, so nothing that prints
    //     headers can print them (tower-http, run first of all, before 1)
    //  3. security headers on every response, errors from every layer below
    //  3b. a panic anywhere below becomes the JSON 500 every other internal
    //     error is, with the request id and the headers above; the process
    //     and the connection's other requests carry on
    //  4. a deadline for the request
    //  5. header and body size limits (and 5b, the handlers' extractors'
    //     own body limit)
    //  6. rate limit (per verified user, else per address)
    //  7. CSRF for cookie-authenticated unsafe methods
    //  8. authentication (handlers take the user through `AuthUser`)
    // There is no CORS layer on purpose: the API is same-origin only, and
    // without CORS headers browsers refuse cross-origin reads.
    // One `layer` call, so the router boxes each route's stack once.
    let stack = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]))
        .layer(SecureLayer::new(state));
    routes.layer(stack)
}

/// The routes without any middleware: used by the load benchmark to measure
/// what the stack costs, and never served.
pub fn bare_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .route("/api/v1/csrf", get(routes::issue_csrf))
        .route(
            "/api/v1/session",
            axum::routing::post(routes::create_session).delete(routes::delete_session),
        )
        .route(
            "/api/v1/messages",
            get(routes::list_messages).post(routes::create_message),
        )
        .route(
            "/api/v1/messages/{id}",
            get(routes::read_message)
                .put(routes::update_message)
                .delete(routes::delete_message),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A complete state on in-memory SQLite, a key source with no keys and a
    //! temporary secrets directory, for unit tests of single layers.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::application::auth::{KeyError, KeySource, TokenPolicy};
    use crate::infrastructure::db::Database;
    use crate::infrastructure::rate_store::MemoryStore;
    use crate::infrastructure::secrets::DirectorySecrets;

    #[derive(Debug)]
    struct NoKeys;

    #[async_trait::async_trait]
    impl KeySource for NoKeys {
        async fn key(&self, _kid: &str) -> Result<Arc<jsonwebtoken::DecodingKey>, KeyError> {
            Err(KeyError::UnknownKid)
        }
        async fn is_ready(&self) -> bool {
            false
        }
    }

    pub(crate) async fn state() -> AppState {
        let db = Database::connect("sqlite::memory:", None, 1).await.unwrap();
        db.migrate().await.unwrap();
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(
            dir.join(crate::presentation::middleware::csrf::SIGNING_KEY_SECRET),
            [42u8; 32],
        )
        .unwrap();
        let policy = TokenPolicy {
            issuer: "https://issuer.test".into(),
            audience: "portcullis".into(),
            cache_ttl: Duration::from_secs(60),
        };
        AppState::new(AppServices {
            messages: MessageService::new(Arc::new(db)),
            verifier: TokenVerifier::new(Arc::new(NoKeys), &policy),
            secrets: Arc::new(DirectorySecrets::new(dir)),
            rate_limits: Arc::new(MemoryStore::new()),
            rate_policy: Arc::new(RateLimitPolicy::default()),
            size_limits: SizeLimits::default(),
            request_timeout: Duration::from_secs(10),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    #[tokio::test]
    async fn a_panicking_handler_gets_the_json_500_with_headers_and_request_id() {
        async fn boom() -> &'static str {
            panic!("secret request data")
        }
        let state = testing::state().await;
        let routes = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "ok" }));
        let app = with_middleware(routes, state);

        let request = Request::get("/boom")
            .header("x-request-id", "panic-1")
            .body(Body::empty())
            .unwrap();
        let response = call(app.clone(), request).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key("strict-transport-security"));
        assert_eq!(response.headers()["x-request-id"], "panic-1");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["request_id"], "panic-1");
        assert!(!body.to_string().contains("secret request data"));

        // The service keeps serving.
        let response = call(app, Request::get("/ok").body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
