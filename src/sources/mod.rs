//! Producers into the stream that run inside Pulse: sources that read real platforms (one
//! supervised actor each, configured under `[[sources]]`, started by `pulse serve` or alone by
//! `pulse ingest NAME`), and the synthetic demo feed behind `serve --demo` and `pulse
//! generate`.
//!
//! A source only appends events to the stream, exactly as an external producer would, so
//! everything downstream (validation, dead letters, at-least-once delivery, idempotent
//! writes) is the same for every source. Adding one is a settings variant in
//! `config::sources`, a module here that turns the platform's records into events and pushes
//! them into a [`sink::Sink`], and a line in [`runner`].

pub mod backoff;
pub mod demo;
pub mod feed;
pub mod filter;
pub mod html;
pub mod import;
pub mod jetstream;
pub mod mastodon;
pub mod records;
pub mod reddit;
pub mod runner;
pub mod sink;
pub mod sse;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::Client;
use serde::Serialize;

use crate::config::SourceSettings;
use crate::telemetry::names;

/// What a running source shares with `/ready` and the dashboard.
#[derive(Debug, Default)]
pub struct SourceStatus {
    pub name: String,
    pub kind: &'static str,
    connected: AtomicBool,
    lag_us: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// A source's state as `/ready` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceState {
    pub name: String,
    pub kind: String,
    /// Connected to the platform (or polling it without errors).
    pub connected: bool,
    /// Seconds behind the platform's latest event, once one was read.
    pub lag_seconds: Option<f64>,
    /// The last error, until the source connects again.
    pub last_error: Option<String>,
}

impl SourceStatus {
    pub fn state(&self) -> SourceState {
        let lag = self.lag_us.load(Ordering::Relaxed);
        SourceState {
            name: self.name.clone(),
            kind: self.kind.to_string(),
            connected: self.connected.load(Ordering::Relaxed),
            lag_seconds: (lag != i64::MIN).then_some(lag as f64 / 1e6),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// What every source is given: where to write, its tags, and its status to keep.
#[derive(Clone)]
pub struct SourceContext {
    pub name: String,
    pub redis: Client,
    pub stream: String,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub max_backoff: Duration,
    pub status: Arc<SourceStatus>,
}

impl SourceContext {
    pub fn new(settings: &SourceSettings, redis: Client, stream: &str) -> SourceContext {
        let status = SourceStatus {
            name: settings.name().to_string(),
            kind: settings.kind.as_str(),
            lag_us: AtomicI64::new(i64::MIN),
            ..SourceStatus::default()
        };
        let name = settings.name().to_string();
        // Zero series, so a dashboard or an alert over this source reads 0, not no data, until
        // it connects, fails or appends.
        metrics::gauge!(names::SOURCE_CONNECTED, "source" => name.clone()).set(0.0);
        metrics::counter!(names::SOURCE_ERRORS, "source" => name.clone(), "reason" => "connect")
            .increment(0);
        metrics::counter!(names::SOURCE_EVENTS, "source" => name.clone(), "event" => "post")
            .increment(0);
        SourceContext {
            name,
            redis,
            stream: stream.to_string(),
            product: settings.product.clone(),
            channel: settings.channel.clone(),
            max_backoff: Duration::from_secs(settings.max_backoff_secs.max(1)),
            status: Arc::new(status),
        }
    }

    pub fn set_connected(&self, connected: bool) {
        self.status.connected.store(connected, Ordering::Relaxed);
        if connected {
            *self
                .status
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
        metrics::gauge!(names::SOURCE_CONNECTED, "source" => self.name.clone()).set(if connected {
            1.0
        } else {
            0.0
        });
    }

    /// Records how far behind the platform the source is, in microseconds.
    pub fn set_lag(&self, lag_us: i64) {
        let lag_us = lag_us.max(0);
        self.status.lag_us.store(lag_us, Ordering::Relaxed);
        metrics::gauge!(names::SOURCE_LAG_SECONDS, "source" => self.name.clone())
            .set(lag_us as f64 / 1e6);
    }

    /// Logs and counts a failure; `reason` is a short class (connect, refused, read, ...).
    pub fn error(&self, reason: &'static str, error: &anyhow::Error) {
        if reason == "refused" {
            tracing::error!(source = %self.name, error = %format!("{error:#}"), "the platform refused the source's credentials");
        } else {
            tracing::warn!(source = %self.name, reason, error = %format!("{error:#}"), "source error");
        }
        metrics::counter!(names::SOURCE_ERRORS, "source" => self.name.clone(), "reason" => reason)
            .increment(1);
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason}: {error:#}"));
    }
}

/// The sources this process runs.
#[derive(Default)]
pub struct Sources {
    actors: Vec<actix::Addr<runner::SourceActor>>,
    statuses: Vec<Arc<SourceStatus>>,
}

impl Sources {
    /// Starts one actor per configured source. Must run inside an actix system.
    pub fn start(
        settings: &[SourceSettings],
        redis: &Client,
        stream: &str,
    ) -> anyhow::Result<Sources> {
        use actix::Actor;
        let mut names = std::collections::HashSet::new();
        for s in settings {
            if !names.insert(s.name()) {
                anyhow::bail!(
                    "two sources are named {:?}: give each its own `name` (it keys its stored position)",
                    s.name()
                );
            }
        }
        let mut sources = Sources::default();
        for s in settings {
            let actor = runner::SourceActor::new(s.clone(), redis.clone(), stream);
            sources.statuses.push(actor.context().status.clone());
            sources.actors.push(actor.start());
        }
        Ok(sources)
    }

    pub fn statuses(&self) -> Vec<Arc<SourceStatus>> {
        self.statuses.clone()
    }

    pub fn states(&self) -> Vec<SourceState> {
        self.statuses.iter().map(|s| s.state()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }

    /// Stops every source.
    pub async fn stop(&self) {
        for actor in &self.actors {
            let _ = actor.send(runner::StopSource).await;
        }
    }
}
