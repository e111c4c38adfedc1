//! Rate limiting with the generic cell rate algorithm (GCRA): each limit
//! ("10 per second", "60 per minute", "1000 per hour") is a token bucket kept
//! as one number, its theoretical arrival time (TAT). A request is admitted
//! only when every limit admits it, and then all of them are charged, so a
//! refused request costs nothing. The in-process and Redis stores run the same
//! arithmetic; see `infrastructure::rate_store`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::domain::UserId;

/// One limit: at most `count` requests per `period`, all of which may come at
/// once (the burst equals the count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests admitted per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl Limit {
    /// Microseconds between two requests at the sustained rate. Microseconds,
    /// not milliseconds: a limit above 1000 per second (a service-wide one, or
    /// a benchmark's) must not be rounded down to 1000 per second.
    pub fn interval_us(&self) -> u64 {
        (self.period.as_micros() as u64 / u64::from(self.count.max(1))).max(1)
    }

    /// The period in microseconds.
    pub fn period_us(&self) -> u64 {
        self.period.as_micros() as u64
    }
}

/// The limits applied to every key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// All of them must admit a request.
    pub limits: Vec<Limit>,
}

impl Default for RateLimitPolicy {
    /// 10 per second, 60 per minute, 1000 per hour.
    fn default() -> Self {
        Self {
            limits: vec![
                Limit {
                    count: 10,
                    period: Duration::from_secs(1),
                },
                Limit {
                    count: 60,
                    period: Duration::from_secs(60),
                },
                Limit {
                    count: 1000,
                    period: Duration::from_secs(3600),
                },
            ],
        }
    }
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted (and charged).
    Allowed,
    /// Refused; the client may retry after this long.
    Limited {
        /// Time until every limit would admit the request.
        retry_after: Duration,
    },
}

/// The store could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("rate limit store failed: {0}")]
pub struct RateLimitError(pub String);

/// Who a request is counted as: a verified user, else the client's address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A user whose token verified.
    User(UserId),
    /// An anonymous client (or one whose token did not verify), by the
    /// connection's address; `None` when the address was not recorded.
    Address(Option<IpAddr>),
}

impl RateKey {
    /// The first 128 bits of the SHA-256 of `user:<sub>` or `addr:<ip>`
    /// (`addr:unknown`): what a store shared between replicas keys on, so
    /// the user ids and addresses behind it do not sit in it in clear.
    pub fn digest(&self) -> [u8; 16] {
        let mut hasher = Sha256::new();
        match self {
            Self::User(user) => {
                hasher.update(b"user:");
                hasher.update(user.as_str().as_bytes());
            }
            Self::Address(Some(ip)) => hasher.update(format!("addr:{ip}").as_bytes()),
            Self::Address(None) => hasher.update(b"addr:unknown"),
        }
        let digest = hasher.finalize();
        let mut half = [0u8; 16];
        half.copy_from_slice(&digest[..16]);
        half
    }
}

// User ids and addresses are personal data: not in debug output.
impl fmt::Debug for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(_) => f.write_str("RateKey::User(..)"),
            Self::Address(_) => f.write_str("RateKey::Address(..)"),
        }
    }
}

/// Where the TATs live: in process, or in Redis to share one limit across replicas.
#[async_trait::async_trait]
pub trait RateLimitStore: Send + Sync + fmt::Debug {
    /// Decides for `key` and charges it when admitted.
    async fn check(
        &self,
        key: &RateKey,
        policy: &RateLimitPolicy,
    ) -> Result<Decision, RateLimitError>;

    /// The same decision without waiting, for a store that keeps its state in
    /// this process; `None` (the default) means `check` must be asked. Saves
    /// the in-process store a boxed future on every request.
    fn check_at_once(&self, _key: &RateKey, _policy: &RateLimitPolicy) -> Option<Decision> {
        None
    }
}

/// The GCRA step for all limits of one key: given the stored TATs (0 when
/// unknown, one per limit of `policy`) and the time, either charges them in
/// place or returns the wait (and leaves them as they were).
pub fn decide(tats: &mut [u64], policy: &RateLimitPolicy, now_us: u64) -> Result<(), u64> {
    let next_tat = |tat: u64, limit: &Limit| tat.max(now_us) + limit.interval_us();
    let mut wait_us = 0;
    for (&tat, limit) in tats.iter().zip(&policy.limits) {
        // Admit when the bucket, after this request, holds at most one period.
        let over = next_tat(tat, limit).saturating_sub(now_us + limit.period_us());
        wait_us = wait_us.max(over);
    }
    if wait_us > 0 {
        return Err(wait_us);
    }
    for (tat, limit) in tats.iter_mut().zip(&policy.limits) {
        *tat = next_tat(*tat, limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &RateLimitPolicy, times: &[u64]) -> Vec<bool> {
        let mut tats = vec![0; policy.limits.len()];
        times
            .iter()
            .map(|&now| decide(&mut tats, policy, now).is_ok())
            .collect()
    }

    #[test]
    fn burst_of_ten_then_refused_within_the_second() {
        let admitted = run(&RateLimitPolicy::default(), &[1_000; 11]);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 10);
        assert!(!admitted[10]);
    }

    #[test]
    fn sixty_per_minute_holds_even_when_spread() {
        // Ten per second for ten seconds: the per-second limit admits all, the
        // per-minute limit stops at 60 (after its burst and refills).
        let times: Vec<u64> = (0..100).map(|i| 1_000_000 + i * 100_000).collect();
        let admitted = run(&RateLimitPolicy::default(), &times)
            .iter()
            .filter(|a| **a)
            .count();
        assert!((60..=70).contains(&admitted), "{admitted}");
    }

    #[test]
    fn refused_requests_are_not_charged_and_wait_is_reported() {
        let policy = RateLimitPolicy {
            limits: vec![Limit {
                count: 2,
                period: Duration::from_secs(1),
            }],
        };
        let mut tats = [0];
        assert_eq!(decide(&mut tats, &policy, 0), Ok(()));
        assert_eq!(decide(&mut tats, &policy, 0), Ok(()));
        let charged = tats;
        assert_eq!(decide(&mut tats, &policy, 0), Err(500_000));
        assert_eq!(tats, charged, "a refused request is not charged");
        // Half a second later one slot is back.
        assert!(decide(&mut tats, &policy, 500_000).is_ok());
    }

    #[test]
    fn limits_above_a_thousand_per_second_are_not_rounded_down() {
        let policy = RateLimitPolicy {
            limits: vec![Limit {
                count: 100_000,
                period: Duration::from_secs(1),
            }],
        };
        // 5000 requests at one instant fit in a burst of 100 000.
        let admitted = run(&policy, &[1_000_000; 5_000]);
        assert!(admitted.iter().all(|a| *a));
    }

    #[test]
    fn digests_are_of_the_kind_and_the_name() {
        let digest_of = |text: &str| -> [u8; 16] {
            let digest = Sha256::digest(text.as_bytes());
            digest[..16].try_into().unwrap_or_default()
        };
        let user = UserId::parse("alice@example.com").unwrap_or_else(|_| unreachable!());
        let key = RateKey::User(user);
        assert_eq!(key.digest(), digest_of("user:alice@example.com"));
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert_eq!(
            RateKey::Address(Some(ip)).digest(),
            digest_of("addr:192.0.2.1")
        );
        assert_eq!(RateKey::Address(None).digest(), digest_of("addr:unknown"));
        assert_eq!(format!("{key:?}"), "RateKey::User(..)");
    }
}
