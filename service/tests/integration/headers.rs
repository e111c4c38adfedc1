//! Security headers and the request id, on successes and on errors.

use crate::common::{JsonValue as _, TestApp, key};
use service::presentation::middleware::security_headers::HEADERS;

#[tokio::test]
async fn every_response_carries_each_security_header_and_no_server() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let responses = [
        app.get("/healthz").send().await.unwrap(),
        app.get("/api/v1/messages")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/messages").send().await.unwrap(), // 401
        app.get("/no/such/route").send().await.unwrap(),   // 404
        app.client
            .patch(app.url("/api/v1/messages"))
            .send()
            .await
            .unwrap(), // 405
    ];
    for response in responses {
        let status = response.status();
        for (name, value) in HEADERS {
            assert_eq!(
                response.headers().get(*name).map(|v| v.to_str().unwrap()),
                Some(*value),
                "{status} {name}"
            );
        }
        assert!(response.headers().get("server").is_none(), "{status}");
    }
}

#[tokio::test]
async fn each_header_is_exactly_as_specified() {
    let app = TestApp::start().await;
    let response = app.get("/healthz").send().await.unwrap();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        header("strict-transport-security"),
        "max-age=31536000; includeSubDomains; preload"
    );
    assert!(header("content-security-policy").starts_with("default-src 'none'"));
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(header("permissions-policy").contains("camera=()"));
}

#[tokio::test]
async fn request_id_is_echoed_or_made() {
    let app = TestApp::start().await;
    let kept = app
        .get("/healthz")
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42");

    let replaced = app
        .get("/nope")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(
        replaced.json_value().await["error"]["request_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_matches_the_routes() {
    let app = TestApp::start().await;
    let document = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(document["openapi"], "3.1.0");
    let token = key().token("openapi-user");
    // Every documented operation is routed: none answers 404 or 405 for its method.
    for (method, path) in service::presentation::routes::ROUTES {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
        let concrete = path.replace("{id}", "0190a6e4-b1c8-7c3a-9f0e-6d8b2a4c1e0f");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let code = response.json_value_or_null().await;
        assert!(
            status != 405 && !(status == 404 && code != "not_found"),
            "{method} {concrete}: {status}"
        );
    }
}

trait OrNull {
    async fn json_value_or_null(self) -> String;
}

impl OrNull for reqwest::Response {
    async fn json_value_or_null(self) -> String {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}
