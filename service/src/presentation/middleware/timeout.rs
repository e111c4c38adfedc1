//! Layer 3: a deadline for the whole request, so a slow dependency cannot pin
//! connections and memory forever. Expiry answers 503 `timeout`.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures_util::FutureExt as _;

use crate::presentation::error::ApiError;

/// Runs `work`, or answers 503 `timeout` when it takes longer than `deadline`.
/// A plain function, not an `async fn`, so `work` is held once in the
/// returned future, not twice (argument and awaited future).
pub fn within<F>(deadline: Duration, work: F) -> impl Future<Output = Response>
where
    F: Future<Output = Response>,
{
    tokio::time::timeout(deadline, work).map(move |outcome| match outcome {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(
            "timeout",
            "the request took too long",
            format!("request exceeded {} ms", deadline.as_millis()),
        )
        .into_response(),
    })
}

/// This layer alone, as `from_fn_with_state` middleware whose state is the
/// deadline; the service runs `within` as part of `super::stack`.
pub async fn layer(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    within(deadline, next.run(request)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::presentation::middleware::test_support::{body_json, call};
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;

    #[tokio::test]
    async fn slow_handlers_get_503() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(20),
                layer,
            ));
        let response = call(
            app,
            axum::http::Request::get("/slow")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_json(response).await["error"]["code"], "timeout");
    }
}
