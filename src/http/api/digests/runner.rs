//! Makes each schedule's digests as their periods end. Every process runs it, and none leads:
//! a process that finds a period ended and not yet made computes its digest and stores it with
//! its deliveries in one statement that a unique index lets only one process win
//! ([`db::store`]); the deliveries then go through the alert channels' outbox (claimed by one
//! process at a time, retried with backoff). A period that ended while no process ran is made
//! when one is back, marked late, up to [`crate::config::DigestSettings::catch_up`] periods; one
//! that ended while the schedule was paused is never made ([`Schedule::makes_from`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::content::{self, DigestInput};
use crate::config::Settings;
use crate::db::digests::{self as db, NewDigest, Schedule, Span};
use crate::models::metrics::Period;
use crate::telemetry::names;

/// The running loop.
pub struct DigestRunner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DigestRunner {
    /// Starts looking for ended periods every `digests.poll_secs`.
    pub fn start(settings: Arc<Settings>, pool: Pool) -> DigestRunner {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let every = Duration::from_secs(settings.digests.poll_secs.max(1));
            loop {
                if let Err(e) = round(&settings, &pool, Utc::now()).await {
                    metrics::counter!(names::DIGEST_ERRORS).increment(1);
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "making digests failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        DigestRunner { stop, task }
    }

    /// Stops after the digest being made, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Makes every digest due at `now`. A schedule that fails (its digest cannot be computed or
/// stored) is counted and tried again next round; the others go on.
pub async fn round(settings: &Settings, pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<()> {
    let client = pool.get().await?;
    let schedules = db::list(&**client).await?;
    let mut failed = None;
    for s in schedules.iter().filter(|s| s.enabled) {
        if let Err(e) = due(settings, &client, s, now).await {
            failed = Some(e.context(format!("digest schedule {}", s.id)));
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Makes the periods of `s` that ended by `now` and are not made yet, oldest first.
async fn due(
    settings: &Settings,
    client: &deadpool_postgres::Object,
    s: &Schedule,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let pg: &tokio_postgres::Client = client;
    let periods = db::periods(pg, s, now, settings.digests.catch_up as i32 - 1).await?;
    // Periods that ended after the schedule was made or last resumed, oldest first.
    let from = s.makes_from();
    let mut due: Vec<Span> = periods.into_iter().filter(|(_, to)| *to > from).collect();
    due.reverse();
    let ends: Vec<DateTime<Utc>> = due.iter().map(|(_, to)| *to).collect();
    let made = db::made(pg, s.id, &ends).await?;
    for span in due.into_iter().filter(|(_, to)| !made.contains(to)) {
        let late = now - span.1 > TimeDelta::seconds(settings.digests.late_after_secs as i64);
        make(settings, client, s, span, late, now).await?;
    }
    Ok(())
}

/// Computes, renders and stores the digest of `s` for `span`; whether this process stored it.
pub async fn make(
    settings: &Settings,
    client: &deadpool_postgres::Object,
    s: &Schedule,
    span: Span,
    late: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let pg: &tokio_postgres::Client = client;
    // The schedule's own earlier periods, in its time zone.
    let history: Vec<Period> = db::periods(pg, s, span.1, content::HISTORY as i32)
        .await?
        .into_iter()
        .skip(1)
        .map(|(from, to)| Period::between(from, to))
        .collect();
    let scope = super::schedule_scope(pg, s.topic).await?;
    let digest = content::compute(
        client,
        DigestInput {
            scope,
            period: Period::between(span.0, span.1),
            history,
            high_churn: settings.metrics.high_churn_threshold,
            dashboard_url: &settings.webhooks.dashboard_url,
            view: s.view,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("computing the digest: {}", e.message))?;
    let stored = store(client, Some(s.id), &s.channels, digest, span, late, false).await?;
    metrics::histogram!(names::DIGEST_SECONDS).record(started.elapsed().as_secs_f64());
    if stored {
        metrics::counter!(names::DIGESTS_MADE, "late" => late.to_string()).increment(1);
        tracing::info!(
            schedule = s.id,
            from = %span.0,
            to = %span.1,
            late,
            made_at = %now,
            "digest made"
        );
    }
    Ok(stored)
}

/// Renders `digest` and stores it with one delivery per channel; whether this call stored it
/// (a scheduled period another process stored first is not stored twice).
pub async fn store(
    client: &tokio_postgres::Client,
    schedule: Option<i64>,
    channels: &[i64],
    digest: content::Digest,
    span: Span,
    late: bool,
    manual: bool,
) -> anyhow::Result<bool> {
    let (digest, rendered) = super::rendered(digest, late)
        .await
        .map_err(|e| anyhow::anyhow!("rendering the digest: {}", e.message))?;
    let mut content = serde_json::to_value(&digest)?;
    content["late"] = serde_json::json!(late);
    let payload = serde_json::json!({
        "kind": "digest",
        "digest": content,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "slack": rendered.slack,
        "teams": rendered.teams,
        "chart_png": rendered.chart_png,
    });
    let stored = db::store(
        client,
        NewDigest {
            schedule,
            span,
            late,
            manual,
            content: &payload["digest"],
            payload: &payload,
            channels,
        },
    )
    .await?;
    Ok(stored.is_some())
}
