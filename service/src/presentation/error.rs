//! The one error type of the API. Every failure becomes JSON of the shape
//! `{"error": {"code", "message", "request_id"}}` with a stable `code`. Client
//! errors say precisely what was wrong; server errors say only that something
//! failed, and their details go to the log (by the request-id middleware),
//! never to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::application::auth::AuthError;
use crate::application::csrf::CsrfError;
use crate::application::messages::MessageError;
use crate::domain::ValidationError;
use crate::presentation::middleware::request_id;

/// Internal detail of a 5xx, carried as a response extension so the logging
/// middleware can record it; it is never serialised into the body.
#[derive(Debug, Clone)]
pub struct ErrorDetail {
    /// What went wrong, for the log.
    pub detail: String,
    /// A state the service answers 503 for by design (not ready yet), which
    /// is logged as a warning, not as an error.
    pub is_expected: bool,
}

/// An API error: status, stable code, client-safe message.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    detail: Option<String>,
    is_expected: bool,
}

impl ApiError {
    /// A client error with a precise message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
            is_expected: false,
        }
    }

    /// A server error: the client sees a generic message, the log sees `detail`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal server error",
            )
        }
    }

    /// 503 with a code, e.g. when a dependency is down.
    pub fn unavailable(code: &'static str, message: &str, detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// 503 `not_ready` from the readiness probe: expected while the service
    /// starts or a dependency is away, so it is logged as a warning.
    pub fn not_ready(detail: impl Into<String>) -> Self {
        Self {
            is_expected: true,
            ..Self::unavailable("not_ready", "not ready", detail)
        }
    }

    /// 404, the same for "missing" and "someone else's".
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "resource not found")
    }

    /// 413.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body must be at most {limit} bytes"),
        )
    }

    /// 429 with the time after which a retry may succeed.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests",
            )
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id::current(),
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();

        if let Some(retry_after) = self.retry_after {
            // Whole seconds, rounded up: a client that waits this long succeeds.
            let secs = retry_after.as_millis().div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="portcullis", error="invalid_token""#),
            );
        }
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(ErrorDetail {
                detail,
                is_expected: self.is_expected,
            });
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        let code = match err {
            ValidationError::InvalidId { .. } => "invalid_id",
            _ => "validation_failed",
        };
        Self::new(StatusCode::BAD_REQUEST, code, err.to_string())
    }
}

impl From<MessageError> for ApiError {
    fn from(err: MessageError) -> Self {
        match err {
            MessageError::NotFound => Self::not_found(),
            MessageError::Repository(err) => Self::internal(format!("repository: {err}")),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let code = match err {
            AuthError::Missing => "unauthenticated",
            AuthError::Malformed => "token_malformed",
            AuthError::Algorithm => "token_algorithm",
            AuthError::UnknownKey => "token_unknown_key",
            AuthError::Signature => "token_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::Audience => "token_audience",
            AuthError::Issuer => "token_issuer",
            AuthError::Claims => "token_claims",
            AuthError::KeysUnavailable => {
                return Self::unavailable(
                    "key_service_unavailable",
                    "signing keys are unavailable, retry later",
                    "JWKS endpoint unavailable",
                );
            }
        };
        Self::new(StatusCode::UNAUTHORIZED, code, err.to_string())
    }
}

impl From<CsrfError> for ApiError {
    fn from(err: CsrfError) -> Self {
        let code = match err {
            CsrfError::Missing => "csrf_missing",
            CsrfError::Mismatch => "csrf_mismatch",
            CsrfError::Invalid => "csrf_invalid",
            CsrfError::Expired => "csrf_expired",
        };
        Self::new(StatusCode::FORBIDDEN, code, err.to_string())
    }
}
