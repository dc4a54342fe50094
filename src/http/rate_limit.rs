//! Token-bucket rate limits, per API key and per client address. A bucket holds up to
//! `burst` requests and refills at `per_sec`; an empty bucket answers 429 with the seconds
//! until the next request would pass (`Retry-After`). Limits are per process: N processes
//! behind a balancer allow up to N times the rate in total.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::LimitSettings;

/// Buckets kept before full (idle) ones are swept.
const SWEEP_AT: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One family of buckets with one rate.
#[derive(Debug)]
pub struct Buckets {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    /// Buckets of `burst` refilling at `per_sec`.
    pub fn new(per_sec: f64, burst: f64) -> Buckets {
        Buckets {
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `who`'s bucket at `now`: `Ok` holds the whole requests left,
    /// `Err` how long until one is available.
    pub fn take_at(&self, who: &str, now: Instant) -> Result<u64, Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(who) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
            });
        }
        let bucket = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(bucket.tokens.floor() as u64)
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }

    /// [`Buckets::take_at`] now.
    pub fn take(&self, who: &str) -> Result<u64, Duration> {
        self.take_at(who, Instant::now())
    }

    /// Requests a full bucket holds.
    pub fn burst(&self) -> u64 {
        self.burst as u64
    }
}

/// The limits of one process.
#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    /// Authenticated callers, by key id (by address on an open server).
    pub per_key: Buckets,
    /// Unauthenticated requests and failed credentials, by address.
    pub per_ip: Buckets,
}

impl RateLimiter {
    /// Limits from the settings.
    pub fn new(settings: &LimitSettings) -> RateLimiter {
        RateLimiter {
            enabled: settings.rate_limits,
            per_key: Buckets::new(settings.per_key_per_sec, settings.per_key_burst),
            per_ip: Buckets::new(settings.per_ip_per_sec, settings.per_ip_burst),
        }
    }

    /// Whether rate limits apply at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// Whole seconds for `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let b = Buckets::new(2.0, 3.0);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            assert_eq!(b.take_at("k", t0), Ok(left));
        }
        let wait = b.take_at("k", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        // Another caller has its own bucket.
        assert!(b.take_at("other", t0).is_ok());
        // Half a second later one request passes, the next does not.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take_at("k", t1).is_ok());
        assert!(b.take_at("k", t1).is_err());
        // After a long pause the bucket is full again, never fuller.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.take_at("k", t2).is_ok());
        }
        assert!(b.take_at("k", t2).is_err());
    }
}
