//! Helpers for the end-to-end tests: RSA keys made in the test, a local JWKS
//! server, tokens signed (or forged) by hand, and the service itself running
//! on loopback with a temporary SQLite database and secrets directory.

#![allow(clippy::unwrap_used, dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "portcullis";
/// The CSRF key the test apps use (made up, for tests only).
pub const CSRF_KEY: [u8; 32] = [0x5a; 32];

/// An RSA signing key and its `kid`.
pub struct TestKey {
    pub kid: String,
    pair: KeyPair,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: KeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// Signs `header.claims` with RS256, whatever the header says.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A valid token for `sub` with extra or overriding claims.
    pub fn token_for(&self, sub: &str, overrides: Value) -> String {
        let mut claims = claims(sub);
        if let (Some(target), Some(extra)) = (claims.as_object_mut(), overrides.as_object()) {
            for (key, value) in extra {
                if value.is_null() {
                    target.remove(key);
                } else {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        self.sign_raw(
            &json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid }),
            &claims,
        )
    }

    pub fn token(&self, sub: &str) -> String {
        self.token_for(sub, json!({}))
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600 })
}

/// The key every test app trusts (generated once per test binary).
pub fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("test-key-1"))
}

/// What the JWKS server answers.
#[derive(Clone)]
pub enum JwksMode {
    Keys(Value),
    Garbage,
    Down,
}

/// A JWKS endpoint on loopback that counts its fetches.
#[derive(Clone)]
pub struct JwksServer {
    pub url: String,
    pub mode: Arc<Mutex<JwksMode>>,
    pub fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(mode: JwksMode) -> Self {
        let mode = Arc::new(Mutex::new(mode));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served_mode, counter) = (mode.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            get(move || {
                let mode = served_mode.lock().unwrap().clone();
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    use axum::response::IntoResponse as _;
                    match mode {
                        JwksMode::Keys(set) => axum::Json(set).into_response(),
                        JwksMode::Garbage => "<html>not a key set</html>".into_response(),
                        JwksMode::Down => axum::http::StatusCode::BAD_GATEWAY.into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, mode, fetches }
    }

    pub fn with_keys(keys: &[&TestKey]) -> JwksMode {
        JwksMode::Keys(json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }))
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A URL on loopback where nothing listens.
pub async fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/jwks.json")
}

/// A running service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub jwks: Option<JwksServer>,
    _dir: tempfile::TempDir,
}

/// Builder of test apps.
pub struct AppBuilder {
    pub config: service::Config,
    jwks: Option<JwksServer>,
}

impl AppBuilder {
    pub async fn new() -> Self {
        let jwks = JwksServer::start(JwksServer::with_keys(&[key()])).await;
        let mut builder = Self::with_jwks_url(&jwks.url);
        builder.jwks = Some(jwks);
        builder
    }

    pub fn with_jwks_url(url: &str) -> Self {
        let mut config = service::Config::default();
        config.auth.issuer = ISSUER.to_owned();
        config.auth.audience = AUDIENCE.to_owned();
        config.auth.jwks_url = url.to_owned();
        // Generous limits, so only the rate-limit tests meet them.
        config.rate_limit.per_second = 100_000;
        config.rate_limit.per_minute = 100_000;
        config.rate_limit.per_hour = 100_000;
        Self { config, jwks: None }
    }

    pub fn jwks(mut self, jwks: JwksServer) -> Self {
        self.config.auth.jwks_url = jwks.url.clone();
        self.jwks = Some(jwks);
        self
    }

    pub async fn start(mut self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let secrets: PathBuf = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("csrf_signing_key"), CSRF_KEY).unwrap();
        self.config.secrets_dir = secrets;
        self.config.database_url = format!("sqlite:{}", dir.path().join("messages.db").display());

        let state = service::startup::build_state(&self.config).await.unwrap();
        let router = service::build_router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jwks: self.jwks,
            _dir: dir,
        }
    }
}

impl TestApp {
    pub async fn start() -> Self {
        AppBuilder::new().await.start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post_json(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Creates a message as `token`'s user and returns its id.
    pub async fn create(&self, token: &str, body: &str) -> String {
        let response = self
            .post_json("/api/v1/messages", &json!({ "body": body }))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let json: Value = response.json_value().await;
        json["id"].as_str().unwrap().to_owned()
    }

    /// Sends raw bytes and returns the raw response (for what a polite client cannot send).
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut response),
        )
        .await;
        String::from_utf8_lossy(&response).into_owned()
    }
}

/// `response.json()` without reqwest's `json` feature.
pub trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&bytes)))
    }
}

/// The error code of a JSON error response, checking its shape on the way.
pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json_value().await;
    let error = &body["error"];
    assert_eq!(
        error["request_id"].as_str(),
        request_id.as_deref(),
        "{body}"
    );
    (
        status,
        error["code"].as_str().unwrap_or("<none>").to_owned(),
    )
}
