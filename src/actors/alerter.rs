//! The alerter: evaluates the enabled alert rules as windows advance (on a timer, never on the
//! ingest path), fires an alert with its evidence when a condition holds, and resolves it once
//! the condition has stayed clear for `alerts.resolve_after_secs`.
//!
//! Rules read the per-minute rollups, so every process of a group sees the same figures. The
//! database allows one open alert per rule and scope, so when several processes evaluate at
//! once exactly one of them fires it and publishes it.
//!
//! Kinds:
//! - `negativity`: negative share of the window at or above `threshold`, with `min_volume` posts;
//! - `churn`: share of high-churn posts at or above `threshold`, with `min_volume` posts;
//! - `toxicity`: mean toxicity at or above `threshold`, with `min_volume` posts;
//! - `volume_spike`: posts in the window above the baseline mean + `k` standard deviations,
//!   the baseline being the windows of the same length in the `baseline_minutes` before it
//!   (at least `min_baseline_points` of them);
//! - `sentiment_dip`: mean sentiment below the baseline mean - `k` standard deviations;
//! - `new_story`: a story born in the window with at least `min_volume` posts (one alert per
//!   story, keyed by its id, the story as evidence; the largest of the stories not alerted on
//!   yet first);
//! - `story_surge`: a story with at least `threshold` posts written in the window (and
//!   `min_volume`).
//!
//! Story rules with a dimension other than `overall` and a key watch the stories with a post of
//! that key.

use std::sync::Arc;
use std::time::Duration;

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use deadpool_postgres::Pool;
use serde_json::json;

use super::messages::{Committed, Publish};
use crate::analysis::terms::extract_terms;
use crate::config::Settings;
use crate::db::alerts::{self as db, NewAlert};
use crate::models::alerts::{quoted_text, AlertRule, RuleKind};
use crate::models::deletion::DeletedPost;
use crate::models::live::{FilterKeys, Topic};
use crate::models::metrics::{share, ChurnStats, Dimension, SentimentStats, Stats};
use crate::models::Platform;

/// The alerter actor.
pub struct Alerter {
    settings: Arc<Settings>,
    pool: Pool,
    publish: Option<Recipient<Publish>>,
    busy: bool,
}

impl Alerter {
    /// An alerter reading rules and rollups through `pool`, publishing to `publish`.
    pub fn new(settings: Arc<Settings>, pool: Pool, publish: Option<Recipient<Publish>>) -> Self {
        Self {
            settings,
            pool,
            publish,
            busy: false,
        }
    }
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.settings.alerts.enabled {
            return;
        }
        let every = Duration::from_secs_f64(self.settings.alerts.evaluate_every_secs.max(0.1));
        ctx.run_interval(every, |this, ctx| {
            if this.busy {
                return;
            }
            this.busy = true;
            let (pool, settings) = (this.pool.clone(), this.settings.clone());
            ctx.spawn(
                wrap_future::<_, Self>(async move { evaluate(&pool, &settings).await }).map(
                    |result, this, _| {
                        this.busy = false;
                        match result {
                            Ok(fired) => {
                                for alert in fired {
                                    this.announce(alert);
                                }
                            }
                            Err(e) => pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "alert evaluation failed"),
                        }
                    },
                ),
            );
        });
    }
}

impl Handler<Committed> for Alerter {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Self::Context) {
        if msg.outcome.deleted.is_empty() {
            return;
        }
        let pool = self.pool.clone();
        ctx.spawn(wrap_future(async move {
            match scrub_evidence(&pool, &msg.outcome.deleted).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(alerts = n, "deleted posts taken out of alert evidence"),
                Err(e) => {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "taking deleted posts out of alert evidence failed")
                }
            }
        }));
    }
}

impl Alerter {
    fn announce(&self, alert: Fired) {
        log_fired(&alert);
        metrics::counter!(crate::telemetry::names::ALERTS_FIRED, "kind" => alert.rule.kind.as_str())
            .increment(1);
        if let Some(publish) = &self.publish {
            publish.do_send(Publish {
                topic: Topic::Alerts,
                event_type: alert.rule.event_type(),
                data: Arc::from(alert.body.to_string()),
                keys: scope_keys(alert.rule.dimension, &alert.key),
            });
        }
    }
}

