//! The routes and their handlers. Handlers are thin: parse (extractors),
//! call the application service with the verified user, shape the response.
//! The owner of every query is `AuthUser`, which comes only from the verified
//! token; no request field can name another user.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::{AppState, now_secs};
use crate::domain::{Message, MessageBody, MessageId, PageRequest};
use crate::presentation::cookies;
use crate::presentation::error::ApiError;
use crate::presentation::extract::{ApiJson, ApiQuery, IdPath};
use crate::presentation::middleware::auth::AuthUser;
use crate::presentation::middleware::csrf;

/// Every route as (method, path): the router and the OpenAPI document are
/// both checked against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    ("get", "/api/v1/csrf"),
    ("post", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("get", "/api/v1/messages"),
    ("post", "/api/v1/messages"),
    ("get", "/api/v1/messages/{id}"),
    ("put", "/api/v1/messages/{id}"),
    ("delete", "/api/v1/messages/{id}"),
];

/// The body of create and update.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    body: String,
}

/// Query of the list route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
}

/// Body of `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    refresh_token: Option<String>,
}

/// A message as the API shows it (the owner is implied: it is the caller).
#[derive(Debug, Serialize)]
pub struct MessageView {
    id: String,
    body: String,
    created_at: String,
    updated_at: String,
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl From<&Message> for MessageView {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.to_canonical(),
            body: message.body.as_str().to_owned(),
            created_at: rfc3339(message.created_at_ms),
            updated_at: rfc3339(message.updated_at_ms),
        }
    }
}

/// A page of messages.
#[derive(Debug, Serialize)]
pub struct PageView {
    items: Vec<MessageView>,
    next: Option<String>,
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: storage answers and signing keys are loaded.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let Err(err) = state.messages.is_ready().await {
        return Err(ApiError::not_ready(err.to_string()));
    }
    if !state.verifier.is_ready().await {
        return Err(ApiError::not_ready("no signing keys loaded"));
    }
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

/// `GET /api/v1/csrf`: a fresh signed token, in the body and in the
/// script-readable `csrf_token` cookie.
pub async fn issue_csrf(State(state): State<AppState>) -> Result<Response, ApiError> {
    let token = csrf::tokens(&state)?
        .issue(now_secs())
        .map_err(|_| ApiError::internal("could not generate a CSRF token"))?;
    let cookie = cookies::set(
        cookies::CSRF_TOKEN,
        &token,
        crate::application::csrf::TOKEN_LIFETIME_SECS,
        false,
    )
    .ok_or_else(|| ApiError::internal("CSRF token is not a valid cookie value"))?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(serde_json::json!({ "csrf_token": token })),
    )
        .into_response())
}

/// `POST /api/v1/session`: turns a bearer token into the HttpOnly cookie
/// session a browser app uses. The token must come in the `Authorization`
/// header (a cross-site form cannot set it, so this cannot be used for login
/// CSRF); the optional refresh token is stored as a cookie for the issuer.
pub async fn create_session(
    user: AuthUser,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<SessionInput>,
) -> Result<Response, ApiError> {
    let Ok(Some((token, crate::presentation::middleware::CredentialSource::Header))) =
        crate::presentation::middleware::credential(&headers)
    else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bearer_required",
            "send the access token in `Authorization: Bearer`",
        ));
    };
    let max_age = user.expires_at.saturating_sub(now_secs());

    let mut response = StatusCode::NO_CONTENT.into_response();
    let access = cookies::set(cookies::ACCESS_TOKEN, token, max_age, true).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "token_malformed",
            "malformed token",
        )
    })?;
    response.headers_mut().append(header::SET_COOKIE, access);
    if let Some(refresh) = input.refresh_token {
        // Thirty days: the issuer, not this service, decides whether it still works.
        let refresh = cookies::set(cookies::REFRESH_TOKEN, &refresh, 30 * 24 * 3600, true)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    "`refresh_token` is not a token",
                )
            })?;
        response.headers_mut().append(header::SET_COOKIE, refresh);
    }
    Ok(response)
}

/// `DELETE /api/v1/session`: clears the session cookies.
pub async fn delete_session(_user: AuthUser) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    for (name, http_only) in [
        (cookies::ACCESS_TOKEN, true),
        (cookies::REFRESH_TOKEN, true),
        (cookies::CSRF_TOKEN, false),
    ] {
        if let Some(value) = cookies::clear(name, http_only) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /api/v1/messages`.
pub async fn create_message(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(input): ApiJson<MessageInput>,
) -> Result<Response, ApiError> {
    let body = MessageBody::parse(&input.body)?;
    let message = state.messages.create(&user.id, body).await?;

    let location = format!("/api/v1/messages/{}", message.id);
    let mut response = (StatusCode::CREATED, Json(MessageView::from(&message))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /api/v1/messages?limit=&after=`.
pub async fn list_messages(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<PageView>, ApiError> {
    let after = query
        .after
        .as_deref()
        .map(|text| MessageId::parse(text, "after"))
        .transpose()?;
    let page = state
        .messages
        .list(&user.id, PageRequest::new(query.limit, after)?)
        .await?;
    Ok(Json(PageView {
        items: page.items.iter().map(MessageView::from).collect(),
        next: page.next.map(|id| id.to_canonical()),
    }))
}

/// `GET /api/v1/messages/{id}`.
pub async fn read_message(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(id): IdPath,
) -> Result<Json<MessageView>, ApiError> {
    let message = state.messages.read(&user.id, id).await?;
    Ok(Json(MessageView::from(&message)))
}

/// `PUT /api/v1/messages/{id}`.
pub async fn update_message(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(id): IdPath,
    ApiJson(input): ApiJson<MessageInput>,
) -> Result<Json<MessageView>, ApiError> {
    let body = MessageBody::parse(&input.body)?;
    let message = state.messages.update(&user.id, id, body).await?;
    Ok(Json(MessageView::from(&message)))
}

/// `DELETE /api/v1/messages/{id}`.
pub async fn delete_message(
    State(state): State<AppState>,
    user: AuthUser,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    state.messages.delete(&user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Any path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    )
}
