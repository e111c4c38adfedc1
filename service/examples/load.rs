//! Load benchmark: an authenticated read of one message through the whole
//! middleware stack, against the same read with no middleware at all.
//!
//! ```text
//! cargo run --release -p service --example load -- [seconds] [connections] [rounds]
//! ```
//!
//! (defaults: 3 s per run, 16 connections, 5 rounds)
//!
//! 1. In process: a handler that does nothing, called directly as a tower
//!    service with and without the stack. No sockets, client or database,
//!    so the difference is the layers' own work per request.
//! 2. Over loopback, driven by a keep-alive Rust client in this process (on
//!    a thread and runtime of its own, apart from the servers'), for a
//!    fixed time with a fixed number of connections: requests per second
//!    and latency percentiles of the bare read, the full stack, and the full
//!    stack with the token cache off (what RSA verification costs).
//! 3. The same with wrk in its own process, when `wrk` is on the PATH: the
//!    client's own work then stays out of the server's process.
//!
//! The machines this runs on are shared and noisy, so each figure is the
//! median over several rounds, and each round runs every router in turn:
//! the stack's cost is taken per round (its router against the bare one
//! run just before it) and reported as the median and the range of those.
//! The rate limits are raised out of reach so every request is served (the
//! limiter still does all its work), and the access log is formatted in
//! full and written to a sink.
//!
//! For profilers and other load generators: `PROFILE_STACK=1` runs only the
//! in-process loop over the stack (`perf record --call-graph dwarf`);
//! `SERVE_ONLY=1` serves the bare and the full router and prints their
//! URLs and the path of a file holding the token, until killed
//! (`SERVE_ONLY=nodb`: the handler that does nothing, with and without the
//! stack).

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
use service::presentation::middleware::auth::AuthUser;
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

/// `drive` on a runtime of its own, on one thread of its own (like wrk's
/// `-t1`): the client's tasks never run on the servers' workers, where they
/// would take turns with the requests they measure.
async fn drive_apart(url: String, token: Arc<String>, seconds: u64, connections: usize) -> Report {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(drive(url, token, seconds, connections))
    })
    .await
    .unwrap()
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

const IN_PROCESS_CALLS: u32 = 50_000;