/// Logs a fired alert. The rule name and the key are written quoted, with line breaks and
/// other control characters escaped (`Debug`), so neither can forge a log line or a field of
/// this one, whatever was stored before names were checked.
fn log_fired(alert: &Fired) {
    tracing::warn!(rule = ?alert.rule.name, kind = %alert.rule.kind, key = ?alert.key, value = alert.value, "alert fired");
}

/// What an alert is about, for WebSocket filters.
fn scope_keys(dimension: Dimension, key: &str) -> FilterKeys {
    let mut keys = FilterKeys::default();
    match dimension {
        Dimension::Platform => keys.platform = Platform::parse(key),
        Dimension::Product => keys.product = Some(key.to_string()),
        Dimension::City => keys.city = Some(key.to_string()),
        Dimension::Country => keys.country = Some(key.to_string()),
        Dimension::Channel => keys.channel = Some(key.to_string()),
        Dimension::Language => keys.lang = Some(key.to_string()),
        Dimension::Topic => keys.topics = key.parse().into_iter().collect(),
        Dimension::Overall | Dimension::Support => {}
    }
    keys
}

/// An alert this process fired.
struct Fired {
    rule: AlertRule,
    key: String,
    value: f64,
    body: serde_json::Value,
}

/// The figures of one scope at one evaluation.
struct Observation {
    key: String,
    stats: Stats,
    /// Posts and mean sentiment of each earlier window of the baseline, oldest first.
    baseline: Vec<(i64, f64)>,
}

