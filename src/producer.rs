//! Drives the synthetic [`Generator`](crate::generate::Generator) into a Redis stream at a
//! steady rate, like any external producer would. Used by `pulse generate`, `serve --demo`
//! and the benchmark.

use std::time::{Duration, Instant};

use chrono::Utc;
use fred::prelude::*;

use crate::generate::{Generator, GeneratorOptions};
use crate::models::Event;

/// Most events sent in one pipelined round trip.
pub const MAX_PIPELINE: usize = 500;
/// How often the pacer wakes up to send what is due.
const TICK: Duration = Duration::from_millis(10);

/// What to produce.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Events per second; 0 means as fast as Redis accepts them.
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
}

impl ProduceOptions {
    /// The live demo feed: a modest rate, forever, with cascades.
    pub fn demo() -> Self {
        Self {
            rate: 50.0,
            total: None,
            duration: None,
            seed: rand::random(),
            engagements: true,
            id_prefix: format!("demo-{}-", &uuid::Uuid::new_v4().simple().to_string()[..6]),
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
    Generator::new(GeneratorOptions {
        seed: options.seed,
        posts_per_sec: if options.rate > 0.0 {
            options.rate
        } else {
            1_000.0
        },
        engagements: options.engagements,
        start: Utc::now(),
        id_prefix: options.id_prefix.clone(),
    })
}

/// Appends generated events to `stream` until the count or duration is reached (forever if
/// neither is set). Timestamps are set to the moment of sending, so the feed is live.
pub async fn produce(
    redis: &Client,
    stream: &str,
    options: ProduceOptions,
) -> anyhow::Result<ProduceReport> {
    let mut generator = generator(&options);
    let started = Instant::now();
    let mut report = ProduceReport::default();
    loop {
        let elapsed = started.elapsed();
        if options.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let remaining = options
            .total
            .map_or(u64::MAX, |t| t.saturating_sub(report.events));
        if remaining == 0 {
            break;
        }
        let due = if options.rate > 0.0 {
            ((options.rate * elapsed.as_secs_f64()) as u64).saturating_sub(report.events)
        } else {
            MAX_PIPELINE as u64
        };
        let batch = due.min(remaining).min(MAX_PIPELINE as u64) as usize;
        if batch == 0 {
            tokio::time::sleep(TICK).await;
            continue;
        }
        let now = Utc::now();
        let pipeline = redis.pipeline();
        for _ in 0..batch {
            let mut event = generator.next_event();
            match &mut event {
                Event::Post(p) => {
                    p.created_at = now;
                    report.posts += 1;
                }
                Event::Engagement(e) => e.at = now,
            }
            let json = serde_json::to_string(&event)?;
            let _: () = pipeline
                .xadd(stream, false, None::<()>, "*", vec![("event", json)])
                .await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        report.events += batch as u64;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
