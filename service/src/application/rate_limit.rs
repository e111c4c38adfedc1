//! Rate limiting with the generic cell rate algorithm (GCRA): each limit
//! ("10 per second", "60 per minute", "1000 per hour") is a token bucket kept
//! as one number, its theoretical arrival time (TAT). A request is admitted
//! only when every limit admits it, and then all of them are charged, so a
//! refused request costs nothing. The in-process and Redis stores run the same
//! arithmetic; see `infrastructure::rate_store`.

use std::fmt;
use std::time::Duration;

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

/// Where the TATs live: in process, or in Redis to share one limit across replicas.
#[async_trait::async_trait]
pub trait RateLimitStore: Send + Sync + fmt::Debug {
    /// Decides for `key` and charges it when admitted.
    async fn check(&self, key: &str, policy: &RateLimitPolicy) -> Result<Decision, RateLimitError>;
}

/// The GCRA step for all limits of one key: given the stored TATs (0 when
/// unknown) and the time, either the new TATs to store or the wait.
pub fn decide(tats: &[u64], policy: &RateLimitPolicy, now_us: u64) -> Result<Vec<u64>, u64> {
    let mut next = Vec::with_capacity(policy.limits.len());
    let mut wait_us = 0;
    for (idx, limit) in policy.limits.iter().enumerate() {
        let tat = tats.get(idx).copied().unwrap_or(0).max(now_us);
        let next_tat = tat + limit.interval_us();
        // Admit when the bucket, after this request, holds at most one period.
        let over = next_tat.saturating_sub(now_us + limit.period_us());
        wait_us = wait_us.max(over);
        next.push(next_tat);
    }
    if wait_us > 0 { Err(wait_us) } else { Ok(next) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &RateLimitPolicy, times: &[u64]) -> Vec<bool> {
        let mut tats = Vec::new();
        times
            .iter()
            .map(|&now| match decide(&tats, policy, now) {
                Ok(next) => {
                    tats = next;
                    true
                }
                Err(_) => false,
            })
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
        let first = decide(&[], &policy, 0).unwrap_or_default();
        let second = decide(&first, &policy, 0).unwrap_or_default();
        assert_eq!(decide(&second, &policy, 0), Err(500_000));
        // Half a second later one slot is back.
        assert!(decide(&second, &policy, 500_000).is_ok());
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
}
