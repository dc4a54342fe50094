//! How long to wait before trying again. Every retry in Pulse (the ingester's writes, webhook
//! deliveries, the sources' requests) grows its wait by [`ceiling`]: doubling from a first wait
//! up to a cap. Waits that many callers may reach at once are drawn at random below it, so
//! failures that happened together are not retried together.

use std::time::Duration;

use rand::Rng;

/// The wait before retry `retry` (0 for the first): `base` doubled `retry` times, at most `max`.
pub fn ceiling(base: Duration, max: Duration, retry: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(retry.min(20)))
        .min(max)
}

/// `wait` spread by ±50%: retries of one receiver stay near their schedule, those of many
/// receivers do not line up.
pub fn spread(wait: Duration) -> Duration {
    wait.mul_f64(rand::rng().random_range(0.5..1.5))
}

/// Backoff with full jitter for a loop that retries until it succeeds: each wait is drawn
/// between a tenth of the [`ceiling`] and the ceiling, which grows with each failure.
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The next wait (never zero, so a failing loop cannot spin).
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = ceiling(self.base, self.max, self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let floor = ceiling / 10;
        let span = (ceiling - floor).as_secs_f64();
        floor + Duration::from_secs_f64(rand::rng().random::<f64>() * span)
    }

    /// A wait of at least `at_least` (a platform's Retry-After), and the next backoff step.
    pub fn next_wait_at_least(&mut self, at_least: Duration) -> Duration {
        self.next_wait().max(at_least)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_and_stop_at_the_cap() {
        let (base, max) = (Duration::from_millis(50), Duration::from_secs(2));
        assert_eq!(ceiling(base, max, 0), base);
        assert_eq!(ceiling(base, max, 1), Duration::from_millis(100));
        assert_eq!(ceiling(base, max, 5), Duration::from_millis(1600));
        assert_eq!(ceiling(base, max, 6), max);
        assert_eq!(ceiling(base, max, u32::MAX), max);
        for _ in 0..100 {
            let s = spread(Duration::from_secs(1));
            assert!(s >= Duration::from_millis(500) && s <= Duration::from_millis(1500));
        }
    }

    #[test]
    fn waits_grow_to_the_ceiling_and_start_over_after_a_success() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(100)));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(8)));
        assert!(waits[0] <= Duration::from_secs(1));
        // From the fourth attempt on the ceiling is 8 s, so at least 0.8 s.
        assert!(waits[3..].iter().all(|w| *w >= Duration::from_millis(800)));
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(1));
        assert!(b.next_wait_at_least(Duration::from_secs(30)) >= Duration::from_secs(30));
    }
}
