//! Drives the synthetic [`Generator`](crate::generate::Generator) into a Redis stream at a
//! steady rate, like any external producer would. Used by `pulse generate`, `serve --demo`
//! and the benchmark.

use std::time::{Duration, Instant};

use chrono::Utc;
use fred::prelude::*;

use crate::generate::{Generator, GeneratorOptions};
use crate::models::Event;
use crate::streams::producer::{xadd_events, MAX_PIPELINE};
use crate::telemetry::causes::causes;

/// How often the pacer wakes up to send what is due.
const TICK: Duration = Duration::from_millis(10);

/// What to produce.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// New posts per second; each post's engagements follow in real time. 0 sends as fast
    /// as Redis accepts (timestamps then are the moment of sending).
    pub rate: f64,
    /// Stop after this many events.
    pub total: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    pub seed: u64,
    /// Include engagement events (cascades) as well as posts.
    pub engagements: bool,
    /// Prefix of post ids, so runs never collide.
    pub id_prefix: String,
    /// Lay the demo scenarios over the feed (see [`Generator::with_scenarios`]).
    pub scenarios: bool,
}

impl ProduceOptions {
    /// The live demo feed: a few posts per second, forever, with cascades and the scenarios.
    pub fn demo() -> Self {
        Self {
            rate: 5.0,
            total: None,
            duration: None,
            seed: rand::random(),
            engagements: true,
            id_prefix: format!("demo-{}-", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            scenarios: true,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProduceReport {
    pub events: u64,
    pub posts: u64,
    pub seconds: f64,
}

/// Builds the generator for `options`, starting its virtual clock now.
pub fn generator(options: &ProduceOptions) -> Generator {
    let generator = Generator::new(GeneratorOptions {
        seed: options.seed,
        posts_per_sec: if options.rate > 0.0 {
            options.rate
        } else {
            1_000.0
        },
        engagements: options.engagements,
        start: Utc::now(),
        id_prefix: options.id_prefix.clone(),
        time_scale: 1.0,
        max_posts: None,
    });
    if options.scenarios {
        generator.with_scenarios()
    } else {
        generator
    }
}

fn timestamp(event: &mut Event) -> &mut chrono::DateTime<Utc> {
    match event {
        Event::Post(p) => &mut p.created_at,
        Event::Engagement(e) => &mut e.at,
        Event::Delete(d) => &mut d.at,
    }
}

/// The first wait before appending a batch again after Redis refused it, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Appends generated events to `stream` until the count or duration is reached (forever if
/// neither is set). With a rate, the generator's virtual clock starts now and each event is
/// sent when its timestamp comes due, so the feed is live and cascades unfold in real time.
pub async fn produce(
    redis: &Client,
    stream: &str,
    options: ProduceOptions,
) -> anyhow::Result<ProduceReport> {
    let mut generator = generator(&options);
    let started = Instant::now();
    let mut report = ProduceReport::default();
    let mut next: Option<Event> = None;
    let mut batch: Vec<String> = Vec::with_capacity(MAX_PIPELINE);
    loop {
        if options.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let remaining = options
            .total
            .map_or(u64::MAX, |t| t.saturating_sub(report.events));
        if remaining == 0 {
            break;
        }
        let now = Utc::now();
        while (batch.len() as u64) < remaining.min(MAX_PIPELINE as u64) {
            let mut event = next.take().unwrap_or_else(|| generator.next_event());
            if options.rate > 0.0 {
                if *timestamp(&mut event) > now {
                    next = Some(event);
                    break;
                }
            } else {
                *timestamp(&mut event) = now;
            }
            if matches!(event, Event::Post(_)) {
                report.posts += 1;
            }
            batch.push(serde_json::to_string(&event)?);
        }
        if batch.is_empty() {
            tokio::time::sleep(TICK).await;
            continue;
        }
        // Redis going away (a restart, a reset connection) pauses the feed rather than ends
        // it; a batch appended in part is appended again whole, and the ids of its events
        // make the repeats harmless.
        let mut backoff = crate::models::backoff::Backoff::new(RETRY_FIRST, RETRY_MAX);
        while let Err(e) = xadd_events(redis, stream, &batch).await {
            let wait = backoff.next_wait();
            tracing::warn!(error = %causes(&e), wait_ms = wait.as_millis() as u64, "appending generated events failed; trying again");
            tokio::time::sleep(wait).await;
        }
        report.events += batch.len() as u64;
        batch.clear();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
