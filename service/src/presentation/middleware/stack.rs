//! The whole stack as one tower service, in the order of `super`'s list.
//!
//! Each layer's logic lives in its own module, is tested there on its own,
//! and runs here as a plain function call: one future per request instead of
//! eight nested services. The nesting cost more than the checks themselves
//! (per layer: a boxed future, a clone of the inner service and its state,
//! and a move of the whole request; see `examples/load.rs`). What nesting
//! gave is kept: the order is fixed, each check reads the request itself and
//! trusts nothing an earlier one decided, and a refusal at any step still
//! gets the security headers, the request id and the access line.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use futures_util::FutureExt as _;
use tower::{Layer, Service, ServiceExt as _};
use tracing::Instrument as _;

use crate::app::AppState;
use crate::domain::UserId;
use crate::presentation::error::ApiError;
use crate::presentation::middleware::{
    auth, body_limit, csrf, rate_limit, request_id, security_headers, timeout,
};

/// The layer: wraps routes in `Secure`.
#[derive(Debug, Clone)]
pub struct SecureLayer {
    state: Arc<AppState>,
}

impl SecureLayer {
    /// The stack over `state`.
    pub fn new(state: AppState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl<S> Layer<S> for SecureLayer {
    type Service = Secure<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Secure {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service: every layer, then `inner` (the route).
#[derive(Debug, Clone)]
pub struct Secure<S> {
    inner: S,
    state: Arc<AppState>,
}

impl<S> Service<Request> for Secure<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is asked of the inner service per request, in `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (inner, state) = (self.inner.clone(), Arc::clone(&self.state));
        Box::pin(async move { Ok(handle(&state, inner, request).await) })
    }
}

/// Layers 1 to 3b, then the rest inside the request's span and id scope.
async fn handle<S>(state: &AppState, inner: S, mut request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Send,
    S::Future: Send,
{
    let started = Instant::now();
    // 1. The request id, its span and (below) the access line.
    let id = request_id::assign(&mut request);
    let method = request.method().clone();
    let route = request_id::route_of(&request);
    let span = request_id::span(&id);
    // (2. Credentials were marked sensitive by tower-http's layer outside
    //    this one; see `crate::app::with_middleware`.)

    let work = async {
        // 3b. A panic below becomes the JSON 500 every other internal error
        //     is; the process and the connection's other requests carry on.
        //     The payload is not logged: it may hold request data.
        match AssertUnwindSafe(checked(state, inner, request))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(_payload) => (
                ApiError::internal("a handler panicked").into_response(),
                None,
            ),
        }
    };
    let (mut response, user) = request_id::scoped(id.clone(), work)
        .instrument(span.clone())
        .await;

    // 3. Security headers on every response, refusals and panics included.
    security_headers::apply(response.headers_mut());
    let _entered = span.enter();
    let access = request_id::Access {
        method: &method,
        route: &route,
        user: user.as_ref().map(UserId::as_str),
        started,
    };
    request_id::finish(&mut response, &id, access);
    response
}

/// Layers 4 to 8, then the route; also returns the verified user, for the
/// access line.
async fn checked<S>(state: &AppState, inner: S, request: Request) -> (Response, Option<UserId>)
where
    S: Service<Request, Response = Response, Error = Infallible> + Send,
    S::Future: Send,
{
    let mut user = None;
    let response = timeout::within(state.request_timeout, async {
        let mut request = match body_limit::check(state.size_limits, request) {
            Ok(request) => request,
            Err(refusal) => return refusal,
        };
        let peer = rate_limit::peer(&request);
        let (path, headers) = (request.uri().path(), request.headers());
        if let Err(refusal) = rate_limit::admit(state, path, headers, peer).await {
            return refusal;
        }
        if let Err(refusal) = csrf::check(state, request.method(), request.headers()) {
            return refusal;
        }
        match auth::authenticate(state, &mut request).await {
            Ok(verified) => user = verified,
            Err(refusal) => return refusal,
        }
        match inner.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    })
    .await;
    (response, user)
}
