//! The Redis-backed rate limit: two stores stand for two replicas and must
//! enforce one shared limit. Skips with a printed reason when no Redis is
//! reachable (`SERVICE_TEST_REDIS_URL`, default the server on loopback). The
//! fallback to in-process limits runs against a fake server that fails.

use std::time::Duration;

use service::application::rate_limit::{
    Decision, Limit, RateKey, RateLimitPolicy, RateLimitStore as _,
};
use service::domain::UserId;
use service::infrastructure::rate_store::RedisStore;

#[tokio::test]
async fn two_replicas_share_one_limit() {
    let url = std::env::var("SERVICE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let replica_a = match RedisStore::connect(&url).await {
        Ok(store) => store,
        Err(err) => {
            println!("SKIPPED two_replicas_share_one_limit: {err}; set SERVICE_TEST_REDIS_URL");
            return;
        }
    };
    let replica_b = RedisStore::connect(&url).await.unwrap();
    // Ten a minute: nothing refills during the test, however slow the machine.
    let policy = RateLimitPolicy {
        limits: vec![Limit {
            count: 10,
            period: Duration::from_secs(60),
        }],
    };
    let name = format!("test-{}", service::domain::MessageId::new());
    let key = RateKey::User(UserId::parse(&name).unwrap());

    let mut admitted = 0;
    for idx in 0..10 {
        let store = if idx % 2 == 0 { &replica_a } else { &replica_b };
        if store.check(&key, &policy).await.unwrap() == Decision::Allowed {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
    for store in [&replica_a, &replica_b] {
        match store.check(&key, &policy).await.unwrap() {
            Decision::Limited { retry_after } => assert!(retry_after.as_millis() > 0),
            Decision::Allowed => panic!("the eleventh request passed a replica"),
        }
    }
    // Another key is unaffected.
    let other = RateKey::User(UserId::parse(&format!("{name}-other")).unwrap());
    assert_eq!(
        replica_b.check(&other, &policy).await.unwrap(),
        Decision::Allowed
    );
}

/// Two running replicas configured with the same `redis-url`: ten requests
/// spread over both, then the eleventh gets 429 with `Retry-After` whichever
/// replica it reaches.
#[tokio::test]
async fn two_service_replicas_answer_429_on_one_shared_limit() {
    let url = std::env::var("SERVICE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    if let Err(err) = RedisStore::connect(&url).await {
        println!("SKIPPED two_service_replicas_answer_429_on_one_shared_limit: {err}");
        return;
    }
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut builder = crate::common::AppBuilder::new().await;
        builder.config.rate_limit = Default::default();
        builder.config.rate_limit.per_minute = 10;
        builder.config.redis_url = Some(url.clone());
        replicas.push(builder.start().await);
    }
    // A user of its own, so earlier runs' counts in Redis do not matter.
    let user = format!("redis-user-{}", service::domain::MessageId::new());
    let token = crate::common::key().token(&user);

    for idx in 0..10 {
        let response = replicas[idx % 2]
            .get("/api/v1/messages")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {idx}");
    }
    for replica in &replicas {
        let response = replica
            .get("/api/v1/messages")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            crate::common::error_code(response).await,
            (429, "rate_limited".into())
        );
    }
}

/// A server that speaks just enough RESP to answer every command with an
/// error, standing for a Redis that is up but failing.
async fn failing_redis() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(read) = stream.read(&mut chunk).await {
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    // One error per complete command (`*N` then N bulk strings).
                    while let Some(used) = complete_command(&buffer) {
                        buffer.drain(..used);
                        if stream
                            .write_all(b"-ERR failing on purpose\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("redis://{addr}/")
}

/// The length of the first complete RESP command in `buffer`, if any.
fn complete_command(buffer: &[u8]) -> Option<usize> {
    fn line(buffer: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = buffer.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
        Some((&buffer[at..end], end + 2))
    }
    let (header, mut at) = line(buffer, 0)?;
    let count: usize = std::str::from_utf8(header.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    for _ in 0..count {
        let (length, next) = line(buffer, at)?;
        let length: usize = std::str::from_utf8(length.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        at = next + length + 2;
        if buffer.len() < at {
            return None;
        }
    }
    Some(at)
}

/// When Redis fails, the store limits in process: an outage degrades to
/// per-replica limits, never to no limit.
#[tokio::test]
async fn a_failing_redis_falls_back_to_in_process_limits() {
    let store = match RedisStore::connect(&failing_redis().await).await {
        Ok(store) => store,
        Err(err) => panic!("the store must connect to a server that answers: {err}"),
    };
    let policy = RateLimitPolicy {
        limits: vec![Limit {
            count: 3,
            period: Duration::from_secs(60),
        }],
    };
    let key = &RateKey::Address(None);
    for _ in 0..3 {
        assert_eq!(store.check(key, &policy).await.unwrap(), Decision::Allowed);
    }
    assert!(matches!(
        store.check(key, &policy).await.unwrap(),
        Decision::Limited { .. }
    ));
}
