//! Token-bucket rate limits, per API key, per client address and per client network (the
//! address's /24 or /64, see [`crate::http::middleware::peer::network_of`]). A bucket holds up to `burst`
//! requests and refills at `per_sec`; an empty bucket answers 429 with the seconds until the
//! next request would pass (`Retry-After`). Limits are per process: N processes behind a
//! balancer allow up to N times the rate in total.
//!
//! The buckets' memory is bounded too: past [`SWEEP_AT`] callers, full (idle) buckets are
//! swept, and past [`MAX_TRACKED`] every new caller shares one overflow bucket, so a flood of
//! fresh addresses costs a fixed amount of memory and gets one budget between them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LimitSettings;
use crate::http::locks::lock;

use crate::http::middleware::callers::key_for;

/// Buckets kept before full (idle) ones are swept.
pub const SWEEP_AT: usize = 50_000;
/// Most buckets kept; callers beyond it share one bucket ([`crate::http::middleware::callers::OVERFLOW`]).
pub const MAX_TRACKED: usize = 4 * SWEEP_AT;
/// The longest wait a bucket asks for (a rate near zero would ask for longer than a
/// `Duration` holds).
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Shortest time between two sweeps, so a stream of new callers cannot make every request
/// walk every bucket.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

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
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<String, Bucket>,
    last_sweep: Option<Instant>,
}

impl Buckets {
    /// Buckets of `burst` refilling at `per_sec`.
    pub fn new(per_sec: f64, burst: f64) -> Buckets {
        Buckets {
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            table: Mutex::new(Table::default()),
        }
    }

    /// Takes one request from `who`'s bucket at `now`: `Ok` holds the whole requests left,
    /// `Err` how long until one is available.
    pub fn take_at(&self, who: &str, now: Instant) -> Result<u64, Duration> {
        self.take_n_at(who, 1.0, now)
    }

