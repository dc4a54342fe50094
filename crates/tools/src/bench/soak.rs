//! `pulse bench --only soak --minutes 30`: a `pulse serve` child with the transformer model
//! (ONNX backend, the bundle of `PULSE_MODEL_DIR`, no lexicon fallback) fed at half of its
//! capacity for a long time, to show that nothing accumulates: memory, latency and error
//! counters must stay flat.
//!
//! The capacity is measured first in the same run (a burst of generated posts, timed until
//! every entry is committed and acknowledged) unless `--soak-rate` is given. That child is then
//! stopped and the soak runs in a fresh one, so it measures steady load, not what a burst of
//! full batches leaves in the allocator. Then posts are offered at the soak rate and, every
//! `--soak-sample-secs`, the child is sampled: resident memory, throughput, p50/p99 latency
//! of that interval (XADD to commit, from its `pulse_pipeline_latency_seconds` histogram),
//! backlog, and its error counters. The table and JSON are rewritten after every sample, so an
//! unattended run leaves its figures even if it is interrupted. It fails when, after the
//! warm-up samples, resident memory grows by more than `--soak-memory-tolerance-pct`, the
//! median p50 or p99 of the last third of the samples exceeds `--soak-latency-factor` times
//! that of the first third, any error counter grows, or a post sent is not stored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fred::prelude::*;
use serde::Serialize;

use super::output;
use super::plot::{Panel, Series};
use super::scrape::{self, Reading};
use super::websocket::Server;
use crate::config::Settings;
use crate::telemetry::names;

/// Options of the soak.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Length of the soak (after the capacity measurement), in minutes.
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Offered posts per second; without it, half of the capacity measured first.
    #[arg(long)]
    pub soak_rate: Option<f64>,
    /// Offered rate as a fraction of the capacity measured first (without `--soak-rate`).
    #[arg(long, default_value_t = 0.5)]
    pub soak_load: f64,
    /// Keeps the configured lexicon fallback on during the soak (the capacity burst runs
    /// without it), and reports the share of posts it took.
    #[arg(long)]
    pub soak_fallback: bool,
    /// Posts of the capacity measurement.
    #[arg(long, default_value_t = 4_000)]
    pub soak_capacity_posts: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60.0)]
    pub soak_sample_secs: f64,
    /// Samples at the start that the memory and latency checks leave out.
    #[arg(long, default_value_t = 2)]
    pub soak_warmup_samples: usize,
    /// Most growth of resident memory after the warm-up, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub soak_memory_tolerance_pct: f64,
    /// Most growth of the p50 and p99 latency after the warm-up, as a factor.
    #[arg(long, default_value_t = 2.0)]
    pub soak_latency_factor: f64,
}

/// The child's error counters, cumulative since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ErrorCounts {
    pub dead_letters: f64,
    pub store_errors: f64,
    pub actor_restarts: f64,
    pub read_errors: f64,
}

impl ErrorCounts {
    fn of(reading: &Reading) -> Self {
        Self {
            dead_letters: reading.value(names::DEAD_LETTERS),
            store_errors: reading.value(names::STORE_ERRORS),
            actor_restarts: reading.value(names::ACTOR_RESTARTS),
            read_errors: reading.value(names::READ_ERRORS),
        }
    }
}

/// One sample of the child.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakSample {
    pub index: usize,
    pub elapsed_secs: f64,
    /// Posts the producer appended per second during the interval.
    pub offered_per_sec: f64,
    /// Entries the child acknowledged per second during the interval.
    pub throughput_per_sec: f64,
    pub latency_samples: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    /// The machine's 1-minute load average.
    pub load_average: f64,
    /// Entries appended and not yet acknowledged (lag plus pending).
    pub backlog: i64,
    /// Share of the interval's analysed posts that went to the lexicon fallback, in 0..=1.
    pub fallback_share: f64,
    #[serde(flatten)]
    pub errors: ErrorCounts,
}

