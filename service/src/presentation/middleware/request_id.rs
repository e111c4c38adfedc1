//! Layer 1: the request id. A client's `X-Request-ID` is kept when it is
//! well-formed (1 to 64 characters of `[A-Za-z0-9._-]`), otherwise one is
//! made. It is echoed in the response, put in every error body, and bound to
//! the request's tracing span, so every log line of the request carries it.
//! This layer also writes the one access-log line per request: request id,
//! user id, route, status and latency, and the internal detail of a 5xx. No
//! header values, bodies, tokens or cookies are logged.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tracing::{Instrument as _, Span};

use crate::domain::UserId;

use crate::presentation::error::ErrorDetail;

/// The header carrying the id.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST: RequestScope;
}

/// What is known of the request a task is handling: its id and, once a
/// token verified, its user (for the access line, which is written after
/// everything below has returned, or timed out).
#[derive(Debug)]
pub struct RequestScope {
    id: RequestId,
    user: RefCell<Option<UserId>>,
}

impl RequestScope {
    /// The scope of a request with this id and no user yet.
    pub fn new(id: RequestId) -> Self {
        Self {
            id,
            user: RefCell::new(None),
        }
    }

    /// The id and the user recorded, if any.
    pub fn into_parts(self) -> (RequestId, Option<UserId>) {
        (self.id, self.user.into_inner())
    }
}

/// A request id, well-formed by construction: 1 to 64 characters of
/// `[A-Za-z0-9._-]`. Held as the header value it is sent back in: a
/// client's id is the very bytes it sent, a made one is written once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Always `Ok`: the bytes were checked to be visible ASCII on the way in.
        self.0.to_str().unwrap_or_default()
    }

    /// A new id: 32 hex digits. Ids must be unique, not secret, so drawing 16
    /// bytes from the system's CSPRNG for each (a fifth of this layer's time,
    /// measured) is not needed: each thread draws 128 random bits once, and
    /// each id is the first half and a bijective mix of the second half plus a
    /// per-thread counter (unique per thread, and it does not show how many
    /// requests came before).
    pub fn generate() -> Self {
        thread_local! {
            static STATE: Cell<(u64, u64, u64)> = Cell::new(seed());
        }
        let (prefix, mixed) = STATE.with(|state| {
            let (prefix, base, count) = state.get();
            state.set((prefix, base, count.wrapping_add(1)));
            (prefix, mix(base.wrapping_add(count)))
        });
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&prefix.to_be_bytes());
        raw[8..].copy_from_slice(&mixed.to_be_bytes());
        let mut digits = [0u8; 32];
        // Neither fallback is ever taken: 16 bytes fill 32 digits exactly, and
        // hex digits are a valid header value.
        let value = hex::encode_to_slice(raw, &mut digits)
            .ok()
            .and_then(|()| HeaderValue::from_bytes(&digits).ok());
        Self(value.unwrap_or_else(|| HeaderValue::from_static("0")))
    }
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST.try_with(|scope| scope.id.as_str().to_owned()).ok()
}

/// Records the verified user of the request this task is handling, for its
/// access line. Outside a request scope it does nothing.
pub fn record_user(user: &UserId) {
    let _outside = REQUEST.try_with(|scope| *scope.user.borrow_mut() = Some(user.clone()));
}

fn is_well_formed(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn seed() -> (u64, u64, u64) {
    let mut bytes = [0u8; 16];
    // Randomness failing is not worth failing requests over: fall back to
    // the clock, which still makes ids unique enough for correlation.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    let [prefix, base] = [&bytes[..8], &bytes[8..]]
        .map(|half| u64::from_le_bytes(half.try_into().unwrap_or_default()));
    (prefix, base, 0)
}

/// SplitMix64's finaliser: a bijection on `u64` that scatters neighbours.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Takes the request's well-formed `X-Request-ID` or makes one. A malformed
/// one is removed from the request, so nothing below can read it; code
/// below learns the id from `current`.
pub fn assign(request: &mut Request) -> RequestId {
    match request.headers().get(&HEADER) {
        // Kept as it came: a clone of a header value copies no bytes.
        Some(value) if is_well_formed(value.as_bytes()) => RequestId(value.clone()),
        Some(_) => {
            request.headers_mut().remove(&HEADER);
            RequestId::generate()
        }
        None => RequestId::generate(),
    }
}

/// The matched route template (`/api/v1/messages/{id}`), never the path
/// itself, which may hold ids. `None` when no route matched.
pub fn route_of(request: &Request) -> Option<MatchedPath> {
    request.extensions().get::<MatchedPath>().cloned()
}

/// What the access line calls a request that matched no route.
pub const UNMATCHED: &str = "<unmatched>";

/// The span every log line of the request is written in. It holds the
/// request id only: the JSON log format re-reads a span's fields for every
/// line written in it, and the access line carries the rest itself.
pub fn span(id: &RequestId) -> Span {
    tracing::info_span!("request", request_id = id.as_str())
}

/// Runs `work` in `scope`: `current` returns its id, `record_user` records
/// into it, and `TaskLocalFuture::take_value` gives it back afterwards. A
/// plain function, not an `async fn`: an `async fn` would hold `work` twice
/// in its state (as its argument and as the future it awaits), and this
/// wraps the whole request.
pub fn scoped<F: Future>(scope: RequestScope, work: F) -> TaskLocalFuture<RequestScope, F> {
    REQUEST.scope(scope, work)
}

/// What the access line says about a request, besides its response.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The method.
    pub method: &'a Method,
    /// The route template.
    pub route: &'a str,
    /// The verified user, if the request was authenticated.
    pub user: Option<&'a str>,
    /// When the request arrived.
    pub started: Instant,
}

