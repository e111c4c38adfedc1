//! Bad input of every kind gets the right 4xx, a JSON error, and the service
//! keeps serving.

use serde_json::json;

use crate::common::{JsonValue as _, TestApp, error_code, key};

#[tokio::test]
async fn malformed_and_mistyped_bodies() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let send = |content_type: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/messages"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let cases: Vec<(&'static str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"body\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "application/json",
            b"not json".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "application/json",
            b"{\"body\": \"\xff\xfe\"}".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "text/plain",
            b"{\"body\": \"hi\"}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"body=hi".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            b"{\"body\": 42}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "application/json",
            b"{\"body\": \"hi\", \"extra\": 1}".to_vec(),
            422,
            "invalid_body",
        ),
        ("application/json", b"{}".to_vec(), 422, "invalid_body"),
        (
            "application/json",
            b"{\"body\": \"\"}".to_vec(),
            400,
            "validation_failed",
        ),
        (
            "application/json",
            b"{\"body\": \"bell\\u0007\"}".to_vec(),
            400,
            "validation_failed",
        ),
        (
            "application/json",
            b"{\"body\": \"esc\\u001b[2J\"}".to_vec(),
            400,
            "validation_failed",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let response = send(content_type, body).await.unwrap();
        assert_eq!(
            error_code(response).await,
            (status, code.to_owned()),
            "{content_type} {shown}"
        );
    }
    let too_long = json!({ "body": "a".repeat(4001) });
    let response = app
        .post_json("/api/v1/messages", &too_long)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (400, "validation_failed".into())
    );
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn invalid_ids_queries_and_methods() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    for path in [
        "/api/v1/messages/not-a-uuid",
        "/api/v1/messages/0190a6e4b1c87c3a9f0e6d8b2a4c1e0f",
        "/api/v1/messages/%FF%FE",
        "/api/v1/messages/'%20OR%201=1--",
    ] {
        let response = app.get(path).bearer_auth(&token).send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (400, "invalid_id".into()),
            "{path}"
        );
    }
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "after=nope",
        "limit=-1",
    ] {
        let response = app
            .get(&format!("/api/v1/messages?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, _) = error_code(response).await;
        assert_eq!(status, 400, "{query}");
    }
    let response = app
        .client
        .patch(app.url("/api/v1/messages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (405, "method_not_allowed".into())
    );
}

#[tokio::test]
async fn huge_headers_get_431_and_the_service_keeps_serving() {
    let app = TestApp::start().await;
    let response = app
        .get("/healthz")
        .header("x-padding", "a".repeat(32 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (431, "headers_too_large".into())
    );

    let mut request = app.get("/healthz");
    for idx in 0..80 {
        request = request.header(format!("x-h-{idx}"), "v");
    }
    assert_eq!(
        error_code(request.send().await.unwrap()).await,
        (431, "headers_too_large".into())
    );

    // Beyond hyper's own buffer the connection gets a bare 431 (or is closed); either way, no crash.
    let giant = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let answer = app.raw(giant.as_bytes()).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(80)]
    );

    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.json_value().await["status"], "ok");
}

#[tokio::test]
async fn errors_never_leak_internals() {
    let app = TestApp::start().await;
    let response = app
        .post_json("/api/v1/messages", &json!({ "body": 1 }))
        .bearer_auth(key().token("a"))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    for leak in [
        "panicked",
        "src/",
        "sqlx",
        "stack backtrace",
        "RUST_BACKTRACE",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}