/// Every figure of a soak, with its verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    pub model: String,
    pub minutes: f64,
    pub sample_secs: f64,
    pub warmup_samples: usize,
    pub capacity_posts: u64,
    /// Posts per second the child sustained in the capacity burst (0 when `--soak-rate`).
    pub capacity_per_sec: f64,
    pub rate: f64,
    /// Whether the lexicon fallback was on, and the share of all posts it analysed.
    pub fallback: bool,
    pub fallback_share: f64,
    pub memory_tolerance_pct: f64,
    pub latency_factor: f64,
    /// Error counters when sampling started (after the capacity burst).
    pub errors_at_start: ErrorCounts,
    pub samples: Vec<SoakSample>,
    /// Resident memory at the end of the warm-up and at the end, MB, and the growth in %.
    pub rss_baseline_mb: f64,
    pub rss_final_mb: f64,
    pub rss_growth_pct: f64,
    /// Median p50/p99 of the first and of the last third of the post-warm-up samples, ms.
    pub p50_first_ms: f64,
    pub p50_last_ms: f64,
    pub p99_first_ms: f64,
    pub p99_last_ms: f64,
    pub posts_sent: u64,
    pub posts_stored: i64,
    /// "running", "passed" or "failed".
    pub verdict: String,
    pub failures: Vec<String>,
}

