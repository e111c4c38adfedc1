//! Rate-limit stores. `MemoryStore` keeps the TATs in this process; `RedisStore`
//! keeps them in Redis and runs the same GCRA step as one Lua script, so the
//! check-and-charge is atomic across replicas and uses Redis's clock, not the
//! replicas' (which may disagree).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::application::rate_limit::{
    Decision, RateLimitError, RateLimitPolicy, RateLimitStore, decide,
};

/// Keys are hashed before they are stored: they hold user ids and addresses,
/// which have no business sitting in Redis or in a heap dump in clear.
fn storage_key(key: &str) -> String {
    format!("portcullis:rl:{}", hex::encode(key_digest(key)))
}

/// The first 128 bits of the key's SHA-256: the in-process map's key.
fn key_digest(key: &str) -> [u8; 16] {
    let digest = Sha256::digest(key.as_bytes());
    let mut half = [0u8; 16];
    half.copy_from_slice(&digest[..16]);
    half
}

fn now_us() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap_or(0)
}

fn limited(wait_us: u64) -> Decision {
    Decision::Limited {
        retry_after: Duration::from_micros(wait_us),
    }
}

/// TATs in a map in this process. Entries whose every TAT has passed are
/// dropped on a periodic sweep, so the map holds only active clients.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    tats: HashMap<[u8; 16], Vec<u64>>,
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
    pub fn check_now(&self, key: &str, policy: &RateLimitPolicy, now_us: u64) -> Decision {
        let key = key_digest(key);
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

        let tats = state.tats.entry(key).or_default();
        match decide(tats, policy, now_us) {
            Ok(next) => {
                *tats = next;
                Decision::Allowed
            }
            Err(wait_us) => limited(wait_us),
        }
    }
}

#[async_trait::async_trait]
impl RateLimitStore for MemoryStore {
    async fn check(&self, key: &str, policy: &RateLimitPolicy) -> Result<Decision, RateLimitError> {
        Ok(self.check_now(key, policy, now_us()))
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

    async fn check_shared(&self, key: &str, policy: &RateLimitPolicy) -> redis::RedisResult<u64> {
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
    async fn check(&self, key: &str, policy: &RateLimitPolicy) -> Result<Decision, RateLimitError> {
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
    use super::*;

    #[test]
    fn memory_store_limits_per_key() {
        let store = MemoryStore::new();
        let policy = RateLimitPolicy::default();
        for _ in 0..10 {
            assert_eq!(store.check_now("user:a", &policy, 5_000), Decision::Allowed);
        }
        assert!(matches!(
            store.check_now("user:a", &policy, 5_000),
            Decision::Limited { .. }
        ));
        assert_eq!(store.check_now("user:b", &policy, 5_000), Decision::Allowed);
    }

    #[test]
    fn keys_are_hashed() {
        let key = storage_key("user:alice@example.com");
        assert!(!key.contains("alice"));
        assert_eq!(key.len(), "portcullis:rl:".len() + 32);
    }
}