/// Writes the access line for `response` (in the current span) and echoes
/// `id` in it. The internal detail of a 5xx is logged and taken out of the
/// response, so it can never be sent.
pub fn finish(response: &mut Response, id: RequestId, access: Access<'_>) {
    let latency_ms = access.started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let (method, route, user_id) = (access.method.as_str(), access.route, access.user);
    match response.extensions_mut().remove::<ErrorDetail>() {
        Some(ErrorDetail {
            detail,
            is_expected: true,
        }) if status >= 500 => {
            tracing::warn!(method, route, user_id, status, latency_ms, %detail, "request failed");
        }
        Some(ErrorDetail { detail, .. }) if status >= 500 => {
            tracing::error!(method, route, user_id, status, latency_ms, %detail, "request failed");
        }
        _ if status >= 500 => {
            tracing::error!(method, route, user_id, status, latency_ms, "request failed");
        }
        _ => tracing::info!(
            method,
            route,
            user_id,
            status,
            latency_ms,
            "request completed"
        ),
    }
    response.headers_mut().insert(HEADER.clone(), id.0);
}

/// This layer alone, as `axum::middleware::from_fn` middleware (the service
/// runs it as part of `super::stack`). It knows no user: the stack does.
pub async fn layer(mut request: Request, next: Next) -> Response {
    let id = assign(&mut request);
    let method = request.method().clone();
    let route = route_of(&request);
    let span = span(&id);
    let started = Instant::now();
    let mut response = scoped(RequestScope::new(id.clone()), next.run(request))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    let access = Access {
        method: &method,
        route: route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
        user: None,
        started,
    };
    finish(&mut response, id, access);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::error::ApiError;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;

    fn app() -> Router {
        Router::new()
            .route("/ok", get(|| async { current().unwrap_or_default() }))
            .route(
                "/fail",
                get(|| async { ApiError::new(StatusCode::BAD_REQUEST, "bad", "bad") }),
            )
            .layer(axum::middleware::from_fn(layer))
    }

    #[tokio::test]
    async fn keeps_a_well_formed_id_and_binds_it() {
        let request = axum::http::Request::get("/ok")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap();
        let response = call(app(), request).await;
        assert_eq!(response.headers()["x-request-id"], "abc-123");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"abc-123");
    }

    #[tokio::test]
    async fn replaces_a_malformed_id_and_puts_it_in_errors() {
        let request = axum::http::Request::get("/fail")
            .header("x-request-id", "<script>alert(1)</script>")
            .body(Body::empty())
            .unwrap();
        let response = call(app(), request).await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(is_well_formed(id.as_bytes()) && id.len() == 32);
        assert_eq!(
            body_json(response).await["error"]["request_id"],
            id.as_str()
        );
    }

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| RequestId::generate().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && is_well_formed(id.as_bytes()))
        );
        // Consecutive ids do not count up visibly.
        let (first, second) = (
            RequestId::generate().as_str().to_owned(),
            RequestId::generate().as_str().to_owned(),
        );
        assert_eq!(first[..16], second[..16]);
        assert_ne!(first[16..31], second[16..31]);
    }

    #[test]
    fn well_formed_ids() {
        assert!(is_well_formed(b"a.b_c-1"));
        assert!(!is_well_formed(b""));
        assert!(!is_well_formed("a".repeat(65).as_bytes()));
        assert!(!is_well_formed(b"a b"));
    }
}
