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

pub mod asked_wait;
pub mod body;
pub mod demo;
pub mod feed;
pub mod filter;
pub mod fit;
pub mod html;
pub mod import;
pub mod jetstream;
pub mod mastodon;
pub mod nullable;
pub mod records;
pub mod reddit;
pub mod runner;
pub mod sink;
pub mod sse;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fred::prelude::Client;
use serde::Serialize;

use self::asked_wait::AskedWait;
use crate::config::SourceSettings;
use crate::egress::{redact_urls_in, FetchError, TargetPolicy};
use crate::telemetry::names;

/// What a running source shares with `/ready` and the dashboard.
#[derive(Debug, Default)]
pub struct SourceStatus {
    pub name: String,
    pub kind: &'static str,
    connected: AtomicBool,
    lag_us: AtomicI64,
    last_error: Mutex<Option<String>>,
    gaps: AtomicU64,
    last_gap: Mutex<Option<SourceGap>>,
}

/// Records of the platform a source knows it missed: a backfill that failed or was cut short,
/// a listing that overflowed between two polls.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceGap {
    /// When the source found the gap.
    pub at: DateTime<Utc>,
    /// Why the records could not be read.
    pub reason: String,
    /// The source's position before the gap (for Mastodon, the newest status id handled):
    /// records after it and before the next one read may be missing. Null when the source
    /// has no such position.
    pub after: Option<String>,
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
    /// The last error, until the source connects again. URLs in it are redacted (user
    /// information and query values hidden).
    pub last_error: Option<String>,
    /// Gaps found since the process started: times the source knows it missed records.
    pub gaps: u64,
    /// The latest of them, null when there was none.
    pub last_gap: Option<SourceGap>,
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
            gaps: self.gaps.load(Ordering::Relaxed),
            last_gap: self
                .last_gap
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// What `settings` keep: their kind's keywords and their query, and the active `topics` when
/// they ask for them.
pub fn listening(
    settings: &SourceSettings,
    topics: Option<Arc<crate::topics::LiveTopics>>,
) -> Result<filter::Listening, String> {
    let topics = if settings.topics {
        if topics.is_none() {
            tracing::warn!(source = settings.name(), "topics = true, but this process matches no topics; only the source's own keywords and query filter it");
        }
        topics
    } else {
        None
    };
    let keywords = settings.kind.keywords();
    filter::Listening::new(keywords, settings.query.as_deref(), topics)
        .map(|l| {
            l.of_posts(
                settings.kind.platform().as_str(),
                settings.product.clone(),
                settings.channel.clone(),
            )
        })
        .map_err(|e| format!("its query or keywords do not parse: {e}"))
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
    /// Appends pause while the group is behind past these limits.
    pub gate: Option<crate::streams::admission::Gate>,
    pub status: Arc<SourceStatus>,
    /// What the source keeps: its keywords, its query, the active topics (see
    /// [`filter::Listening`]); an error for a query that does not parse.
    pub listening: Result<filter::Listening, String>,
}

impl SourceContext {
    pub fn new(
        settings: &SourceSettings,
        redis: Client,
        stream: &str,
        topics: Option<Arc<crate::topics::LiveTopics>>,
    ) -> SourceContext {
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
        metrics::counter!(names::SOURCE_RATE_LIMIT_WAIT, "source" => name.clone()).increment(0);
        if matches!(settings.kind, crate::config::SourceKind::Mastodon(_)) {
            metrics::counter!(names::SOURCE_BACKFILL_FAILURES, "source" => name.clone())
                .increment(0);
        }
        SourceContext {
            name,
            redis,
            stream: stream.to_string(),
            product: settings.product.clone(),
            channel: settings.channel.clone(),
            max_backoff: Duration::from_secs(settings.max_backoff_secs.max(1)),
            gate: None,
            status: Arc::new(status),
            listening: listening(settings, topics),
        }
    }

    /// What the source keeps; an error that stops it for a query that does not parse.
    pub fn listening(&self) -> anyhow::Result<filter::Listening> {
        self.listening
            .clone()
            .map_err(|e| anyhow::anyhow!("source {}: {e}", self.name))
    }