/// Runs the soak; writes `soak.md` and `soak.json` to `--out-dir` after every sample. Fails
/// (after writing them) when a check fails.
pub async fn run(run: &super::Run, args: &SoakArgs) -> anyhow::Result<SoakReport> {
    let (settings, db_url, redis, run_id) = (&run.settings, &run.db_url, &run.redis, &run.id);
    let samples = (args.minutes * 60.0 / args.soak_sample_secs).floor() as usize;
    anyhow::ensure!(
        samples >= args.soak_warmup_samples + 2,
        "a soak of {} min with {} s samples has {samples} samples; it needs at least {} \
         ({} of warm-up and two to compare)",
        args.minutes,
        args.soak_sample_secs,
        args.soak_warmup_samples + 2,
        args.soak_warmup_samples
    );
    let stream = format!("pulse:bench:{run_id}:soak");
    let start = |fallback: bool| {
        let mut env = vec![
            ("PULSE_ANALYZER__BACKEND", "onnx"),
            ("PULSE_MIGRATE_ON_START", "false"),
        ];
        if !fallback {
            env.push(("PULSE_ANALYZER__FALLBACK_LAG_SECS", "0"));
        }
        Server::start(run, &stream, &env).context(
            "starting pulse serve with the model (run `eval \"$(bash scripts/models.sh)\"` first)",
        )
    };
    let mut server = start(args.soak_fallback && args.soak_rate.is_some())?;
    let mut group = settings.clone();
    group.redis.stream = stream.clone();
    group.redis.group = "pulse".into();
    let mut report = SoakReport {
        minutes: args.minutes,
        sample_secs: args.soak_sample_secs,
        warmup_samples: args.soak_warmup_samples,
        memory_tolerance_pct: args.soak_memory_tolerance_pct,
        latency_factor: args.soak_latency_factor,
        fallback: args.soak_fallback,
        verdict: "running".into(),
        ..Default::default()
    };
    report.rate = match args.soak_rate {
        Some(rate) => rate,
        None => {
            let n = args.soak_capacity_posts;
            eprintln!("soak: measuring capacity with {n} posts");
            let events = super::generate_posts(n, &format!("soak-capacity-{run_id}-"));
            let started = Instant::now();
            super::raw_xadd(redis, &stream, &events).await?;
            super::wait_drained(redis, &group, "the capacity burst").await?;
            report.capacity_posts = n;
            report.capacity_per_sec = n as f64 / started.elapsed().as_secs_f64();
            report.model = model_of(server.address).await.unwrap_or_default();
            // Stopped gracefully (SIGTERM) with the burst drained; the soak gets a new process.
            drop(server);
            server = start(args.soak_fallback)?;
            report.capacity_per_sec * args.soak_load
        }
    };
    eprintln!(
        "soak: {} posts/s for {} min with {} (capacity {:.0}/s)",
        report.rate.round(),
        args.minutes,
        report.model,
        report.capacity_per_sec
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = tokio::spawn(produce(
        crate::streams::connect(&settings.redis.url, "soak-producer").await?,
        stream.clone(),
        report.rate,
        format!("soak-{run_id}-"),
        stop.clone(),
        sent.clone(),
    ));
    let result = sample(run, &server, &group, args, samples, &sent, &mut report).await;
    stop.store(true, Ordering::Release);
    report.posts_sent = producer.await??;
    result?;

    super::wait_drained(redis, &group, "the soak").await?;
    report.posts_stored = super::count_posts(db_url).await?;
    judge(&mut report);
    let expected = report.posts_sent as i64 + report.capacity_posts as i64;
    if report.posts_stored != expected {
        report.failures.push(format!(
            "{expected} posts sent, {} stored",
            report.posts_stored
        ));
        report.verdict = "failed".into();
    }
    write_files(&report, &run.out_dir)?;
    drop(server);
    let _: i64 = redis.del(&stream).await?;
    super::truncate(db_url).await?;
    anyhow::ensure!(
        report.failures.is_empty(),
        "the soak failed: {}",
        report.failures.join("; ")
    );
    Ok(report)
}

async fn sample(
    run: &super::Run,
    server: &Server,
    group: &Settings,
    args: &SoakArgs,
    samples: usize,
    sent: &AtomicU64,
    report: &mut SoakReport,
) -> anyhow::Result<()> {
    let (redis, out_dir) = (&run.redis, &run.out_dir);
    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.soak_sample_secs);
    let mut previous = scrape::read(server.address).await?;
    report.errors_at_start = ErrorCounts::of(&previous);
    let mut previous_sent = sent.load(Ordering::Relaxed);
    let mut previous_posts = posts_by_model(server.address).await;
    let first_posts = previous_posts.clone();
    let mut previous_at = Instant::now();
    for index in 1..=samples {
        tokio::time::sleep_until((started + interval * index as u32).into()).await;
        let now = scrape::read(server.address).await?;
        let now_sent = sent.load(Ordering::Relaxed);
        let now_posts = posts_by_model(server.address).await;
        let stats = crate::streams::group::group_stats(redis, group).await?;
        let secs = previous_at.elapsed().as_secs_f64();
        previous_at = Instant::now();
        let latency = now.latency.since(&previous.latency);
        let ms = |q: f64| latency.quantile(q).map_or(0.0, |s| s * 1_000.0);
        let sample = SoakSample {
            index,
            elapsed_secs: started.elapsed().as_secs_f64(),
            offered_per_sec: (now_sent - previous_sent) as f64 / secs,
            throughput_per_sec: (now.value(names::ENTRIES_ACKED)
                - previous.value(names::ENTRIES_ACKED))
                / secs,
            latency_samples: latency.count() as u64,
            latency_p50_ms: ms(0.50),
            latency_p99_ms: ms(0.99),
            rss_mb: server.rss_mb(),
            load_average: super::load_average(),
            peak_rss_mb: super::peak_rss_mb_in(&format!("/proc/{}/status", server.pid())),
            backlog: stats.lag.unwrap_or(0) + stats.pending,
            fallback_share: now_posts.lexicon_share_since(&previous_posts),
            errors: ErrorCounts::of(&now),
        };
        eprintln!(
            "soak {index}/{samples}: {:.0}/s, p50 {:.0} ms, p99 {:.0} ms, RSS {:.0} MB, backlog {}",
            sample.throughput_per_sec,
            sample.latency_p50_ms,
            sample.latency_p99_ms,
            sample.rss_mb,
            sample.backlog
        );
        if report.model.is_empty() {
            report.model = model_of(server.address).await.unwrap_or_default();
        }
        report.samples.push(sample);
        report.fallback_share = now_posts.lexicon_share_since(&first_posts);
        judge(report);
        if index < samples {
            report.verdict = "running".into();
        }
        write_files(report, out_dir)?;
        previous = now;
        previous_sent = now_sent;
        previous_posts = now_posts;
    }
    Ok(())
}

