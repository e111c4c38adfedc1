//! CSRF for cookie-authenticated unsafe requests, and the cookie flags.

use serde_json::json;
use service::application::csrf::CsrfTokens;
use service::infrastructure::secrets::SecretBytes;

use crate::common::{CSRF_KEY, JsonValue as _, TestApp, error_code, key, now};

async fn post_with_cookie(
    app: &TestApp,
    cookie_csrf: Option<&str>,
    header_csrf: Option<&str>,
) -> reqwest::Response {
    let token = key().token("alice");
    let mut cookie = format!("access_token={token}");
    if let Some(csrf) = cookie_csrf {
        cookie.push_str(&format!("; csrf_token={csrf}"));
    }
    let mut request = app
        .post_json("/api/v1/messages", &json!({ "body": "hi" }))
        .header("cookie", cookie);
    if let Some(csrf) = header_csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().await.unwrap()
}

async fn issued_token(app: &TestApp) -> String {
    let response = app.get("/api/v1/csrf").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json_value().await["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn valid_double_submit_passes() {
    let app = TestApp::start().await;
    let csrf = issued_token(&app).await;
    assert_eq!(
        post_with_cookie(&app, Some(&csrf), Some(&csrf))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn missing_wrong_expired_and_tampered_tokens_get_403() {
    let app = TestApp::start().await;
    let csrf = issued_token(&app).await;
    let other = issued_token(&app).await;

    let missing = post_with_cookie(&app, Some(&csrf), None).await;
    assert_eq!(error_code(missing).await, (403, "csrf_missing".into()));
    let no_cookie = post_with_cookie(&app, None, Some(&csrf)).await;
    assert_eq!(error_code(no_cookie).await, (403, "csrf_missing".into()));

    let wrong = post_with_cookie(&app, Some(&csrf), Some(&other)).await;
    assert_eq!(error_code(wrong).await, (403, "csrf_mismatch".into()));

    // Signed with the service's key, but issued two hours ago.
    let signer = CsrfTokens::new(&SecretBytes::new(CSRF_KEY.to_vec()));
    let old = signer.issue(now() - 7200).unwrap();
    let expired = post_with_cookie(&app, Some(&old), Some(&old)).await;
    assert_eq!(error_code(expired).await, (403, "csrf_expired".into()));

    // An attacker who can plant a cookie still cannot sign: flip one character.
    let mut bytes = csrf.clone().into_bytes();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let response = post_with_cookie(&app, Some(&tampered), Some(&tampered)).await;
    assert_eq!(error_code(response).await, (403, "csrf_invalid".into()));

    // Nothing was created by the refused requests.
    let list = app
        .get("/api/v1/messages")
        .bearer_auth(key().token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        list.json_value().await["items"].as_array().map(Vec::len),
        Some(0)
    );
}

#[tokio::test]
async fn cookie_authenticated_delete_and_update_need_csrf_too() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let id = app.create(&token, "keep me").await;
    let cookie = format!("access_token={token}");
    let delete = app
        .client
        .delete(app.url(&format!("/api/v1/messages/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(delete).await, (403, "csrf_missing".into()));
    let update = app
        .client
        .put(app.url(&format!("/api/v1/messages/{id}")))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body(r#"{"body":"changed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(update).await, (403, "csrf_missing".into()));
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn flags(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|f| f.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn cookie_flags() {
    let app = TestApp::start().await;
    let csrf = app.get("/api/v1/csrf").send().await.unwrap();
    let cookies = set_cookies(&csrf);
    assert_eq!(cookies.len(), 1);
    let csrf_flags = flags(&cookies[0]);
    assert!(cookies[0].starts_with("csrf_token="));
    assert!(csrf_flags.contains(&"secure".into()) && csrf_flags.contains(&"samesite=lax".into()));
    assert!(
        !csrf_flags.contains(&"httponly".into()),
        "scripts must read the CSRF cookie"
    );

    let session = app
        .post_json(
            "/api/v1/session",
            &json!({ "refresh_token": "opaque-refresh-value" }),
        )
        .bearer_auth(key().token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 204);
    let cookies = set_cookies(&session);
    for name in ["access_token=", "refresh_token="] {
        let cookie = cookies.iter().find(|c| c.starts_with(name)).unwrap();
        let cookie_flags = flags(cookie);
        for flag in ["httponly", "secure", "samesite=lax"] {
            assert!(
                cookie_flags.contains(&flag.to_owned()),
                "{name} lacks {flag}"
            );
        }
    }

    // A session cannot be made from a cookie (login CSRF), only from a bearer header.
    let by_cookie = app
        .post_json("/api/v1/session", &json!({}))
        .header("cookie", format!("access_token={}", key().token("alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 403);
}
