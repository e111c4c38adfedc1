//! Rate-limit stores. `MemoryStore` keeps the TATs in this process; `RedisStore`
//! keeps them in Redis and runs the same GCRA step as one Lua script, so the
//! check-and-charge is atomic across replicas and uses Redis's clock, not the
//! replicas' (which may disagree).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::application::rate_limit::{
    Decision, RateKey, RateLimitError, RateLimitPolicy, RateLimitStore, decide,
};

/// The Redis key of `key`: its digest in hex (never the user id or address).
fn storage_key(key: &RateKey) -> String {
    format!("portcullis:rl:{}", hex::encode(key.digest()))
}

fn now_us() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0)
}

fn limited(wait_us: u64) -> Decision {
    Decision::Limited {
        retry_after: Duration::from_micros(wait_us),
    }
}

/// TATs in a map in this process, by key as it is (the process already holds
/// the user ids it verified). Entries whose every TAT has passed are dropped
/// on a periodic sweep, so the map holds only active clients.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    tats: HashMap<RateKey, Vec<u64>>,
    checks_since_sweep: u32,
}

/// How many checks between two sweeps of expired entries.
const SWEEP_EVERY: u32 = 4096;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The synchronous check, also used by `RedisStore` as its fallback.
    pub fn check_now(&self, key: &RateKey, policy: &RateLimitPolicy, now_us: u64) -> Decision {
        // A poisoned lock only means another request panicked mid-update; the
        // map is still a valid map, so keep limiting rather than fail open.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());

        state.checks_since_sweep += 1;
        if state.checks_since_sweep >= SWEEP_EVERY {
            state.checks_since_sweep = 0;
            state
                .tats
                .retain(|_, tats| tats.iter().any(|&tat| tat > now_us));
        }

        let tats = match state.tats.get_mut(key) {
            Some(tats) => tats,
            None => state.tats.entry(key.clone()).or_default(),
        };
        // One TAT per limit; a policy with more limits than stored starts
        // the new ones empty.
        tats.resize(policy.limits.len(), 0);
        match decide(tats, policy, now_us) {
            Ok(()) => Decision::Allowed,
            Err(wait_us) => limited(wait_us),
        }
    }
}

#[async_trait::async_trait]
impl RateLimitStore for MemoryStore {
    async fn check(
        &self,
        key: &RateKey,
        policy: &RateLimitPolicy,
    ) -> Result<Decision, RateLimitError> {
        Ok(self.check_now(key, policy, now_us()))
    }

    fn check_at_once(&self, key: &RateKey, policy: &RateLimitPolicy) -> Option<Decision> {
        Some(self.check_now(key, policy, now_us()))
    }
}

/// The GCRA step of `application::rate_limit::decide`, in Lua. ARGV holds
/// (interval_us, period_us) pairs; the result is 0 (admitted and charged) or
/// the wait in microseconds. Microseconds since the epoch (about 1.7e15) are
/// exact in Lua's doubles, which hold integers up to 2^53.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #ARGV / 2
local next_tats = {}
local wait = 0
local ttl = 1
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('HGET', KEYS[1], tostring(i)) or '0') or 0
  if tat < now then tat = now end
  local next_tat = tat + interval
  local over = next_tat - now - period
  if over > wait then wait = over end
  next_tats[i] = next_tat
  if period > ttl then ttl = period end
end
if wait > 0 then return wait end
for i = 1, n do redis.call('HSET', KEYS[1], tostring(i), next_tats[i]) end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
return 0
";

/// TATs in Redis, shared by every replica. When Redis cannot be reached the
/// store falls back to limiting in process (logged once per outage), so an
/// outage degrades to per-replica limits, never to no limit.
pub struct RedisStore {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    fallback: MemoryStore,
    is_degraded: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis at `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)
            .map_err(|err| RateLimitError(format!("invalid Redis URL: {err}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1);
        let connection = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|err| RateLimitError(format!("could not connect to Redis: {err}")))?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA_SCRIPT),
            fallback: MemoryStore::new(),
            is_degraded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    async fn check_shared(
        &self,
        key: &RateKey,
        policy: &RateLimitPolicy,
    ) -> redis::RedisResult<u64> {
        let mut invocation = self.script.key(storage_key(key));
        for limit in &policy.limits {
            invocation.arg(limit.interval_us()).arg(limit.period_us());
        }
        let mut connection = self.connection.clone();
        invocation.invoke_async(&mut connection).await
    }
}

#[async_trait::async_trait]
impl RateLimitStore for RedisStore {
    async fn check(
        &self,
        key: &RateKey,
        policy: &RateLimitPolicy,
    ) -> Result<Decision, RateLimitError> {
        use std::sync::atomic::Ordering;

        match self.check_shared(key, policy).await {
            Ok(0) => {
                if self.is_degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis rate-limit store reachable again");
                }
                Ok(Decision::Allowed)
            }
            Ok(wait_us) => Ok(limited(wait_us)),
            Err(err) => {
                if !self.is_degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "Redis rate-limit store failed; limiting in process until it is back");
                }
                Ok(self.fallback.check_now(key, policy, now_us()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::UserId;

    #[test]
    fn memory_store_limits_per_key() {
        let store = MemoryStore::new();
        let policy = RateLimitPolicy::default();
        let user = |name: &str| RateKey::User(UserId::parse(name).unwrap());
        let (a, b) = (user("a"), user("b"));
        for _ in 0..10 {
            assert_eq!(store.check_now(&a, &policy, 5_000), Decision::Allowed);
        }
        assert!(matches!(
            store.check_now(&a, &policy, 5_000),
            Decision::Limited { .. }
        ));
        assert_eq!(store.check_now(&b, &policy, 5_000), Decision::Allowed);
    }

    #[test]
    fn a_policy_that_gains_a_limit_keeps_counting() {
        let store = MemoryStore::new();
        let key = RateKey::Address(None);
        let one = RateLimitPolicy {
            limits: vec![RateLimitPolicy::default().limits[0]],
        };
        for _ in 0..10 {
            assert_eq!(store.check_now(&key, &one, 5_000), Decision::Allowed);
        }
        // The per-second TAT is kept; the new limits start empty.
        assert!(matches!(
            store.check_now(&key, &RateLimitPolicy::default(), 5_000),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn keys_are_hashed() {
        let alice = UserId::parse("alice@example.com").unwrap();
        let key = storage_key(&RateKey::User(alice));
        assert!(!key.contains("alice"));
        assert_eq!(key.len(), "portcullis:rl:".len() + 32);
        // The same Redis key as when keys were formatted as text first.
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(b"user:alice@example.com");
        assert_eq!(key, format!("portcullis:rl:{}", hex::encode(&digest[..16])));
    }
}
