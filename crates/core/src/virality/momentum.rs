//! Momentum: engagement velocity (engagements per minute over the last window) and
//! acceleration (the change of velocity from the window before, per minute), in event time.

use serde::Serialize;

/// Per-minute engagement counts over the last two windows, in event time.
#[derive(Debug, Clone, Default)]
pub struct Momentum {
    /// (minute index, engagements), oldest first, at most two windows' worth.
    minutes: std::collections::VecDeque<(i64, u64)>,
    latest_minute: i64,
}

/// Velocity and acceleration at the latest minute seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rates {
    /// Engagements per minute over the last window.
    pub velocity: f64,
    /// Change of velocity from the window before, per minute.
    pub acceleration: f64,
}

impl Momentum {
    /// Counts `n` engagements at `at` (Unix seconds).
    pub fn add(&mut self, at: f64, n: u64, window_minutes: i64) {
        if !at.is_finite() {
            return;
        }
        let minute = (at / 60.0).floor() as i64;
        if minute < self.latest_minute - 2 * window_minutes {
            return;
        }
        match self.minutes.binary_search_by_key(&minute, |(m, _)| *m) {
            Ok(i) => self.minutes[i].1 = self.minutes[i].1.saturating_add(n),
            Err(i) => self.minutes.insert(i, (minute, n)),
        }
        if minute > self.latest_minute || self.minutes.len() == 1 {
            self.latest_minute = minute.max(self.latest_minute);
        }
        let oldest = self.latest_minute - 2 * window_minutes;
        while self.minutes.front().is_some_and(|(m, _)| *m <= oldest) {
            self.minutes.pop_front();
        }
    }

    /// Velocity and acceleration over windows of `window_minutes` ending at the latest minute.
    pub fn rates(&self, window_minutes: i64) -> Rates {
        let w = window_minutes.max(1);
        let end = self.latest_minute;
        let (mut current, mut previous) = (0u64, 0u64);
        for &(m, n) in &self.minutes {
            if m > end - w {
                current += n;
            } else if m > end - 2 * w {
                previous += n;
            }
        }
        let minutes = w as f64;
        let velocity = current as f64 / minutes;
        Rates {
            velocity,
            acceleration: (velocity - previous as f64 / minutes) / minutes,
        }
    }

    /// The latest minute with engagements (event time).
    pub fn latest_minute(&self) -> i64 {
        self.latest_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_engagement_accelerates() {
        let mut m = Momentum::default();
        for minute in 0..10 {
            m.add(
                f64::from(minute) * 60.0 + 1.0,
                u64::from(minute as u32 + 1),
                5,
            );
        }
        let r = m.rates(5);
        assert!((r.velocity - 8.0).abs() < 1e-9); // (6+7+8+9+10)/5
        assert!((r.acceleration - 1.0).abs() < 1e-9); // (8 - 3) / 5
        m.add(f64::NAN, 5, 5);
        m.add(-1e12, 5, 5);
        assert_eq!(m.rates(5), r);
    }
}