async fn observe(
    client: &tokio_postgres::Client,
    rule: &AlertRule,
    now: DateTime<Utc>,
) -> Result<Vec<Observation>, tokio_postgres::Error> {
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let window = i64::from(rule.window_minutes.max(1));
    let from = minute - TimeDelta::minutes(window - 1);
    let scopes = db::window_stats(client, rule, from, now).await?;
    let baseline_minutes = i64::from(rule.baseline_minutes.max(1));
    let baseline_from = from - TimeDelta::minutes(baseline_minutes);
    // Only a scope with posts enough to fire needs its history: under a dimension of a
    // thousand keys most hold a post or two in a window.
    let wanted: Vec<String> = if rule.kind.uses_baseline() {
        scopes
            .iter()
            .filter(|(_, stats)| enough(rule, stats))
            .map(|(key, _)| key.clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut windows = if wanted.is_empty() {
        Default::default()
    } else {
        db::baseline_windows(client, rule.dimension, &wanted, from, window, baseline_from).await?
    };
    Ok(scopes
        .into_iter()
        .map(|(key, stats)| {
            // A scope without rows has no history: an empty baseline, as its series would be.
            let baseline = windows
                .remove(&key)
                .map(|rows| baseline_series(&rows, baseline_minutes / window))
                .unwrap_or_default();
            Observation {
                key,
                stats,
                baseline,
            }
        })
        .collect())
}

/// The `n` (at least one) windows of a baseline, oldest first, as posts and mean sentiment, from
/// the rows of `db::baseline_windows` (distance from the evaluated window, posts, mean; the
/// first row of a distance counts, rows beyond the baseline do not). Quiet windows count as
/// zero volume (and carry no sentiment), but windows from before the first post of the scope
/// are not history: they are skipped, so a new installation warms up instead of calling its
/// first posts a spike. The rows are placed by distance in one pass: a rule of one-minute
/// windows over a week's baseline has 10,080 of each, and looking each window up among the
/// rows would cost 10,080² comparisons per scope on every evaluation, on the pipeline's thread.
fn baseline_series(rows: &[(i64, i64, Option<f64>)], n: i64) -> Vec<(i64, f64)> {
    let n = usize::try_from(n).unwrap_or(0).max(1);
    let mut by_distance: Vec<Option<(i64, f64)>> = vec![None; n];
    for (at, posts, mean) in rows {
        if let Some(slot) = usize::try_from(*at)
            .ok()
            .and_then(|w| by_distance.get_mut(w))
        {
            slot.get_or_insert((*posts, mean.unwrap_or(f64::NAN)));
        }
    }
    by_distance
        .into_iter()
        .rev()
        .map(|w| w.unwrap_or((0, f64::NAN)))
        .skip_while(|(posts, _)| *posts <= 0)
        .collect()
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The baseline's centre and spread, robustly: the median and 1.4826 × the median absolute
/// deviation (the standard deviation, for normal data). An earlier spike or dip in the
/// baseline moves neither much, where it inflates the mean and the standard deviation enough
/// to hide the next one (with incidents every quarter hour, a third of an hour's windows).
fn robust_center_spread(values: &[f64]) -> (f64, f64) {
    let center = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    (center, 1.4826 * median(&deviations))
}

/// The figures of the posts a model scored. Under the `language` and `support` dimensions the
/// posts no model reads (every non-English post while the lexicon fallback takes the backlog)
/// count in `posts` with no label and no scores: a share or a mean of all posts there is
/// diluted by them, so a flood that sets off the fallback hid a language's negativity and
/// dragged its mean sentiment to zero (a dip, for a language that leans positive). Elsewhere
/// every post counted is scored, and this is `stats` itself.
fn scored(stats: &Stats) -> Stats {
    let sentiment = &stats.sentiment;
    let n = sentiment.negative + sentiment.neutral + sentiment.positive;
    if n == stats.posts {
        return stats.clone();
    }
    // The means are sums over the scored posts divided by all of them.
    let mean = |m: f64| {
        if n > 0 {
            m * stats.posts as f64 / n as f64
        } else {
            0.0
        }
    };
    Stats {
        posts: n,
        sentiment: SentimentStats {
            mean: mean(sentiment.mean),
            negative_share: share(sentiment.negative, n),
            neutral_share: share(sentiment.neutral, n),
            positive_share: share(sentiment.positive, n),
            ..sentiment.clone()
        },
        toxicity_mean: mean(stats.toxicity_mean),
        churn: ChurnStats {
            mean: mean(stats.churn.mean),
            high: stats.churn.high,
            high_share: share(stats.churn.high, n),
        },
        emotions: stats.emotions.clone(),
        engagement: stats.engagement.clone(),
    }
}

/// The figures a rule judges: volume is every post; shares and means are of the posts a
/// model scored.
fn judged(rule: &AlertRule, stats: &Stats) -> Stats {
    match rule.kind {
        RuleKind::VolumeSpike => stats.clone(),
        _ => scored(stats),
    }
}

/// Whether a window holds posts enough for the rule to fire on. A window without posts has no
/// share, mean or volume to cross a threshold with, whatever `min_volume` says (with a
/// threshold of 0 it would fire on an empty stream).
fn enough(rule: &AlertRule, stats: &Stats) -> bool {
    judged(rule, stats).posts >= rule.min_volume.max(1)
}

/// Whether the rule's condition holds, with the observed value, the effective threshold and
/// the baseline used.
fn check(rule: &AlertRule, o: &Observation) -> (bool, f64, f64, serde_json::Value) {
    let s = &judged(rule, &o.stats);
    let enough = enough(rule, &o.stats);
    match rule.kind {
        RuleKind::Negativity => (
            enough && s.sentiment.negative_share >= rule.threshold,
            s.sentiment.negative_share,
            rule.threshold,
            json!(null),
        ),
        RuleKind::Churn => (
            enough && s.churn.high_share >= rule.threshold,
            s.churn.high_share,
            rule.threshold,
            json!(null),
        ),
        RuleKind::Toxicity => (
            enough && s.toxicity_mean >= rule.threshold,
            s.toxicity_mean,
            rule.threshold,
            json!(null),
        ),
        RuleKind::VolumeSpike => {
            let points: Vec<f64> = o.baseline.iter().map(|(n, _)| *n as f64).collect();
            if points.len() < rule.min_baseline_points as usize {
                return (
                    false,
                    s.posts as f64,
                    f64::NAN,
                    json!({"points": points.len(), "warming_up": true}),
                );
            }
            let (mean, std) = mean_std(&points);
            let (median, spread) = robust_center_spread(&points);
            // A count varies by about its square root even when nothing happens (Poisson), so
            // the spread is never taken below that.
            let limit = median + rule.k * spread.max(median.max(1.0).sqrt());
            (
                enough && s.posts as f64 > limit,
                s.posts as f64,
                limit,
                json!({"median": median, "spread": spread, "mean": mean, "std": std,
                       "points": points.len(), "window_minutes": rule.window_minutes}),
            )
        }
        RuleKind::SentimentDip => {
            let points: Vec<f64> = o
                .baseline
                .iter()
                .map(|(_, m)| *m)
                .filter(|m| m.is_finite())
                .collect();
            if points.len() < rule.min_baseline_points as usize {
                return (
                    false,
                    s.sentiment.mean,
                    f64::NAN,
                    json!({"points": points.len(), "warming_up": true}),
                );
            }
            let (mean, std) = mean_std(&points);
            let (median, spread) = robust_center_spread(&points);
            let limit = median - rule.k * spread.max(0.05);
            (
                enough && s.sentiment.mean < limit,
                s.sentiment.mean,
                limit,
                json!({"median": median, "spread": spread, "mean": mean, "std": std,
                       "points": points.len(), "window_minutes": rule.window_minutes}),
            )
        }
        // Story rules are checked on stories, not on a dimension's figures.
        RuleKind::NewStory | RuleKind::StorySurge => (false, 0.0, rule.threshold, json!(null)),
    }
}

/// The posts and terms that drove an alert: the most negative (or most at-risk, or most
/// toxic) live posts of the window `[from, to]` in the scope, and the terms most frequent
/// in their openings.
async fn examples(
    client: &tokio_postgres::Client,
    kind: RuleKind,
    dimension: Dimension,
    key: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(serde_json::Value, serde_json::Value), tokio_postgres::Error> {
    let posts = db::evidence_posts(client, kind, dimension, key, from, to).await?;
    let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
    for post in &posts {
        for term in extract_terms(&post.text) {
            *counts.entry(term).or_default() += 1;
        }
    }
    let mut terms: Vec<(String, i64)> = counts.into_iter().collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let terms: Vec<serde_json::Value> = terms
        .into_iter()
        .take(10)
        .map(|(term, posts)| json!({"term": term, "posts": posts}))
        .collect();
    // The terms are read from the texts' openings as read; the posts are quoted cut, so an
    // alert's evidence is bounded whatever its posts hold.
    let top: Vec<db::EvidencePost> = posts
        .into_iter()
        .take(5)
        .map(|mut post| {
            post.text = quoted_text(&post.text);
            post
        })
        .collect();
    Ok((json!(top), json!(terms)))
}

/// Takes posts just deleted out of the evidence of the alerts that quote them: their posts
/// and terms are chosen again from the window's posts still live, and `deleted_posts` counts
/// the quoted posts that went. The alert keeps its status and figures.
async fn scrub_evidence(pool: &Pool, deleted: &[DeletedPost]) -> anyhow::Result<usize> {
    let Some(since) = deleted.iter().map(|p| p.created_at).min() else {
        return Ok(0);
    };
    let ids: Vec<&str> = deleted.iter().map(|p| p.id.as_str()).collect();
    let mut client = pool.get().await?;
    let alerts = db::quoting(&client, &ids, since).await?;
    for alert in &alerts {
        let mut evidence = alert.evidence.clone();
        let window = |field: &str| {
            evidence["window"][field]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(from), Some(to)) = (window("from"), window("to")) else {
            continue;
        };
        let quoted = evidence["top_posts"]
            .as_array()
            .map(|posts| {
                posts
                    .iter()
                    .filter(|p| p["id"].as_str().is_some_and(|id| ids.contains(&id)))
                    .count()
            })
            .unwrap_or(0);
        let (posts, terms) =
            examples(&client, alert.kind, alert.dimension, &alert.key, (from, to)).await?;
        let before = evidence["deleted_posts"].as_u64().unwrap_or(0);
        evidence["top_posts"] = posts;
        evidence["top_terms"] = terms;
        evidence["deleted_posts"] = json!(before + quoted as u64);
        db::replace_evidence(&mut client, alert.id, &evidence).await?;
    }
    Ok(alerts.len())
}

/// An alert a rule's condition calls for.
struct Candidate<'a> {
    key: &'a str,
    value: f64,
    threshold: f64,
    evidence: serde_json::Value,
}

/// How many more alerts one rule may open in an evaluation: producers name the keys a rule on
/// a whole dimension watches, so its alerts are bounded, not its keys.
struct Budget {
    open: i64,
    cap: i64,
    /// Keys whose condition held that were not fired for want of room.
    held_back: usize,
}

impl Budget {
    async fn of(
        client: &tokio_postgres::Client,
        rule: &AlertRule,
        settings: &Settings,
    ) -> anyhow::Result<Budget> {
        Ok(Budget {
            open: db::open_alerts(client, rule.id).await?,
            cap: i64::try_from(settings.alerts.max_open_per_rule.max(1)).unwrap_or(i64::MAX),
            held_back: 0,
        })
    }

    /// Whether one more alert may open; counts the key held back when not.
    fn allows(&mut self) -> bool {
        if self.open < self.cap {
            true
        } else {
            self.held_back += 1;
            false
        }
    }

    fn opened(&mut self) {
        self.open += 1;
    }

    fn report(&self, rule: &AlertRule) {
        if self.held_back > 0 {
            pulse_core::warn_repeated!(rule = ?rule.name, held_back = self.held_back, open = self.open,
                "an alert rule has as many open alerts as alerts.max_open_per_rule allows; further keys wait");
        }
    }
}

/// How far past its threshold an observation is, for firing the worst first when a rule has
/// no room for all.
fn excess(kind: RuleKind, value: f64, threshold: f64) -> f64 {
    let excess = match kind {
        RuleKind::SentimentDip => threshold - value,
        _ => value - threshold,
    };
    if excess.is_nan() {
        f64::NEG_INFINITY
    } else {
        excess
    }
}

/// Fires `alert` unless one is open for its scope, the scope is cooling down, or the rule has
/// no room; an open alert whose condition still holds is not clearing.
async fn fire_unless_open(
    client: &tokio_postgres::Client,
    rule: &AlertRule,
    alert: Candidate<'_>,
    budget: &mut Budget,
) -> anyhow::Result<Option<Fired>> {
    if db::keep_open(client, rule, alert.key).await?
        || db::cooling_down(client, rule, alert.key).await?
        || !budget.allows()
    {
        return Ok(None);
    }
    let fired = fire(client, rule, alert).await?;
    if fired.is_some() {
        budget.opened();
    }
    Ok(fired)
}

/// Stores an alert (the database lets one process of a group fire it) and answers what to
/// announce when this call fired it.
async fn fire(
    client: &tokio_postgres::Client,
    rule: &AlertRule,
    alert: Candidate<'_>,
) -> anyhow::Result<Option<Fired>> {
    let Candidate {
        key,
        value,
        threshold,
        evidence,
    } = alert;
    let partial = json!({
        "rule_id": rule.id, "rule_name": rule.name, "kind": rule.kind,
        "severity": rule.severity, "dimension": rule.dimension, "key": key,
        "status": "firing", "value": value, "threshold": threshold, "evidence": evidence,
    });
    let inserted = db::fire(
        client,
        NewAlert {
            rule,
            key,
            value,
            threshold,
            evidence: &evidence,
            payload: &partial,
        },
    )
    .await?;
    Ok(inserted.map(|(id, fired_at)| Fired {
        rule: rule.clone(),
        key: key.to_string(),
        value,
        body: json!({
            "id": id, "rule_id": rule.id, "rule_name": rule.name, "kind": rule.kind,
            "severity": rule.severity, "dimension": rule.dimension, "key": key,
            "status": "firing", "value": value, "threshold": threshold,
            "fired_at": fired_at, "evidence": evidence,
        }),
    }))
}

/// One evaluation of every enabled rule; returns the alerts this call fired.
async fn evaluate(pool: &Pool, settings: &Settings) -> anyhow::Result<Vec<Fired>> {
    let client = pool.get().await?;
    let now = Utc::now();
    let rules = db::rules(&client, true).await?;
    let resolve_after = settings.alerts.resolve_after_secs as f64;
    let mut fired = Vec::new();
    for rule in rules {
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        let from = minute - TimeDelta::minutes(i64::from(rule.window_minutes.max(1)) - 1);
        let mut budget = Budget::of(&client, &rule, settings).await?;
        if rule.kind.watches_stories() {
            let mut holding = Vec::new();
            if matches!(rule.kind, RuleKind::NewStory) {
                // A story alerted on is no candidate again; its open alert holds while the
                // story is still new.
                for key in crate::db::stories::still_new(&client, &rule, from).await? {
                    db::keep_open(&client, &rule, &key).await?;
                    holding.push(key);
                }
            }
            for c in crate::db::stories::alert_candidates(&client, &rule, from, now).await? {
                holding.push(c.key.clone());
                let evidence = json!({
                    "window": {"minutes": rule.window_minutes, "from": from, "to": now},
                    "value": c.value, "threshold": c.threshold, "min_volume": rule.min_volume,
                    "story": c.story, "top_posts": c.posts, "top_terms": c.terms,
                });
                let alert = Candidate {
                    key: &c.key,
                    value: c.value,
                    threshold: c.threshold,
                    evidence,
                };
                fired.extend(fire_unless_open(&client, &rule, alert, &mut budget).await?);
            }
            budget.report(&rule);
            db::clear(&client, rule.id, &holding, resolve_after).await?;
            continue;
        }
        let observations = observe(&client, &rule, now).await?;
        let mut breaching: Vec<_> = observations
            .iter()
            .map(|o| (o, check(&rule, o)))
            .filter(|(_, (holds, ..))| *holds)
            .collect();
        breaching.sort_by(|(_, (_, va, ta, _)), (_, (_, vb, tb, _))| {
            excess(rule.kind, *vb, *tb).total_cmp(&excess(rule.kind, *va, *ta))
        });
        let mut holding = Vec::new();
        for (o, (_, value, threshold, baseline)) in breaching {
            holding.push(o.key.clone());
            if db::keep_open(&client, &rule, &o.key).await?
                || db::cooling_down(&client, &rule, &o.key).await?
                || !budget.allows()
            {
                continue;
            }
            let (posts, terms) =
                examples(&client, rule.kind, rule.dimension, &o.key, (from, now)).await?;
            let evidence = json!({
                "window": {"minutes": rule.window_minutes, "from": from, "to": now, "stats": o.stats},
                "value": value, "threshold": if threshold.is_finite() { json!(threshold) } else { json!(null) },
                "baseline": baseline, "min_volume": rule.min_volume,
                "top_posts": posts, "top_terms": terms,
            });
            let threshold = if threshold.is_finite() {
                threshold
            } else {
                rule.threshold
            };
            let alert = Candidate {
                key: &o.key,
                value,
                threshold,
                evidence,
            };
            if let Some(alert) = fire(&client, &rule, alert).await? {
                budget.opened();
                fired.push(alert);
            }
        }
        budget.report(&rule);
        // Open alerts whose condition no longer holds start (or continue) clearing, and
        // resolve once clear for long enough. Keys held back for want of room hold too.
        db::clear(&client, rule.id, &holding, resolve_after).await?;
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log writer for one test: everything logged while it is the default subscriber.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_rule_name_or_key_cannot_forge_log_lines() {
        let name = "Churn\n2026-01-01T00:00:00Z  INFO pulse: all clear \u{1b}[2K\rkey=\"x\"";
        let rule: AlertRule = serde_json::from_value(json!({
            "id": 1, "name": name,
            "kind": "churn", "dimension": "product", "key": null, "window_minutes": 5,
            "threshold": 0.2, "min_volume": 20, "baseline_minutes": 60, "k": 3.0,
            "min_baseline_points": 6, "severity": "critical", "cooldown_secs": 900,
            "enabled": true, "channels": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap();
        let alert = Fired {
            rule,
            key: "pulse\nphone".into(),
            value: 0.5,
            body: json!({}),
        };
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || log_fired(&alert));
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(!log.contains('\r') && !log.contains('\u{1b}'), "{log:?}");
        assert!(log.contains(&format!("rule={name:?}")), "{log}");
        assert!(log.contains(r#"key="pulse\nphone""#), "{log}");
    }

    /// The baseline as defined: each window looked up among the rows, oldest first, from the
    /// first window with posts.
    fn baseline_by_lookup(rows: &[(i64, i64, Option<f64>)], n: i64) -> Vec<(i64, f64)> {
        let all: Vec<(i64, f64)> = (0..n.max(1))
            .rev()
            .map(|w| {
                rows.iter()
                    .find(|(at, _, _)| *at == w)
                    .map_or((0, f64::NAN), |(_, posts, mean)| {
                        (*posts, mean.unwrap_or(f64::NAN))
                    })
            })
            .collect();
        let first = all
            .iter()
            .position(|(posts, _)| *posts > 0)
            .unwrap_or(all.len());
        all[first..].to_vec()
    }

    /// Compares baselines bit for bit (a window without sentiment is NaN in both).
    fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    #[test]
    fn a_baseline_is_its_windows_by_distance_oldest_first_from_the_first_post() {
        // Rows as PostgreSQL returns them (latest first), with a gap, a window of posts none
        // scored, one beyond the baseline (a baseline that is not a whole number of windows),
        // and quiet windows at the old end.
        let rows = [
            (0, 4, Some(0.5)),
            (2, 3, None),
            (3, 7, Some(-0.25)),
            (5, 9, Some(1.0)),
        ];
        let got = baseline_series(&rows, 5);
        assert!(same(&got, &baseline_by_lookup(&rows, 5)), "{got:?}");
        assert_eq!(
            got.len(),
            4,
            "the window before the first post is skipped: {got:?}"
        );
        assert_eq!((got[0], got[1].0, got[3]), ((7, -0.25), 3, (4, 0.5)));
        assert!(got[1].1.is_nan() && got[2].0 == 0 && got[2].1.is_nan());
        for n in [0, 1, 3, 6, 8] {
            assert!(
                same(&baseline_series(&rows, n), &baseline_by_lookup(&rows, n)),
                "{n}"
            );
        }
        assert!(baseline_series(&[], 10).is_empty());
        assert!(baseline_series(&[(1, 0, None), (4, 0, Some(0.1))], 10).is_empty());
    }

    #[test]
    fn a_week_of_one_minute_windows_gives_the_baseline_as_defined() {
        // The largest baseline a rule may ask for: 10,080 one-minute windows, every seventh
        // quiet, in the order PostgreSQL returns them, plus rows out of its range.
        let n = 10_080;
        let mut rows: Vec<(i64, i64, Option<f64>)> = (0..n)
            .rev()
            .filter(|w| w % 7 != 3)
            .map(|w| {
                (
                    w,
                    w % 50 + 1,
                    (w % 11 != 0).then(|| (w % 13) as f64 / 13.0 - 0.5),
                )
            })
            .collect();
        rows.extend([(n, 99, Some(0.9)), (-1, 99, Some(0.9))]);
        let got = baseline_series(&rows, n);
        assert_eq!(got.len(), n as usize);
        assert!(same(&got, &baseline_by_lookup(&rows, n)));
        // With the oldest thousand windows quiet, the baseline starts after them.
        rows.retain(|(w, _, _)| *w < n - 1_000);
        let got = baseline_series(&rows, n);
        assert_eq!(got.len(), n as usize - 1_000);
        assert!(same(&got, &baseline_by_lookup(&rows, n)));
    }

    #[test]
    fn a_window_without_posts_never_fires_whatever_the_threshold() {
        for kind in [
            "negativity",
            "churn",
            "toxicity",
            "sentiment_dip",
            "volume_spike",
        ] {
            let rule: AlertRule = serde_json::from_value(json!({
                "id": 1, "name": "any", "kind": kind, "dimension": "overall", "key": null,
                "window_minutes": 5, "threshold": 0.0, "min_volume": 0, "baseline_minutes": 60,
                "k": 0.0, "min_baseline_points": 1, "severity": "info", "cooldown_secs": 0,
                "enabled": true, "channels": null,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            }))
            .unwrap();
            let mut o = Observation {
                key: "overall".into(),
                stats: Stats::default(),
                baseline: vec![(0, f64::NAN); 12],
            };
            assert!(!check(&rule, &o).0, "{kind} fired on an empty window");
            o.stats.posts = 1;
            o.stats.sentiment.negative = 1;
            if kind == "negativity" {
                assert!(check(&rule, &o).0, "one post reaches a threshold of 0");
            }
        }
    }

    #[test]
    fn an_earlier_spike_in_the_baseline_does_not_hide_the_next() {
        // Six five-minute windows of a steady 1,500 posts, two of them with an incident.
        let baseline = [3_500.0, 1_480.0, 1_530.0, 3_450.0, 1_510.0, 1_495.0];
        let (mean, std) = mean_std(&baseline);
        assert!(3_500.0 < mean + 3.0 * std, "mean and std hide it");
        let (center, spread) = robust_center_spread(&baseline);
        assert!((center - 1_520.0).abs() < 1e-9, "{center}");
        let limit = center + 3.0 * spread.max(center.sqrt());
        assert!(3_500.0 > limit && 1_600.0 < limit, "limit {limit}");
    }

    fn rule(kind: &str, min_volume: i64) -> AlertRule {
        serde_json::from_value(json!({
            "id": 1, "name": "German", "kind": kind, "dimension": "language", "key": "de",
            "window_minutes": 5, "threshold": 0.5, "min_volume": min_volume,
            "baseline_minutes": 60, "k": 3.0, "min_baseline_points": 6, "severity": "warning",
            "cooldown_secs": 900, "enabled": true, "channels": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    /// A window of `posts` posts: those labelled (`negative`, `neutral`, `positive`) scored,
    /// summing `sentiment_sum`, 6.0 of toxicity and 8.0 of churn, 4 of high churn; the rest no
    /// model read.
    fn window(posts: i64, labels: [i64; 3], sentiment_sum: f64) -> Stats {
        let mut ints = [0i64; 16];
        ints[0] = posts;
        ints[2..5].copy_from_slice(&labels);
        ints[7] = 4;
        let mut floats = [0f64; 16];
        floats[1] = sentiment_sum;
        floats[5] = 6.0;
        floats[6] = 8.0;
        Stats::from_sums(|i| ints[i], |i| floats[i])
    }

    #[test]
    fn posts_no_model_read_neither_hide_a_language_s_negativity_nor_fake_a_dip() {
        let o = |stats| Observation {
            key: "de".into(),
            stats,
            baseline: vec![(50, 0.3); 12],
        };
        // 20 posts scored, three in four negative, and 30 unread: a share of 0.3 of all posts.
        let angry = o(window(50, [15, 3, 2], -10.0));
        let (holds, value, ..) = check(&rule("negativity", 20), &angry);
        assert!(holds && (value - 0.75).abs() < 1e-9, "{value}");
        let too_few = check(&rule("negativity", 21), &angry);
        assert!(!too_few.0, "only 20 were scored");
        let (_, toxicity, ..) = check(&rule("toxicity", 20), &angry);
        assert!((toxicity - 0.3).abs() < 1e-9, "{toxicity}");
        let (_, churn, ..) = check(&rule("churn", 20), &angry);
        assert!((churn - 0.2).abs() < 1e-9, "{churn}");
        // Scored posts as positive as the baseline: a mean of 0.12 of all posts, below the
        // baseline's 0.3 - 3 x 0.05.
        let calm = o(window(50, [2, 8, 10], 6.0));
        let (dips, mean, ..) = check(&rule("sentiment_dip", 20), &calm);
        assert!(!dips && (mean - 0.3).abs() < 1e-9, "{mean}");
        // Volume is every post.
        let (_, volume, ..) = check(&rule("volume_spike", 20), &calm);
        assert_eq!(volume, 50.0);
        // Where every post is scored, nothing changes.
        let all = window(20, [15, 3, 2], -10.0);
        assert_eq!(scored(&all), all);
    }

    #[test]
    fn the_furthest_past_the_threshold_comes_first_whichever_way_the_rule_looks() {
        assert!(excess(RuleKind::Negativity, 0.9, 0.5) > excess(RuleKind::Negativity, 0.6, 0.5));
        assert!(
            excess(RuleKind::SentimentDip, -0.8, -0.2) > excess(RuleKind::SentimentDip, -0.3, -0.2)
        );
        assert_eq!(
            excess(RuleKind::VolumeSpike, 10.0, f64::NAN),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn medians_of_odd_even_and_empty_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(robust_center_spread(&[5.0, 5.0, 5.0]), (5.0, 0.0));
    }
}