    /// Takes `n` requests' worth (at most a full bucket) from `who`'s bucket at `now`, all or
    /// nothing: `Ok` holds the whole requests left, `Err` how long until `n` are available.
    pub fn take_n_at(&self, who: &str, n: f64, now: Instant) -> Result<u64, Duration> {
        let n = n.clamp(0.0, self.burst);
        let mut table = lock(&self.table);
        let Table {
            buckets,
            last_sweep,
        } = &mut *table;
        let (per_sec, burst) = (self.per_sec, self.burst);
        let who = key_for(buckets, who, SWEEP_AT, MAX_TRACKED, |buckets| {
            if last_sweep.is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY) {
                buckets.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
                });
                *last_sweep = Some(now);
            }
        });
        let bucket = buckets.entry(who.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(bucket.tokens.floor() as u64)
        } else {
            let wait = (n - bucket.tokens) / self.per_sec;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(MAX_WAIT))
        }
    }

    /// Takes `n` from `who`'s bucket at `now` whatever it holds, down to a debt of one full
    /// bucket: for a cost known only once the work is done, paid back before `who` may start
    /// the next.
    pub fn charge_at(&self, who: &str, n: f64, now: Instant) {
        let mut table = lock(&self.table);
        // A caller taken past the table's size shares the overflow bucket, and pays there.
        let who = if table.buckets.contains_key(who) {
            who
        } else {
            crate::http::middleware::callers::OVERFLOW
        };
        let Some(bucket) = table.buckets.get_mut(who) else {
            return;
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = ((bucket.tokens + elapsed * self.per_sec).min(self.burst) - n.max(0.0))
            .max(-self.burst);
        bucket.at = now;
    }

    /// [`Buckets::charge_at`] now.
    pub fn charge(&self, who: &str, n: f64) {
        self.charge_at(who, n, Instant::now())
    }

    /// [`Buckets::take_at`] now.
    pub fn take(&self, who: &str) -> Result<u64, Duration> {
        self.take_at(who, Instant::now())
    }

    /// [`Buckets::take_n_at`] now.
    pub fn take_n(&self, who: &str, n: f64) -> Result<u64, Duration> {
        self.take_n_at(who, n, Instant::now())
    }

    /// Callers with a bucket now.
    pub fn tracked(&self) -> usize {
        lock(&self.table).buckets.len()
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
    /// Unauthenticated requests, failed credentials and key verifications, by address.
    pub per_ip: Buckets,
    /// The same requests by the address's network (/24, /64), so a client that owns many
    /// addresses has one budget between them.
    pub per_network: Buckets,
    /// Events of `POST /api/v1/events`, by key: what one producer may add to the stream.
    pub events_per_key: Buckets,
    /// Seconds of the API's connection time, by client (see [`crate::http::state::State::db`]).
    pub db_time: Buckets,
    /// Bytes of request bodies kept in the audit log, by client. A size limit: it applies
    /// whether rate limits do or not.
    pub audit_payload: Buckets,
}

impl RateLimiter {
    /// Limits from the settings, for an API pool of `db_connections`.
    pub fn new(settings: &LimitSettings, db_connections: usize) -> RateLimiter {
        let connections = db_connections.max(1) as f64;
        RateLimiter {
            enabled: settings.rate_limits,
            per_key: Buckets::new(settings.per_key_per_sec, settings.per_key_burst),
            per_ip: Buckets::new(settings.per_ip_per_sec, settings.per_ip_burst),
            per_network: Buckets::new(settings.per_network_per_sec, settings.per_network_burst),
            events_per_key: Buckets::new(
                settings.per_key_events_per_sec,
                settings.per_key_events_burst,
            ),
            db_time: Buckets::new(
                settings.per_caller_db_share * connections,
                settings.per_caller_db_burst_secs * connections,
            ),
            audit_payload: Buckets::new(
                settings.audit_payload_bytes_per_day as f64 / 86_400.0,
                settings.audit_payload_bytes_per_day as f64,
            ),
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
    fn a_rate_of_nothing_asks_for_the_longest_wait_rather_than_panicking() {
        let b = Buckets::new(0.0, 1.0);
        let t0 = Instant::now();
        assert!(b.take_at("k", t0).is_ok());
        assert_eq!(b.take_at("k", t0), Err(MAX_WAIT));
    }

    #[test]
    fn a_charge_past_the_bucket_is_a_debt_paid_back_before_the_next_take() {
        let b = Buckets::new(1.0, 2.0);
        let t0 = Instant::now();
        assert_eq!(b.take_n_at("k", 0.001, t0), Ok(1));
        b.charge_at("k", 3.0, t0);
        let wait = b.take_n_at("k", 0.001, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 0.01, "{wait:?}");
        // A debt is at most one full bucket.
        b.charge_at("k", 100.0, t0);
        let wait = b.take_n_at("k", 0.001, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 0.01, "{wait:?}");
        assert!(b.take_n_at("k", 0.001, t0 + Duration::from_secs(3)).is_ok());
        // A caller never seen is not charged.
        b.charge_at("other", 5.0, t0);
        assert_eq!(b.take_n_at("other", 1.0, t0), Ok(1));
    }

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

    #[test]
    fn a_weighted_take_is_all_or_nothing() {
        let b = Buckets::new(100.0, 1_000.0);
        let t0 = Instant::now();
        assert_eq!(b.take_n_at("k", 600.0, t0), Ok(400));
        let wait = b.take_n_at("k", 600.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-6, "{wait:?}");
        assert_eq!(b.take_n_at("k", 400.0, t0), Ok(0));
        // More than a bucket holds costs a full bucket, so it can pass at all.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.take_n_at("k", 5_000.0, t1), Ok(0));
    }

    #[test]
    fn a_flood_of_new_callers_shares_one_bucket_past_the_cap() {
        let b = Buckets::new(1.0, 2.0);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED {
            assert!(b.take_at(&format!("caller-{i}"), t0).is_ok());
        }
        assert_eq!(b.tracked(), MAX_TRACKED);
        // Nothing is idle enough to sweep: newcomers share the overflow bucket.
        assert!(b.take_at("new-1", t0).is_ok());
        assert!(b.take_at("new-2", t0).is_ok());
        assert!(b.take_at("new-3", t0).is_err());
        assert_eq!(b.tracked(), MAX_TRACKED + 1);
        // Once the old buckets refill they are swept and newcomers get their own again.
        let later = t0 + Duration::from_secs(5);
        assert!(b.take_at("new-4", later).is_ok());
        assert!(b.tracked() < 10, "{}", b.tracked());
    }
}