/// Fills the verdict: memory and latency after the warm-up, error counters since sampling
/// started.
fn judge(report: &mut SoakReport) {
    let after: Vec<&SoakSample> = report
        .samples
        .iter()
        .filter(|s| s.index > report.warmup_samples)
        .collect();
    let mut failures = Vec::new();
    if let (Some(base), Some(last)) = (
        report
            .samples
            .iter()
            .rfind(|s| s.index == report.warmup_samples && s.rss_mb > 0.0),
        after.last(),
    ) {
        report.rss_baseline_mb = base.rss_mb;
        report.rss_final_mb = last.rss_mb;
        report.rss_growth_pct = (last.rss_mb - base.rss_mb) / base.rss_mb * 100.0;
        if report.rss_growth_pct > report.memory_tolerance_pct {
            failures.push(format!(
                "resident memory grew {:.1}% after the warm-up ({:.0} → {:.0} MB; tolerance {}%)",
                report.rss_growth_pct, base.rss_mb, last.rss_mb, report.memory_tolerance_pct
            ));
        }
    }
    if after.len() >= 2 {
        // Thirds, so one noisy sample on a shared machine does not decide the verdict.
        let k = (after.len() / 3).max(1);
        let median = |xs: Vec<f64>| -> f64 {
            let mut xs = xs;
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        let first = &after[..k];
        let last = &after[after.len() - k..];
        report.p50_first_ms = median(first.iter().map(|s| s.latency_p50_ms).collect());
        report.p50_last_ms = median(last.iter().map(|s| s.latency_p50_ms).collect());
        report.p99_first_ms = median(first.iter().map(|s| s.latency_p99_ms).collect());
        report.p99_last_ms = median(last.iter().map(|s| s.latency_p99_ms).collect());
        for (name, first, last) in [
            ("p50", report.p50_first_ms, report.p50_last_ms),
            ("p99", report.p99_first_ms, report.p99_last_ms),
        ] {
            if last > first * report.latency_factor {
                failures.push(format!(
                    "{name} latency drifted from {first:.0} to {last:.0} ms (more than {}×)",
                    report.latency_factor
                ));
            }
        }
    }
    if let Some(end) = report.samples.last() {
        let (start, end) = (report.errors_at_start, end.errors);
        for (name, from, to) in [
            ("dead letters", start.dead_letters, end.dead_letters),
            ("store errors", start.store_errors, end.store_errors),
            ("actor restarts", start.actor_restarts, end.actor_restarts),
            ("stream read errors", start.read_errors, end.read_errors),
        ] {
            if to > from {
                failures.push(format!("{name} grew from {from} to {to}"));
            }
        }
    }
    report.verdict = if failures.is_empty() {
        "passed".into()
    } else {
        "failed".into()
    };
    report.failures = failures;
}

/// Appends generated posts at `rate` until `stop`, counting them in `sent`; returns the count.
async fn produce(
    redis: Client,
    stream: String,
    rate: f64,
    prefix: String,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let mut generator = crate::sources::demo::generator(&super::posts_only(rate, None, 23, prefix));
    let started = Instant::now();
    let mut batch = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        let have = sent.load(Ordering::Relaxed);
        if due > have {
            let n = (due - have).min(crate::streams::producer::MAX_PIPELINE as u64);
            batch.clear();
            for _ in 0..n {
                batch.push(serde_json::to_string(&generator.next_event())?);
            }
            crate::streams::producer::xadd_events(&redis, &stream, &batch).await?;
            sent.fetch_add(n, Ordering::Relaxed);
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = redis.quit().await;
    Ok(sent.load(Ordering::Relaxed))
}

/// `pulse_analyzer_posts_total` by its `model` label.
#[derive(Debug, Clone, Default)]
struct PostsByModel(Vec<(String, f64)>);

impl PostsByModel {
    fn lexicon(&self) -> f64 {
        self.0
            .iter()
            .filter(|(m, _)| m.starts_with("lexicon"))
            .map(|(_, n)| n)
            .sum()
    }

    fn total(&self) -> f64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// The lexicon's share of the posts analysed since `earlier`, in 0..=1.
    fn lexicon_share_since(&self, earlier: &PostsByModel) -> f64 {
        let total = self.total() - earlier.total();
        if total <= 0.0 {
            return 0.0;
        }
        ((self.lexicon() - earlier.lexicon()) / total).clamp(0.0, 1.0)
    }
}

async fn posts_by_model(address: SocketAddr) -> PostsByModel {
    let text = match reqwest::get(format!("http://{address}/metrics")).await {
        Ok(reply) => reply.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let prefix = format!("{}{{model=\"", names::ANALYZED_POSTS);
    PostsByModel(
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .filter_map(|rest| {
                let (model, tail) = rest.split_once('"')?;
                let count = tail.rsplit_once(' ')?.1.parse().ok()?;
                Some((model.to_string(), count))
            })
            .fold(Vec::new(), |mut acc: Vec<(String, f64)>, (model, count)| {
                match acc.iter_mut().find(|(m, _)| *m == model) {
                    Some((_, n)) => *n += count,
                    None => acc.push((model, count)),
                }
                acc
            }),
    )
}

/// The transformer models that analysed the child's posts, from the `model` label of
/// `pulse_analyzer_posts_total` (None before their first post).
async fn model_of(address: SocketAddr) -> Option<String> {
    let models: Vec<String> = posts_by_model(address)
        .await
        .0
        .into_iter()
        .map(|(m, _)| m)
        .filter(|m| !m.starts_with("lexicon"))
        .collect();
    (!models.is_empty()).then(|| models.join(" + "))
}

/// Writes `soak.md` and `soak.json`; when the soak is over, also `soak.svg` and (when
/// Chromium is there) `soak.png`.
pub fn write_files(report: &SoakReport, out_dir: &Path) -> anyhow::Result<()> {
    output::write_report(out_dir, "soak", report, markdown)?;
    if report.verdict != "running" {
        let title = format!(
            "Soak: pulse serve with {} at {:.0} posts/s for {} min",
            report.model, report.rate, report.minutes
        );
        output::write_charts(out_dir, "soak", &title, &panels(report))?;
    }
    Ok(())
}

/// A line of a chart: its label, and the figure of a sample it draws.
type Line = (&'static str, fn(&SoakSample) -> f64);

/// Memory, latency and throughput against the minutes of the soak.
fn panels(r: &SoakReport) -> [Panel; 3] {
    let line = |(label, f): Line| Series {
        label: label.to_string(),
        points: r
            .samples
            .iter()
            .map(|s| (s.elapsed_secs / 60.0, f(s)))
            .collect(),
    };
    let panel = |title: &str, y_label: &str, lines: [Line; 2]| Panel {
        title: title.to_string(),
        x_label: "minutes".into(),
        y_label: y_label.to_string(),
        log_y: false,
        diagonal: false,
        series: lines.into_iter().map(line).collect(),
        rules: Vec::new(),
    };
    [
        panel(
            "Resident memory",
            "MB",
            [("resident", |s| s.rss_mb), ("peak", |s| s.peak_rss_mb)],
        ),
        panel(
            "Latency, XADD to commit",
            "ms",
            [("p50", |s| s.latency_p50_ms), ("p99", |s| s.latency_p99_ms)],
        ),
        panel(
            "Throughput",
            "posts/s",
            [
                ("offered", |s| s.offered_per_sec),
                ("acknowledged", |s| s.throughput_per_sec),
            ],
        ),
    ]
}

/// The report as Markdown: one row per sample, then the checks.
pub fn markdown(r: &SoakReport) -> String {
    let mut out = format!(
        "Soak of `pulse serve` with the {model} model: {rate:.0} posts/s offered ({how}) for {minutes} min, \
         sampled every {secs} s; the first {warmup} samples are warm-up; the lexicon fallback {fallback}.\n\n\
         | sample | min | offered/s | acked/s | p50 ms | p99 ms | RSS MB | peak RSS MB | backlog | to the lexicon | dead letters | store errors | restarts | read errors | load |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        model = r.model,
        rate = r.rate,
        how = if r.capacity_per_sec > 0.0 {
            format!(
                "{:.0}% of the {:.0} posts/s measured first",
                r.rate / r.capacity_per_sec * 100.0,
                r.capacity_per_sec
            )
        } else {
            "as given".to_string()
        },
        minutes = r.minutes,
        secs = r.sample_secs,
        warmup = r.warmup_samples,
        fallback = if r.fallback {
            format!(
                "on (it took {:.1}% of the posts)",
                r.fallback_share * 100.0
            )
        } else {
            "off".to_string()
        },
    );
    for s in &r.samples {
        out.push_str(&format!(
            "| {}{} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.1}% | {} | {} | {} | {} | {:.1} |\n",
            s.index,
            if s.index <= r.warmup_samples { " (warm-up)" } else { "" },
            s.elapsed_secs / 60.0,
            s.offered_per_sec,
            s.throughput_per_sec,
            s.latency_p50_ms,
            s.latency_p99_ms,
            s.rss_mb,
            s.peak_rss_mb,
            s.backlog,
            s.fallback_share * 100.0,
            s.errors.dead_letters,
            s.errors.store_errors,
            s.errors.actor_restarts,
            s.errors.read_errors,
            s.load_average,
        ));
    }
    out.push_str(&format!(
        "\n| check | measured | limit |\n|---|---|---|\n\
         | resident memory after the warm-up | {:.0} → {:.0} MB ({:+.1}%) | +{}% |\n\
         | p50 latency, first → last third of the samples (median) | {:.0} → {:.0} ms | × {} |\n\
         | p99 latency, first → last third of the samples (median) | {:.0} → {:.0} ms | × {} |\n\
         | error counters (dead letters, store errors, actor restarts, read errors) | {} | no growth |\n\
         | posts stored / sent | {} / {} | all |\n\n\
         **Verdict: {}**{}\n",
        r.rss_baseline_mb,
        r.rss_final_mb,
        r.rss_growth_pct,
        r.memory_tolerance_pct,
        r.p50_first_ms,
        r.p50_last_ms,
        r.latency_factor,
        r.p99_first_ms,
        r.p99_last_ms,
        r.latency_factor,
        if r.failures.iter().any(|f| f.contains("grew from")) {
            "grew"
        } else {
            "flat"
        },
        r.posts_stored,
        r.posts_sent + r.capacity_posts,
        r.verdict,
        if r.failures.is_empty() {
            String::new()
        } else {
            format!(": {}", r.failures.join("; "))
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lexicon_share_counts_only_the_interval_and_every_lexicon_version() {
        let posts = |model: f64, lexicon: f64| {
            PostsByModel(vec![
                ("minilm-tweets@1.0.0-fp32".into(), model),
                ("lexicon-vader@1".into(), lexicon),
            ])
        };
        let earlier = posts(1_000.0, 0.0);
        assert_eq!(earlier.lexicon_share_since(&earlier), 0.0);
        assert_eq!(posts(1_300.0, 100.0).lexicon_share_since(&earlier), 0.25);
        // No posts in the interval, or a restarted child whose counters went back: no share.
        assert_eq!(posts(10.0, 0.0).lexicon_share_since(&earlier), 0.0);
        assert_eq!(
            PostsByModel::default().lexicon_share_since(&PostsByModel::default()),
            0.0
        );
    }

    fn sample(index: usize, rss: f64, p99: f64, dead: f64) -> SoakSample {
        SoakSample {
            index,
            rss_mb: rss,
            latency_p50_ms: p99 / 3.0,
            latency_p99_ms: p99,
            errors: ErrorCounts {
                dead_letters: dead,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn report(samples: Vec<SoakSample>) -> SoakReport {
        SoakReport {
            warmup_samples: 1,
            memory_tolerance_pct: 10.0,
            latency_factor: 2.0,
            samples,
            ..Default::default()
        }
    }

    #[test]
    fn a_flat_run_passes() {
        let mut r = report(vec![
            sample(1, 300.0, 400.0, 0.0),
            sample(2, 310.0, 420.0, 0.0),
            sample(3, 305.0, 390.0, 0.0),
        ]);
        judge(&mut r);
        assert_eq!(r.verdict, "passed", "{:?}", r.failures);
        assert!((r.rss_growth_pct - 1.666).abs() < 0.01);
        assert!(markdown(&r).contains("Verdict: passed"));
        let [memory, latency, _] = panels(&r);
        assert_eq!(memory.series[0].points.len(), 3);
        assert_eq!(latency.series[1].points[2].1, 390.0);
    }

    #[test]
    fn growth_drift_and_errors_fail() {
        let mut r = report(vec![
            sample(1, 300.0, 400.0, 0.0),
            sample(2, 320.0, 400.0, 0.0),
            sample(3, 360.0, 900.0, 2.0),
        ]);
        judge(&mut r);
        assert_eq!(r.verdict, "failed");
        assert_eq!(r.failures.len(), 4, "{:?}", r.failures);
        assert!(r.failures.iter().any(|f| f.starts_with("resident memory")));
        assert!(r.failures.iter().any(|f| f.starts_with("p99")));
        assert!(r.failures.iter().any(|f| f.starts_with("dead letters")));
    }
}
