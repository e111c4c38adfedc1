//! The Redis-backed rate limit: two stores stand for two replicas and must
//! enforce one shared limit. Skips with a printed reason when no Redis is
//! reachable (`SERVICE_TEST_REDIS_URL`, default the server on loopback).

use std::time::Duration;

use service::application::rate_limit::{Decision, Limit, RateLimitPolicy, RateLimitStore as _};
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
    let key = format!("test:{}", service::domain::MessageId::new());

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
    let other = format!("{key}-other");
    assert_eq!(
        replica_b.check(&other, &policy).await.unwrap(),
        Decision::Allowed
    );
}
