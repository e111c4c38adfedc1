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
//!
//! The request's future is built in one piece in `Secure::call` and boxed
//! once: the checks (`checks`, whose future owns the request), inside
//! the deadline, the panic guard, the request's scope and its span, inside
//! `Finish`, which adds the headers and writes the access line. Nothing that
//! holds the request is itself held by an `async` block, which would keep a
//! second copy of it; the whole future stays small enough to be allocated
//! and moved cheaply (see the size test below).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::response::{IntoResponse as _, Response};
use futures_util::FutureExt as _;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service, ServiceExt as _};
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

use crate::app::AppState;
use crate::presentation::error::ApiError;
use crate::presentation::middleware::request_id::{self, RequestScope};
use crate::presentation::middleware::{
    auth, body_limit, csrf, rate_limit, security_headers, timeout,
};

/// The layer: wraps routes in `Secure`.
#[derive(Debug, Clone)]
pub struct SecureLayer {
    state: AppState,
}

impl SecureLayer {
    /// The stack over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for SecureLayer {
    type Service = Secure<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Secure {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service: every layer, then `inner` (the route).
#[derive(Debug, Clone)]
pub struct Secure<S> {
    inner: S,
    state: AppState,
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
        // Readiness is asked of the inner service per request, in `checks`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        // 1. The request id, its span and (in `Finish`) the access line.
        let id = request_id::assign(&mut request);
        let method = request.method().clone();
        let route = request_id::route_of(&request);
        let span = request_id::span(&id);
        // (2. Credentials were marked sensitive by tower-http's layer outside
        //    this one; see `crate::app::with_middleware`.)

        // 5. to 8., within the deadline (4).
        let deadline = self.state.request_timeout;
        let timed = timeout::within(
            deadline,
            checks(self.state.clone(), self.inner.clone(), request),
        );
        // 3b. A panic below becomes the JSON 500 every other internal error
        //     is; the process and the connection's other requests carry on.
        //     The payload is not logged: it may hold request data.
        let guarded = AssertUnwindSafe(timed).catch_unwind().map(|outcome| {
            outcome
                .unwrap_or_else(|_payload| ApiError::internal("a handler panicked").into_response())
        });
        let work = request_id::scoped(RequestScope::new(id), guarded).instrument(span);
        Box::pin(Finish {
            work,
            method,
            route,
            started,
        })
    }
}

pin_project_lite::pin_project! {
    /// The request's future: `work` (everything below the headers) in the
    /// request's scope and span; then 3. the security headers on whatever it
    /// answered, refusals and panics included, and the access line (1).
    struct Finish<F> {
        #[pin]
        work: Instrumented<TaskLocalFuture<RequestScope, F>>,
        method: Method,
        route: Option<MatchedPath>,
        started: Instant,
    }
}

impl<F: Future<Output = Response>> Future for Finish<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = ready!(this.work.as_mut().poll(cx));
        // The scope stays in `work` until taken, and only this takes it,
        // once; were it ever gone, a fresh id still answers well-formed.
        let (id, user) = match this.work.as_mut().inner_pin_mut().take_value() {
            Some(scope) => scope.into_parts(),
            None => (request_id::RequestId::generate(), None),
        };

        security_headers::apply(response.headers_mut());
        let _entered = this.work.span().enter();
        let access = request_id::Access {
            method: this.method,
            route: this
                .route
                .as_ref()
                .map_or(request_id::UNMATCHED, MatchedPath::as_str),
            user: user.as_ref().map(|user| user.as_str()),
            started: *this.started,
        };
        request_id::finish(&mut response, id, access);
        Poll::Ready(Ok(response))
    }
}

/// Layers 5 to 8, then the route. The returned future owns the request, and
/// holds it once: an `async fn` would keep its arguments apart from the
/// variables its body moves them into.
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn checks<S>(
    state: AppState,
    mut inner: S,
    mut request: Request,
) -> impl Future<Output = Response> + Send
where
    S: Service<Request, Response = Response, Error = Infallible> + Send,
    S::Future: Send,
{
    async move {
        // Awaited apart from the route, so their futures share room in this one.
        if let Err(refusal) = admit(&state, &mut request).await {
            return refusal;
        }
        let ready = match inner.ready().await {
            Ok(ready) => ready,
            Err(never) => match never {},
        };
        match ready.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Layers 5 to 8: `Err` is the refusal of the first that refuses.
async fn admit(state: &AppState, request: &mut Request) -> Result<(), Response> {
    body_limit::check(state.size_limits, request)?;
    // 5b. A second, independent body limit inside the handlers' extractors
    //     (a body known to be empty has nothing for them to read).
    if !request.body().is_end_stream() {
        DefaultBodyLimit::max(state.size_limits.body_bytes).apply(request);
    }
    let peer = rate_limit::peer(request);
    rate_limit::admit(state, request.uri().path(), request.headers(), peer).await?;
    csrf::check(state, request.method(), request.headers())?;
    if let Some(user) = auth::authenticate(state, request).await? {
        request_id::record_user(&user);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The whole request's future is allocated once per request and moved
    /// as it is built, so it is kept small on purpose: under 1 KiB, which
    /// the allocator serves from its per-thread cache. (An `async fn` that
    /// awaits its argument, or an `async` block that holds the request, each
    /// add a copy of what they wrap; the stack's future was 6 KiB so.)
    #[tokio::test]
    async fn the_request_future_stays_small() {
        let state = crate::app::testing::state().await;
        let route = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .into_service::<axum::body::Body>();
        let mut service = SecureLayer::new(state).layer(route);
        let future = service.call(Request::new(axum::body::Body::empty()));
        // The box is a pointer; what it points at is the size that matters.
        let size = std::mem::size_of_val(&*future);
        assert!(size <= 1024, "the request future grew to {size} bytes");
    }
}
