//! The messages API end to end, and IDOR attempts on read, update and delete:
//! another user's message must be indistinguishable from a missing one (404).

use serde_json::{Value, json};

use crate::common::{JsonValue as _, TestApp, error_code, key};

const MISSING_ID: &str = "0190a6e4-b1c8-7c3a-9f0e-6d8b2a4c1e0f";

#[tokio::test]
async fn create_list_read_update_delete() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let id = app.create(&token, "first").await;
    let second = app.create(&token, "second").await;

    let read = app
        .get(&format!("/api/v1/messages/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.json_value().await["body"], "first");

    let page = app
        .get("/api/v1/messages?limit=1")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["next"], id.as_str());
    let next = app
        .get(&format!("/api/v1/messages?limit=1&after={id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(next["items"][0]["id"], second.as_str());
    assert_eq!(next["next"], Value::Null);

    let updated = app
        .client
        .put(app.url(&format!("/api/v1/messages/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({ "body": "edited" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(updated.json_value().await["body"], "edited");

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/messages/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app
        .get(&format!("/api/v1/messages/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(gone).await, (404, "not_found".into()));
}

/// The body of an error without its request id, for comparing two errors.
async fn error_without_id(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let mut body = response.json_value().await;
    body["error"]["request_id"] = Value::Null;
    (status, body)
}

#[tokio::test]
async fn idor_on_read_update_and_delete_looks_like_missing() {
    let app = TestApp::start().await;
    let alice = key().token("alice");
    let mallory = key().token("mallory");
    let id = app.create(&alice, "alice's secret").await;

    for target in [id.as_str(), MISSING_ID] {
        let path = format!("/api/v1/messages/{target}");
        let read = app.get(&path).bearer_auth(&mallory).send().await.unwrap();
        let update = app
            .client
            .put(app.url(&path))
            .bearer_auth(&mallory)
            .header("content-type", "application/json")
            .body(r#"{"body":"pwned"}"#)
            .send()
            .await
            .unwrap();
        let delete = app
            .client
            .delete(app.url(&path))
            .bearer_auth(&mallory)
            .send()
            .await
            .unwrap();
        let expected = json!({ "error": { "code": "not_found", "message": "resource not found", "request_id": null } });
        for response in [read, update, delete] {
            assert_eq!(
                error_without_id(response).await,
                (404, expected.clone()),
                "{target}"
            );
        }
    }

    // The body, path and query cannot name another owner.
    let smuggled = app
        .post_json(
            "/api/v1/messages",
            &json!({ "body": "x", "owner": "alice" }),
        )
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(smuggled).await, (422, "invalid_body".into()));
    let by_query = app
        .get("/api/v1/messages?owner=alice")
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(by_query).await, (400, "invalid_query".into()));

    let mallory_list = app
        .get("/api/v1/messages")
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(mallory_list["items"], json!([]));
    let still = app
        .get(&format!("/api/v1/messages/{id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(still.json_value().await["body"], "alice's secret");
}
