//! Warnings that repeat while something stays down (PostgreSQL or Redis away, each batch
//! retrying) are written at most once per interval per call site, with how many were left
//! out since: an outage of a minute wrote hundreds of identical lines, which bury the one that
//! says what changed. Metrics still count every occurrence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often one call site's repeated warning is written.
pub const EVERY: Duration = Duration::from_secs(10);

/// One call site's record (see [`warn_repeated!`](crate::warn_repeated)).
#[derive(Debug)]
pub struct Repeated {
    last: Mutex<Option<Instant>>,
    left_out: AtomicU64,
}

impl Repeated {
    pub const fn new() -> Repeated {
        Repeated {
            last: Mutex::new(None),
            left_out: AtomicU64::new(0),
        }
    }

    /// Whether this occurrence at `now` is written: `Some(left out since the last written)`,
    /// or `None` when it is left out.
    pub fn check_at(&self, now: Instant, every: Duration) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| now.saturating_duration_since(at) < every) {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.left_out.swap(0, Ordering::Relaxed))
    }
}

impl Default for Repeated {
    fn default() -> Self {
        Repeated::new()
    }
}

/// `tracing::warn!` written at most once per [`EVERY`] from this call site, with a
/// `left_out` field counting the occurrences not written since.
#[macro_export]
macro_rules! warn_repeated {
    ($($arg:tt)+) => {{
        static REPEATED: $crate::telemetry::repeated::Repeated =
            $crate::telemetry::repeated::Repeated::new();
        if let Some(left_out) = REPEATED.check_at(
            ::std::time::Instant::now(),
            $crate::telemetry::repeated::EVERY,
        ) {
            ::tracing::warn!(left_out, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_written_once_an_interval_with_what_was_left_out() {
        let site = Repeated::new();
        let start = Instant::now();
        let every = Duration::from_secs(10);
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(site.check_at(at(0), every), Some(0));
        for ms in (200..10_000).step_by(200) {
            assert_eq!(site.check_at(at(ms), every), None);
        }
        assert_eq!(site.check_at(at(10_000), every), Some(49));
        assert_eq!(site.check_at(at(10_100), every), None);
        assert_eq!(site.check_at(at(25_000), every), Some(1));
    }
}
