//! Load benchmark: an authenticated read of one message through the whole
//! middleware stack, against the same read with no middleware at all. Both
//! routers run on loopback in this process; a keep-alive client drives each
//! for a fixed time with a fixed number of connections and reports requests
//! per second and latency percentiles.
//!
//! ```text
//! cargo run --release -p service --example load -- [seconds] [connections]
//! ```
//!
//! The rate limits are raised out of reach so every request is served (the
//! limiter still does all its work). The token cache is measured both on (the
//! default) and off, to show what RSA verification costs per request.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use service::domain::{MessageBody, MessageId, UserId};
use service::presentation::routes::MessageView;

const ISSUER: &str = "https://issuer.bench";
const AUDIENCE: &str = "portcullis";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

struct Report {
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    errors: usize,
}

async fn drive(url: String, token: Arc<String>, seconds: u64, connections: usize) -> Report {
    // Warm up connections and caches for a moment before measuring.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    for _ in 0..connections {
        let _ = client.get(&url).bearer_auth(token.as_str()).send().await;
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match client.get(&url).bearer_auth(token.as_str()).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }

    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut own, own_errors) = task.await.unwrap();
        latencies.append(&mut own);
        errors += own_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Report {
        rps: latencies.len() as f64 / elapsed,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        errors,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 60);
    let connections: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(16)
        .clamp(1, 256);

    // The production log format, written to a sink: formatting each access
    // line is part of what the stack costs.
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(std::io::sink)
        .init();

    // Keys, JWKS endpoint and a token, all made here.
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let jwk = json!({ "kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
        "n": b64(pair.public_key().modulus().big_endian_without_leading_zero()),
        "e": b64(pair.public_key().exponent().big_endian_without_leading_zero()) });
    let jwks = axum::Router::new().route(
        "/jwks.json",
        get(move || {
            let set = json!({ "keys": [jwk.clone()] });
            async move { Json(set) }
        }),
    );
    let jwks_addr = serve(jwks).await;

    let now = u64::try_from(jiff::Timestamp::now().as_second()).unwrap();
    let claims = json!({ "sub": "bench-user", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600 });
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"RS256","typ":"JWT","kid":"bench"}"#),
        b64(claims.to_string())
    );
    let mut signature = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    let token = Arc::new(format!("{input}.{}", b64(signature)));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("csrf_signing_key"), [7u8; 32]).unwrap();
    let config_for = |cache_secs: u64| {
        let mut config = service::Config {
            secrets_dir: dir.path().to_owned(),
            database_url: format!("sqlite:{}", dir.path().join("bench.db").display()),
            ..Default::default()
        };
        config.auth.issuer = ISSUER.into();
        config.auth.audience = AUDIENCE.into();
        config.auth.jwks_url = format!("http://{jwks_addr}/jwks.json");
        config.auth.token_cache_secs = cache_secs;
        config.rate_limit.per_second = u32::MAX;
        config.rate_limit.per_minute = u32::MAX;
        config.rate_limit.per_hour = u32::MAX;
        config
    };

    let state = service::startup::build_state(&config_for(60))
        .await
        .unwrap();
    let user = UserId::parse("bench-user").unwrap();
    let message = state
        .messages
        .create(&user, MessageBody::parse("hello, bench").unwrap())
        .await
        .unwrap();
    let path = format!("/api/v1/messages/{}", message.id);

    // The baseline: the read handler's work (scoped read, JSON view) and nothing else.
    let bare_state = state.clone();
    let bare = axum::Router::new()
        .route(
            "/api/v1/messages/{id}",
            get(
                |State(state): State<service::AppState>,
                 axum::extract::Path(id): axum::extract::Path<String>| async move {
                    let user = UserId::parse("bench-user").unwrap();
                    let id = MessageId::parse(&id, "id").unwrap();
                    let message = state.messages.read(&user, id).await.unwrap();
                    Json(MessageView::from(&message))
                },
            ),
        )
        .with_state(bare_state);
    let full = service::build_router(state);
    let uncached =
        service::build_router(service::startup::build_state(&config_for(0)).await.unwrap());

    let (bare_addr, full_addr, uncached_addr) =
        (serve(bare).await, serve(full).await, serve(uncached).await);
    println!("{seconds} s per run, {connections} connections, GET {path}");
    let mut results = Vec::new();
    for (name, addr) in [
        ("no middleware", bare_addr),
        ("full stack", full_addr),
        ("full stack, no token cache", uncached_addr),
    ] {
        let report = drive(
            format!("http://{addr}{path}"),
            token.clone(),
            seconds,
            connections,
        )
        .await;
        println!(
            "{name:<28} {:>9.0} req/s   p50 {:>6} us   p99 {:>6} us   errors {}",
            report.rps, report.p50_us, report.p99_us, report.errors
        );
        results.push(report.rps);
    }
    println!(
        "full stack costs {:.1}% of throughput ({:.1}% without the token cache)",
        100.0 * (1.0 - results[1] / results[0]),
        100.0 * (1.0 - results[2] / results[0])
    );
}
