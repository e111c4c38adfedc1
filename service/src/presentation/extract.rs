//! Extractors that turn every kind of bad input into the API's JSON errors:
//! wrong content type (415), oversize body (413), malformed JSON or bad UTF-8
//! (400 `malformed_json`), unknown fields or wrong types (422
//! `invalid_body`), bad path ids and queries (400).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::domain::MessageId;
use crate::presentation::error::ApiError;

/// A JSON body, parsed strictly: the target types use
/// `#[serde(deny_unknown_fields)]`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected `Content-Type: application/json`",
            ));
        }

        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "request body too large",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "unreadable_body",
                        "could not read the request body",
                    )
                }
            })?;

        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            use serde_json::error::Category;
            match err.classify() {
                Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    // serde's data errors name the field and the expected
                    // type, and may quote the client's own value back to it
                    // (JSON-encoded, so it cannot inject anything).
                    format!("invalid request body: {err}"),
                ),
                Category::Io | Category::Syntax | Category::Eof => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!(
                        "malformed JSON at line {} column {}",
                        err.line(),
                        err.column()
                    ),
                ),
            }
        })
    }
}

/// The `{id}` path segment as a message id.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub MessageId);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_id", "`id` must be a UUID")
                })?;
        Ok(Self(MessageId::parse(&text, "id")?))
    }
}

/// A query string parsed strictly into `T`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    rejection.body_text(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/json-patch+json"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
