//! Every refused token shape, the JWKS cache and its failure modes.

use serde_json::json;

use crate::common::{
    AppBuilder, JsonValue as _, JwksMode, JwksServer, TestApp, TestKey, dead_url, error_code, key,
    now,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

async fn code_for(app: &TestApp, token: &str) -> (u16, String) {
    let response = app
        .get("/api/v1/messages")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if response.status() == 200 {
        return (200, String::new());
    }
    error_code(response).await
}

#[tokio::test]
async fn valid_token_is_accepted_from_header_and_cookie() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    assert_eq!(code_for(&app, &token).await.0, 200);
    let by_cookie = app
        .get("/api/v1/messages")
        .header("cookie", format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
}

#[tokio::test]
async fn alg_none_and_hs256_are_refused_from_the_header() {
    let app = TestApp::start().await;
    let claims = URL_SAFE_NO_PAD.encode(crate::common::claims("alice").to_string());

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#);
    assert_eq!(
        code_for(&app, &format!("{none_header}.{claims}.")).await,
        (401, "token_algorithm".into())
    );

    // HS256 keyed with the public key: the classic confusion attack.
    let hs_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"test-key-1"}"#);
    let input = format!("{hs_header}.{claims}");
    let public_key = key().jwk().to_string();
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_key.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&hmac_key, input.as_bytes());
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(
        code_for(&app, &forged).await,
        (401, "token_algorithm".into())
    );
}

#[tokio::test]
async fn wrong_audience_issuer_expired_and_missing_claims_are_refused() {
    let app = TestApp::start().await;
    let cases = [
        (json!({ "aud": "someone-else" }), "token_audience"),
        (json!({ "iss": "https://evil.test" }), "token_issuer"),
        (json!({ "exp": now() - 120 }), "token_expired"),
        (json!({ "sub": null }), "token_claims"),
        (json!({ "exp": null }), "token_claims"),
        (json!({ "iat": null }), "token_claims"),
        (json!({ "iss": null }), "token_claims"),
        (json!({ "aud": null }), "token_claims"),
        (json!({ "exp": "tomorrow" }), "token_claims"),
        (json!({ "nbf": now() + 3600 }), "token_not_yet_valid"),
        (json!({ "iat": now() + 3600 }), "token_not_yet_valid"),
    ];
    for (overrides, expected) in cases {
        let token = key().token_for("alice", overrides.clone());
        assert_eq!(
            code_for(&app, &token).await,
            (401, expected.to_owned()),
            "{overrides}"
        );
    }
    // Within the 30 s leeway an expired token still passes.
    let token = key().token_for("alice", json!({ "exp": now() - 5 }));
    assert_eq!(code_for(&app, &token).await.0, 200);
}

#[tokio::test]
async fn tampered_and_malformed_tokens_are_refused() {
    let app = TestApp::start().await;
    let token = key().token("alice");
    let mut parts: Vec<&str> = token.split('.').collect();
    let elevated = URL_SAFE_NO_PAD.encode(crate::common::claims("admin").to_string());
    parts[1] = &elevated;
    assert_eq!(
        code_for(&app, &parts.join(".")).await,
        (401, "token_signature".into())
    );

    for bad in ["x", "a.b", "a.b.c.d", "%%%.e30.e30"] {
        assert_eq!(
            code_for(&app, bad).await,
            (401, "token_malformed".into()),
            "{bad}"
        );
    }
    let basic = app
        .get("/api/v1/messages")
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(basic).await, (401, "token_malformed".into()));
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let jwks = JwksServer::start(JwksServer::with_keys(&[key()])).await;
    let mut builder = AppBuilder::new().await.jwks(jwks.clone());
    builder.config.auth.jwks_min_refresh_secs = 3600;
    let app = builder.start().await;
    let after_startup = jwks.fetches();

    let stranger = TestKey::generate("stranger");
    for idx in 0..20 {
        let token = stranger.token(&format!("user-{idx}"));
        assert_eq!(
            code_for(&app, &token).await,
            (401, "token_unknown_key".into())
        );
    }
    assert_eq!(
        jwks.fetches(),
        after_startup,
        "bad tokens must not make the service hammer the issuer"
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_one_refetch() {
    let jwks = JwksServer::start(JwksServer::with_keys(&[key()])).await;
    let mut builder = AppBuilder::new().await.jwks(jwks.clone());
    builder.config.auth.jwks_min_refresh_secs = 0;
    let app = builder.start().await;

    let rotated = TestKey::generate("rotated");
    *jwks.mode.lock().unwrap() = JwksServer::with_keys(&[key(), &rotated]);
    let before = jwks.fetches();
    assert_eq!(code_for(&app, &rotated.token("alice")).await.0, 200);
    assert_eq!(jwks.fetches(), before + 1);
    // Now cached: no further fetch.
    assert_eq!(code_for(&app, &rotated.token("bob")).await.0, 200);
    assert_eq!(jwks.fetches(), before + 1);
}

#[tokio::test]
async fn jwks_down_or_garbage_gives_503_and_the_service_keeps_serving() {
    for jwks_url in [dead_url().await, String::new()] {
        let app = if jwks_url.is_empty() {
            let garbage = JwksServer::start(JwksMode::Garbage).await;
            AppBuilder::new().await.jwks(garbage).start().await
        } else {
            AppBuilder::with_jwks_url(&jwks_url).start().await
        };
        let response = app
            .get("/api/v1/messages")
            .bearer_auth(key().token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (503, "key_service_unavailable".into())
        );

        let ready = app.get("/readyz").send().await.unwrap();
        assert_eq!(error_code(ready).await, (503, "not_ready".into()));
        let health = app.get("/healthz").send().await.unwrap();
        assert_eq!(health.json_value().await["status"], "ok");
    }
}
