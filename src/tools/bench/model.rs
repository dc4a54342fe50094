//! The transformer part of `pulse bench`: in one run, (a) the raw ONNX Runtime ceiling — a
//! loop of `session.run` over pre-tokenised batches, with the same bundle, sub-batches, worker
//! threads and intra-op threads as the pipeline; (b) a real `pulse serve` child process with
//! the model analysing posts XADDed as fast as Redis takes them, timed until every entry is
//! committed and acknowledged; (c) the child's peak resident memory.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fred::prelude::*;
use serde::Serialize;

use crate::analysis::transformer::TransformerAnalyzer;
use crate::analysis::Analyzer;
use crate::config::Settings;
use crate::models::Event;

/// Texts per analyzer call in the raw loop: what one XREADGROUP hands a worker under load.
const READ_BATCH: usize = 500;

/// Options of the model benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelBenchArgs {
    /// Posts analysed by the raw loop and by the pipeline.
    #[arg(long, default_value_t = 6_000)]
    pub model_events: u64,
}

/// Figures of one model run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelReport {
    pub model: String,
    pub events: u64,
    pub workers: usize,
    pub intra_threads: usize,
    pub batch_size: usize,
    pub raw_onnx_posts_per_sec: f64,
    pub pipeline_posts_per_sec: f64,
    pub fraction_of_raw: f64,
    pub peak_rss_mb: f64,
}

/// Runs the raw loop and the pipeline on `events` generated posts.
pub async fn run(
    settings: &Settings,
    db_url: &str,
    redis: &Client,
    run_id: &str,
    args: &ModelBenchArgs,
) -> anyhow::Result<ModelReport> {
    let n = args.model_events;
    let events = super::generate_posts(n, &format!("model-{run_id}-"));
    let texts: Vec<String> = events
        .iter()
        .filter_map(|json| match Event::from_slice(json.as_bytes()) {
            Ok(Event::Post(p)) => Some(p.text),
            _ => None,
        })
        .collect();
    let workers = Settings::threads_or_cores(settings.analyzer.workers);
    let mut report = ModelReport {
        events: n,
        workers,
        intra_threads: settings.analyzer.intra_threads,
        batch_size: settings.analyzer.batch_size,
        ..Default::default()
    };
    let (model, raw) = raw_onnx(settings, &texts, workers)?;
    report.model = model;
    report.raw_onnx_posts_per_sec = raw;
    eprintln!("raw ONNX Runtime: {raw:.0} posts/s");

    let stream = format!("pulse:bench:{run_id}:model");
    // The parts before this one may have left posts behind; the count below is of this run's.
    super::truncate(db_url).await?;
    let (rate, rss) = pipeline(settings, db_url, redis, &stream, &events).await?;
    report.pipeline_posts_per_sec = rate;
    report.fraction_of_raw = rate / raw;
    report.peak_rss_mb = rss;
    eprintln!("pipeline with the model: {rate:.0} posts/s, peak RSS {rss:.0} MB");
    super::truncate(db_url).await?;
    Ok(report)
}

/// `session.run` alone over pre-tokenised batches on `workers` threads.
fn raw_onnx(
    settings: &Settings,
    texts: &[String],
    workers: usize,
) -> anyhow::Result<(String, f64)> {
    let options = crate::analysis::transformer::InferenceOptions::from_settings(&settings.analyzer);
    let share = texts.len().div_ceil(workers).max(1);
    let results: Vec<anyhow::Result<(String, Duration, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(share)
            .map(|part| {
                let options = options.clone();
                scope.spawn(move || {
                    let mut model = TransformerAnalyzer::load(&options)?;
                    let mut prepared = Vec::new();
                    for chunk in part.chunks(READ_BATCH) {
                        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                        prepared.extend(model.prepare(0, &refs)?);
                    }
                    let started = Instant::now();
                    for batch in &prepared {
                        model.run_prepared(0, batch)?;
                    }
                    Ok((model.model().to_string(), started.elapsed(), part.len()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("raw thread panicked")))
            })
            .collect()
    });
    let mut slowest = Duration::ZERO;
    let mut total = 0;
    let mut model = String::new();
    for r in results {
        let (name, took, count) = r?;
        slowest = slowest.max(took);
        total += count;
        model = name;
    }
    Ok((model, total as f64 / slowest.as_secs_f64()))
}

/// A `pulse serve` child with the model and no fallback, fed `events` at full speed.
async fn pipeline(
    settings: &Settings,
    db_url: &str,
    redis: &Client,
    stream: &str,
    events: &[String],
) -> anyhow::Result<(f64, f64)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = ServeChild(
        Command::new(std::env::current_exe()?)
            .args(["serve", "--open"])
            .env("PULSE_LIMITS__RATE_LIMITS", "false")
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", &settings.redis.url)
            .env("PULSE_STREAM", stream)
            .env("PULSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("PULSE_CONFIG", "/nonexistent/pulse.toml")
            .env("PULSE_MIGRATE_ON_START", "false")
            .env("PULSE_ANALYZER__BACKEND", "onnx")
            .env("PULSE_ANALYZER__FALLBACK_LAG_SECS", "0")
            .env("PULSE_ALERTS__ENABLED", "false")
            .env("PULSE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting pulse serve")?,
    );
    let ready = format!("http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&ready).await {
            if r.status().is_success() {
                break;
            }
        }
        if let Some(status) = child.0.try_wait()? {
            anyhow::bail!("pulse serve exited with {status} before it was ready");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "pulse serve was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    super::raw_xadd(redis, stream, events).await?;
    let mut s = settings.clone();
    s.redis.stream = stream.to_string();
    s.redis.group = "pulse".into();
    super::wait_drained(redis, &s, "the model run").await?;
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    let rss = super::peak_rss_mb_in(&format!("/proc/{}/status", child.0.id()));
    let stored = super::count_posts(db_url).await?;
    anyhow::ensure!(
        stored == events.len() as i64,
        "expected {} posts stored, found {stored}",
        events.len()
    );
    let _: i64 = redis.del(stream).await?;
    Ok((rate, rss))
}

/// Kills the child when the benchmark ends, however it ends.
struct ServeChild(Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// The report as a Markdown table.
pub fn markdown(r: &ModelReport) -> String {
    format!(
        "| measure ({model}, {workers} workers x {intra} intra-op threads, batches of {batch}) | result |\n|---|---|\n\
         | posts | {events} |\n\
         | ceiling: raw ONNX Runtime (`session.run` on pre-tokenised batches) | {raw:.0} posts/s |\n\
         | **Pulse end to end with the model** (XADD to committed and acknowledged) | **{e2e:.0} posts/s** |\n\
         | fraction of the raw ONNX Runtime ceiling | {fraction:.0}% |\n\
         | peak resident memory of `pulse serve` with the model loaded, under this load | {rss:.0} MB |",
        model = r.model,
        workers = r.workers,
        intra = r.intra_threads,
        batch = r.batch_size,
        events = r.events,
        raw = r.raw_onnx_posts_per_sec,
        e2e = r.pipeline_posts_per_sec,
        fraction = r.fraction_of_raw * 100.0,
        rss = r.peak_rss_mb,
    )
}
