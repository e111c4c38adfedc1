//! Body size (413) and rate limits (429 with Retry-After).

use serde_json::json;

use crate::common::{AppBuilder, TestApp, error_code, key};

#[tokio::test]
async fn oversize_body_gets_413_with_content_length() {
    let app = TestApp::start().await;
    let body = json!({ "body": "a".repeat(2 * 1024 * 1024) });
    let response = app
        .post_json("/api/v1/messages", &body)
        .bearer_auth(key().token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
}

#[tokio::test]
async fn oversize_chunked_body_gets_413() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let chunk = "a".repeat(64 * 1024);
    let mut request = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    request.push_str(&format!("{:x}\r\n{{\"body\":\"\r\n", 9));
    for _ in 0..20 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("2\r\n\"}\r\n0\r\n\r\n");
    let response = app.raw(request.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 413"),
        "{}",
        &response[..response.len().min(200)]
    );
    assert!(response.contains("\"payload_too_large\""));
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff")
    );
}

#[tokio::test]
async fn eleventh_request_in_a_second_gets_429_with_retry_after() {
    let mut builder = AppBuilder::new().await;
    // Ten per second as by default, but also ten per minute, so a slow
    // machine cannot earn a token back during the test.
    builder.config.rate_limit = Default::default();
    builder.config.rate_limit.per_minute = 10;
    let app = builder.start().await;
    let token = key().token("rate-user");

    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(
            app.get("/api/v1/messages")
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        );
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == 200));
    let retry_after: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(last).await, (429, "rate_limited".into()));

    // The limit is per user: someone else is not affected.
    let other = app
        .get("/api/v1/messages")
        .bearer_auth(key().token("other-user"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn anonymous_requests_are_limited_by_address() {
    let mut builder = AppBuilder::new().await;
    // Ten per second as by default, but also ten per minute, so a slow
    // machine cannot earn a token back during the test.
    builder.config.rate_limit = Default::default();
    builder.config.rate_limit.per_minute = 10;
    let app = builder.start().await;
    for _ in 0..10 {
        assert_eq!(app.get("/api/v1/csrf").send().await.unwrap().status(), 200);
    }
    let limited = app.get("/api/v1/csrf").send().await.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));

    // Forged tokens do not buy a fresh quota: they count against the address.
    let forged = crate::common::TestKey::generate("forger").token("victim");
    let response = app
        .get("/api/v1/messages")
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}