    /// Where the source's requests may go: public addresses, and the internal networks
    /// `networks` (its `allowed_private_networks`) names, logged at start because they open
    /// that part of the inside to wherever the platform's answers point.
    pub fn egress_policy(&self, networks: &[String]) -> anyhow::Result<TargetPolicy> {
        let policy = TargetPolicy::allowing(networks)
            .map_err(|e| anyhow::anyhow!("source {}: allowed_private_networks: {e}", self.name))?;
        if !policy.allowed_networks.is_empty() {
            tracing::warn!(source = %self.name, networks = ?networks, "the source may reach these internal networks");
        }
        Ok(policy)
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
    /// Every URL in the error is redacted before it is logged or shown: feed URLs and
    /// instances can carry credentials, and HTTP clients quote the URL they failed on.
    pub fn error(&self, reason: &'static str, error: &anyhow::Error) {
        let text = redact_urls_in(&format!("{error:#}"));
        if reason == "refused" {
            tracing::error!(source = %self.name, error = %text, "the platform refused the source's credentials");
        } else {
            tracing::warn!(source = %self.name, reason, error = %text, "source error");
        }
        metrics::counter!(names::SOURCE_ERRORS, "source" => self.name.clone(), "reason" => reason)
            .increment(1);
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason}: {text}"));
    }

    /// Logs and counts a refusal for too many requests (`reason="rate_limited"`), saying how
    /// long the platform asked the source to wait, and counts the wait.
    pub fn rate_limited(&self, asked: AskedWait, error: &anyhow::Error) {
        let error = anyhow::anyhow!(
            "{error:#}; waiting {:.0} s as the platform asked ({})",
            asked.wait.as_secs_f64().ceil(),
            asked.by
        );
        self.error("rate_limited", &error);
        self.count_wait(asked);
    }

    /// Logs and counts a wait a platform asked for in an answer that succeeded (its
    /// rate-limit window is nearly spent).
    pub fn budget_wait(&self, asked: AskedWait, what: &str) {
        tracing::info!(source = %self.name, wait_secs = asked.wait.as_secs_f64().ceil(), by = asked.by, "{what}: the platform's request budget is nearly spent; waiting for its reset");
        self.count_wait(asked);
    }

    /// Counts a wait a platform asked for (`pulse_source_rate_limit_wait_seconds_total`).
    pub fn count_wait(&self, asked: AskedWait) {
        metrics::counter!(names::SOURCE_RATE_LIMIT_WAIT, "source" => self.name.clone())
            .increment(asked.wait.as_secs_f64().ceil() as u64);
    }

    /// Records a gap: records the source knows it missed, shown in `GET /api/v1/pipeline`
    /// and logged.
    pub fn gap(&self, reason: String, after: Option<String>) {
        let reason = redact_urls_in(&reason);
        tracing::warn!(source = %self.name, reason = %reason, after = ?after, "the source missed records it could not read back");
        self.status.gaps.fetch_add(1, Ordering::Relaxed);
        *self
            .status
            .last_gap
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(SourceGap {
            at: Utc::now(),
            reason,
            after,
        });
    }

    /// A backfill that failed or stopped short: counted, and recorded as a [`Self::gap`].
    /// The connection it was made for goes on.
    pub fn backfill_failed(&self, reason: String, after: Option<String>) {
        metrics::counter!(names::SOURCE_BACKFILL_FAILURES, "source" => self.name.clone())
            .increment(1);
        self.gap(reason, after);
    }
}

/// The `reason` a failed request under the egress policy is counted with, as every source
/// counts it: `not_allowed` (a target the policy refused), `redirect` (one that cannot be
/// followed) or `connect`.
pub fn fetch_reason(error: &FetchError) -> &'static str {
    match error {
        FetchError::NotAllowed { .. } => "not_allowed",
        FetchError::BadRedirect(_) => "redirect",
        FetchError::Request(_) => "connect",
    }
}

