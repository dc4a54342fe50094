//! Adaptive inference: when entries arrive older than `analyzer.fallback_lag_secs` (the model
//! cannot keep up, or a backlog is being replayed), new batches go to the lexicon pool, which
//! is two orders of magnitude faster, so Pulse catches up with real time instead of falling
//! further behind. The model takes over again once entries arrive at most
//! `analyzer.recover_lag_secs` old; the gap between the two thresholds is the hysteresis that
//! keeps the route from flapping. Every stored analysis names the model that made it.
//!
//! A batch is routed when it is read, but it may then wait in the model pool's queue behind
//! others (up to `ingest.max_in_flight` entries are read ahead); a model worker that reaches a
//! batch already older than the threshold hands it back, and it goes to the lexicon then. So
//! the route reacts to the wait where it happens, not only once the backlog spills back into
//! the stream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::AnalyzerSettings;
use crate::telemetry::names;

/// A batch routed longer ago than this says nothing about the pipeline now.
const FRESH: Duration = Duration::from_secs(5);

/// Which pool analyses a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Model,
    Lexicon,
}

/// The routing state of one process.
#[derive(Debug)]
pub struct AdaptiveRoute {
    /// `None` when the fallback is off (lexicon backend, or `fallback_lag_secs = 0`).
    thresholds: Option<(f64, f64)>,
    on_fallback: AtomicBool,
    /// When the latest batch was routed (ms since `epoch`) and the age of its oldest entry
    /// then (ms): how far behind the pipeline is, whichever pool it uses.
    epoch: Instant,
    last_at_ms: AtomicU64,
    last_age_ms: AtomicU64,
}

impl AdaptiveRoute {
    /// The route for these settings; `enabled` is false when there is no fallback pool.
    pub fn new(settings: &AnalyzerSettings, enabled: bool) -> Self {
        let fallback = settings.fallback_lag_secs;
        let thresholds = (enabled && fallback > 0.0)
            .then(|| (fallback, settings.recover_lag_secs.clamp(0.0, fallback)));
        metrics::gauge!(names::ANALYZER_FALLBACK).set(0.0);
        Self {
            thresholds,
            on_fallback: AtomicBool::new(false),
            epoch: Instant::now(),
            last_at_ms: AtomicU64::new(0),
            last_age_ms: AtomicU64::new(0),
        }
    }

    /// Notes that a batch whose oldest entry is `age_secs` old is being analysed.
    pub fn observe(&self, age_secs: f64) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        self.last_age_ms
            .store((age_secs.max(0.0) * 1000.0) as u64, Ordering::Release);
        self.last_at_ms.store(now_ms.max(1), Ordering::Release);
    }

    /// Whether the pipeline is behind: new posts go to the lexicon, or the latest batch, routed
    /// within the last few seconds, was older than `lag` when it was read.
    pub fn behind(&self, lag: Duration) -> bool {
        if self.on_fallback() {
            return true;
        }
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let at = self.last_at_ms.load(Ordering::Acquire);
        let age = self.last_age_ms.load(Ordering::Acquire);
        at > 0
            && now_ms.saturating_sub(at) <= FRESH.as_millis() as u64
            && age > lag.as_millis() as u64
    }

    /// Routes a batch whose oldest entry is `age_secs` old, switching when a threshold is
    /// crossed.
    pub fn route(&self, age_secs: f64) -> Route {
        let Some((fallback, recover)) = self.thresholds else {
            return Route::Model;
        };
        let was = self.on_fallback.load(Ordering::Acquire);
        let now = if was {
            age_secs > recover
        } else {
            age_secs > fallback
        };
        if now != was
            && self
                .on_fallback
                .compare_exchange(was, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let to = if now { "lexicon" } else { "model" };
            tracing::info!(age_secs, to, "analyzer route switched");
            metrics::counter!(names::ANALYZER_SWITCHES, "to" => to).increment(1);
            metrics::gauge!(names::ANALYZER_FALLBACK).set(if now { 1.0 } else { 0.0 });
        }
        if now {
            Route::Lexicon
        } else {
            Route::Model
        }
    }

    /// The age over which a batch belongs to the lexicon, when the fallback is on.
    pub fn fallback_after_secs(&self) -> Option<f64> {
        self.thresholds.map(|(fallback, _)| fallback)
    }

    /// Whether new posts currently go to the lexicon.
    pub fn on_fallback(&self) -> bool {
        self.on_fallback.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fallback: f64, recover: f64) -> AnalyzerSettings {
        AnalyzerSettings {
            fallback_lag_secs: fallback,
            recover_lag_secs: recover,
            ..AnalyzerSettings::default()
        }
    }

    #[test]
    fn switches_over_the_high_mark_and_back_under_the_low_mark() {
        let r = AdaptiveRoute::new(&settings(10.0, 2.0), true);
        assert_eq!(r.route(5.0), Route::Model);
        assert_eq!(r.route(11.0), Route::Lexicon);
        // Between the marks the route holds.
        assert_eq!(r.route(5.0), Route::Lexicon);
        assert_eq!(r.route(1.5), Route::Model);
        assert_eq!(r.route(5.0), Route::Model);
    }

    #[test]
    fn off_without_a_pool_or_a_threshold() {
        assert_eq!(
            AdaptiveRoute::new(&settings(10.0, 2.0), false).route(99.0),
            Route::Model
        );
        assert_eq!(
            AdaptiveRoute::new(&settings(0.0, 0.0), true).route(99.0),
            Route::Model
        );
    }
}
