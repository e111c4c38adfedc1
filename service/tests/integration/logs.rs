//! The access log, in the production format: one JSON line per request with
//! its request id, user id, method, route template, status and latency, and
//! no token, cookie, body or other personal data.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{TestApp, key};

/// Every line written, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// A capture in the production format, as this thread's default
    /// subscriber until the guard drops.
    fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let subscriber =
            service::logging::subscriber(service::logging::filter(None).unwrap(), capture.clone());
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far.
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The access line (`message`) of the request `request_id`.
    fn access_line(&self, request_id: &str, message: &str) -> Value {
        let text = self.text();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .find(|line| {
                line["span"]["request_id"] == request_id && line["fields"]["message"] == message
            })
            .unwrap_or_else(|| panic!("no access line for {request_id} in:\n{text}"))
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// The default current-thread runtime runs the server, the client and the
// JWKS server on this thread, where the capturing subscriber is the default.
#[tokio::test]
async fn access_lines_carry_who_what_and_how_long_and_nothing_secret() {
    let (capture, _default) = Capture::install();

    let app = TestApp::start().await;
    let token = key().token("log-reader");
    let body = "a private note about the quarterly numbers";
    let id = app.create(&token, body).await;
    let response = app
        .get(&format!("/api/v1/messages/{id}"))
        .bearer_auth(&token)
        .header("x-request-id", "log-check-1")
        .header("cookie", "csrf_token=cookie-value-never-logged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refused = app
        .get("/api/v1/messages")
        .bearer_auth("not.a.token")
        .header("x-request-id", "log-check-2")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let text = capture.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let access = |request_id: &str| capture.access_line(request_id, "request completed");

    let read = &access("log-check-1")["fields"];
    assert_eq!(read["user_id"], "log-reader");
    assert_eq!(read["method"], "GET");
    assert_eq!(read["route"], "/api/v1/messages/{id}");
    assert_eq!(read["status"], 200);
    assert!(read["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));

    let refused = &access("log-check-2")["fields"];
    assert_eq!(refused["status"], 401);
    assert!(refused.get("user_id").is_none(), "{refused}");
    // The refusal's reason is logged inside the same request's span.
    assert!(
        lines
            .iter()
            .any(|line| line["span"]["request_id"] == "log-check-2"
                && line["fields"]["message"] == "token refused")
    );

    for secret in [
        token.as_str(),
        "not.a.token",
        "cookie-value-never-logged",
        body,
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

// Not being ready is a state the probe reports by design: each probe while
// the keys cannot be had is a warning with the reason, not an error.
#[tokio::test]
async fn an_unready_probe_is_a_warning_and_a_failure_an_error() {
    let (capture, _default) = Capture::install();

    let app = crate::common::AppBuilder::with_jwks_url(&crate::common::dead_url().await)
        .start()
        .await;
    let ready = app
        .get("/readyz")
        .header("x-request-id", "probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // A token the keys are needed for: the key service being down is a failure.
    let failed = app
        .get("/api/v1/messages")
        .bearer_auth(key().token("alice"))
        .header("x-request-id", "keys-down-1")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);

    let probe = capture.access_line("probe-1", "request failed");
    assert_eq!(probe["level"], "WARN", "{probe}");
    assert_eq!(probe["fields"]["detail"], "no signing keys loaded");
    let failed = capture.access_line("keys-down-1", "request failed");
    assert_eq!(failed["level"], "ERROR", "{failed}");
}