/// A failed request under the egress policy as an error naming `what`. A refused target is
/// told in the policy's own words, which only repeat the URL the platform gave (nothing was
/// asked of it, so nothing of the inside shows), and names the setting that allows it; other
/// failures keep their causes, without the URL.
pub fn fetch_error(error: FetchError, what: &str) -> anyhow::Error {
    match error {
        FetchError::NotAllowed { .. } => anyhow::anyhow!(
            "{what}: {error}; a source reaches internal addresses only in the networks its allowed_private_networks names"
        ),
        FetchError::BadRedirect(_) => anyhow::anyhow!("{what}: {error}"),
        FetchError::Request(e) => anyhow::Error::new(e).context(what.to_string()),
    }
}

/// The sources this process runs.
#[derive(Default)]
pub struct Sources {
    actors: Vec<actix::Addr<runner::SourceActor>>,
    statuses: Vec<Arc<SourceStatus>>,
}

/// Refuses sources that would not run as configured: two of one name (they would share a
/// stored position), a name no producer may carry (every entry would be dead-lettered), a
/// source that listens for nothing.
fn check(settings: &[SourceSettings]) -> anyhow::Result<()> {
    let mut names = std::collections::HashSet::new();
    for s in settings {
        if !names.insert(s.name()) {
            anyhow::bail!(
                "two sources are named {:?}: give each its own `name` (it keys its stored position)",
                s.name()
            );
        }
        if !crate::models::producer::valid(&crate::models::producer::source(s.name())) {
            anyhow::bail!(
                "source {:?}: a name must be printable, without `=`, and at most {} bytes \
                 (it names the source's posts as their producer)",
                s.name(),
                crate::models::producer::MAX_PRODUCER_BYTES - "source:".len()
            );
        }
        if let Err(e) = listening(s, None) {
            anyhow::bail!("source {:?}: {e}", s.name());
        }
    }
    Ok(())
}

impl Sources {
    /// Starts one actor per configured source. Must run inside an actix system.
    pub fn start(
        settings: &[SourceSettings],
        redis: &Client,
        stream: &str,
        topics: Option<Arc<crate::topics::LiveTopics>>,
        gate: Option<crate::streams::admission::Gate>,
    ) -> anyhow::Result<Sources> {
        use actix::Actor;
        check(settings)?;
        let mut sources = Sources::default();
        for s in settings {
            let mut actor =
                runner::SourceActor::new(s.clone(), redis.clone(), stream, topics.clone());
            actor.gate(gate.clone());
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

#[cfg(test)]
mod tests {
    use super::check;
    use crate::config::SourceSettings;

    fn feed(name: &str) -> SourceSettings {
        let mut s = SourceSettings::of_kind("feed").unwrap();
        s.name = name.to_string();
        if let crate::config::SourceKind::Feed(f) = &mut s.kind {
            f.urls = vec!["https://example.com/feed.xml".into()];
        }
        s
    }

    // A source named `a=b` started, and every entry it wrote was dead-lettered: the name is
    // its posts' producer, where `=` separates the trust setting's pairs.
    #[test]
    fn a_source_whose_name_no_producer_may_carry_is_refused() {
        check(&[feed("news")]).expect("a plain name");
        for bad in ["a=b", "tab\there", &"x".repeat(200)] {
            let refused = check(&[feed(bad)]).expect_err(bad).to_string();
            assert!(refused.contains("a name must be"), "{refused}");
        }
        let twice = check(&[feed("news"), feed("news")])
            .unwrap_err()
            .to_string();
        assert!(twice.contains("two sources are named"), "{twice}");
    }
}

/// What the sources' tests read the events they make with.
#[cfg(test)]
pub(crate) mod testing {
    use crate::models::{Event, Post};

    /// The posts of `events`, which must all be posts.
    pub(crate) fn posts(events: &[Event]) -> Vec<&Post> {
        events
            .iter()
            .map(|e| match e {
                Event::Post(p) => p,
                _ => panic!("not a post"),
            })
            .collect()
    }
}
