//! Exponential backoff with full jitter: the wait doubles from `base` up to `max`, and each
//! wait is drawn uniformly below it, so many sources failing together do not retry together.

use std::time::Duration;

use rand::Rng;

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
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
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

/// The wait a `Retry-After` header asks for (seconds; a minute when absent or a date, an hour
/// at most).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs.min(3_600))
}

#[cfg(test)]
mod tests {
    use super::*;

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