/// Wall time of one call of `router` on `path` with the bench token, called
/// directly as a tower service: the best of three rounds, after a warm-up.
async fn in_process(router: &axum::Router, path: &str, token: &str) -> f64 {
    use tower::ServiceExt as _;
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let authorization = format!("Bearer {token}");
    let call = || async {
        let mut request = axum::http::Request::get(path)
            .header("authorization", authorization.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let response = router.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
    };
    for _ in 0..IN_PROCESS_CALLS / 10 {
        call().await;
    }
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..IN_PROCESS_CALLS {
            call().await;
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e6 / f64::from(IN_PROCESS_CALLS));
    }
    best
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(3)
        .clamp(1, 60);
    let connections: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(16)
        .clamp(1, 256);
    let rounds: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5)
        .clamp(1, 50);

    // The production log format, written to a sink: formatting each access
    // line is part of what the stack costs.
    tracing_subscriber::util::SubscriberInitExt::init(service::logging::subscriber(
        service::logging::filter(None).unwrap(),
        std::io::sink,
    ));

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
    let full = service::build_router(state.clone());
    let uncached =
        service::build_router(service::startup::build_state(&config_for(0)).await.unwrap());

    // In process: the stack over a handler that does nothing, against that
    // handler alone, called directly as tower services on this thread. No
    // sockets, client or database: the difference is the layers' own work.
    let alone = axum::Router::new().route("/me", get(|| async { "bench-user" }));
    let wrapped = service::app::with_middleware(
        axum::Router::new().route("/me", get(|_user: AuthUser| async { "bench-user" })),
        state.clone(),
    );
    if std::env::var("PROFILE_STACK").is_ok() {
        for _ in 0..4 {
            in_process(&wrapped, "/me", &token).await;
        }
        return;
    }
    let alone_us = in_process(&alone, "/me", &token).await;
    let wrapped_us = in_process(&wrapped, "/me", &token).await;
    println!(
        "in process, {IN_PROCESS_CALLS} calls: handler alone {alone_us:.2} us, \
         with the stack {wrapped_us:.2} us: the stack's own work is {:.2} us per request",
        wrapped_us - alone_us
    );

    let (bare_addr, full_addr, uncached_addr) =
        (serve(bare).await, serve(full).await, serve(uncached).await);
    if let Ok(what) = std::env::var("SERVE_ONLY") {
        // For an external load generator or profiler: serve until killed.
        // The token is a file, not output: it is a credential (if only for
        // this process's own throwaway key).
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token.as_bytes()).unwrap();
        let (bare_url, full_url) = if what == "nodb" {
            let (alone, wrapped) = (serve(alone.clone()).await, serve(wrapped.clone()).await);
            (format!("http://{alone}/me"), format!("http://{wrapped}/me"))
        } else {
            (
                format!("http://{bare_addr}{path}"),
                format!("http://{full_addr}{path}"),
            )
        };
        println!(
            "bare {bare_url}\nfull {full_url}\ntoken-file {}",
            token_file.display()
        );
        std::future::pending::<()>().await;
    }
    println!(
        "over loopback: {rounds} rounds of {seconds} s per router, the routers in turn within \
         each round; {connections} connections; GET {path}; medians over the rounds"
    );
    let routers = [
        ("no middleware", bare_addr),
        ("full stack", full_addr),
        ("full stack, no token cache", uncached_addr),
    ];

    // The Rust client, in this process.
    let mut client: Vec<Vec<Report>> = routers.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (runs, (_, addr)) in client.iter_mut().zip(routers) {
            let url = format!("http://{addr}{path}");
            runs.push(drive_apart(url, token.clone(), seconds, connections).await);
        }
    }
    for ((name, _), runs) in routers.iter().zip(&client) {
        print_row("client", name, runs);
    }

    // wrk, in its own process, when installed: the client's own work is
    // then out of the server's process (it still shares the machine).
    let mut by_wrk: Vec<Vec<Report>> = Vec::new();
    if wrk_installed() {
        by_wrk = routers[..2].iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (runs, (_, addr)) in by_wrk.iter_mut().zip(routers) {
                let url = format!("http://{addr}{path}");
                runs.push(wrk(url, token.clone(), seconds, connections).await);
            }
        }
        for ((name, _), runs) in routers.iter().zip(&by_wrk) {
            print_row("wrk", name, runs);
        }
    } else {
        println!("wrk              not installed (apt-get install wrk); skipped");
    }

    print_cost("the Rust client", &client[0], &client[1]);
    print_cost("the Rust client, token cache off,", &client[0], &client[2]);
    if by_wrk.len() == 2 {
        print_cost("wrk", &by_wrk[0], &by_wrk[1]);
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

fn print_row(driver: &str, name: &str, runs: &[Report]) {
    let of = |field: fn(&Report) -> f64| median(runs.iter().map(field).collect());
    let errors: usize = runs.iter().map(|run| run.errors).sum();
    println!(
        "{driver:<6} {name:<28} {:>9.0} req/s   p50 {:>6.0} us   p99 {:>6.0} us   errors {errors}",
        of(|run| run.rps),
        of(|run| run.p50_us as f64),
        of(|run| run.p99_us as f64),
    );
}

/// The cost of the stack in each round (its router against the bare one
/// run just before it), as the median and the range over the rounds.
fn print_cost(driver: &str, bare: &[Report], stack: &[Report]) {
    let costs: Vec<f64> = bare
        .iter()
        .zip(stack)
        .map(|(bare, stack)| 100.0 * (1.0 - stack.rps / bare.rps))
        .collect();
    let (low, high) = costs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &cost| {
            (low.min(cost), high.max(cost))
        });
    println!(
        "the full stack costs {:.1}% of throughput with {driver} (median of {} rounds; \
         {low:.1} to {high:.1}%)",
        median(costs.clone()),
        costs.len()
    );
}

fn wrk_installed() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

/// One wrk run (one thread: the other core serves), parsed.
async fn wrk(url: String, token: Arc<String>, seconds: u64, connections: usize) -> Report {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("wrk")
            .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
            .args([
                "--latency",
                "-H",
                &format!("Authorization: Bearer {token}"),
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let micros = |value: &str| -> u64 {
        let (number, scale) = if let Some(n) = value.strip_suffix("us") {
            (n, 1.0)
        } else if let Some(n) = value.strip_suffix("ms") {
            (n, 1e3)
        } else if let Some(n) = value.strip_suffix('s') {
            (n, 1e6)
        } else {
            (value, 1.0)
        };
        (number.parse::<f64>().unwrap_or(0.0) * scale) as u64
    };
    let field = |label: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    Report {
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50_us: micros(&field("50%")),
        p99_us: micros(&field("99%")),
        errors: field("Non-2xx or 3xx responses:").parse().unwrap_or(0)
            + field("Socket errors:").len().min(1),
    }
}
