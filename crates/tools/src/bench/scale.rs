//! `pulse bench --only scale`: 1, 2 and 3 `pulse serve` child processes in one consumer group
//! against the real Redis and PostgreSQL, each offered posts at several rates up to beyond
//! saturation, beside the raw ceilings of the same run. The children run the lexicon
//! analyzer, so what is measured is the pipeline (Redis, the store, acknowledgements and the
//! coordination of several consumers), not the model.
//!
//! Per process count and offered rate: the rate actually offered, the sustained throughput
//! (entries the children acknowledged per second after a warm-up, read from their
//! `/metrics`), and p50/p99 latency from XADD to commit (their
//! `pulse_pipeline_latency_seconds` histograms, summed). Every post offered must be stored
//! once before the next run starts. Results: a Markdown table (printed and written), JSON,
//! and an SVG and PNG chart of throughput and p99 against offered load.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fred::prelude::*;
use serde::Serialize;

use super::output;
use super::plot::{Panel, Rule, Series};
use super::scrape;
use super::websocket::Server;
use super::Ceilings;
use crate::config::Settings;
use crate::telemetry::names;

/// Options of the scale benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Offered rates of the scale runs, in posts per second (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2_000.0, 5_000.0, 10_000.0, 15_000.0, 20_000.0, 30_000.0])]
    pub scale_rates: Vec<f64>,
    /// Numbers of `pulse serve` processes sharing the group (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 3])]
    pub scale_processes: Vec<usize>,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 12.0)]
    pub scale_secs: f64,
    /// Seconds at the start of each run left out of the figures.
    #[arg(long, default_value_t = 3.0)]
    pub scale_warmup_secs: f64,
}

/// One process count at one offered rate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScaleRun {
    pub processes: usize,
    pub target_rate: f64,
    /// Posts sent per second, as the producer achieved it.
    pub offered_per_sec: f64,
    /// Entries acknowledged per second after the warm-up, all processes together.
    pub throughput_per_sec: f64,
    pub latency_samples: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Entries not yet acknowledged when the offering ended (lag plus pending).
    pub backlog_at_end: i64,
    /// Throughput below 95% of the offered rate, or more than a second of backlog.
    pub saturated: bool,
    /// Seconds the backlog took to drain after the offering ended.
    pub drain_secs: f64,
    /// Peak resident memory of the largest child, MB.
    pub max_child_rss_mb: f64,
}

/// Every figure of a scale benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScaleReport {
    pub cores: usize,
    pub analyzer: String,
    pub ceiling_events: u64,
    pub ceilings: Ceilings,
    pub secs: f64,
    pub warmup_secs: f64,
    /// 1-minute load average of the machine when the runs started and ended.
    pub load_average_start: f64,
    pub load_average_end: f64,
    pub runs: Vec<ScaleRun>,
}

impl ScaleReport {
    /// The highest sustained throughput of each process count.
    pub fn peaks(&self) -> Vec<(usize, f64)> {
        let mut counts: Vec<usize> = self.runs.iter().map(|r| r.processes).collect();
        counts.dedup();
        counts
            .into_iter()
            .map(|p| {
                let best = self
                    .runs
                    .iter()
                    .filter(|r| r.processes == p)
                    .map(|r| r.throughput_per_sec)
                    .fold(0.0, f64::max);
                (p, best)
            })
            .collect()
    }
}

/// Runs the ceilings, then every process count at every rate; writes the report files to
/// `--out-dir` (`scale.md`, `scale.json`, `scale.svg`, `scale.png`).
pub async fn run(run: &super::Run, args: &ScaleArgs) -> anyhow::Result<ScaleReport> {
    let (redis, run_id) = (&run.redis, &run.id);
    anyhow::ensure!(
        args.scale_secs > args.scale_warmup_secs,
        "--scale-secs must be longer than --scale-warmup-secs"
    );
    anyhow::ensure!(
        !args.scale_rates.is_empty() && !args.scale_processes.is_empty(),
        "give at least one rate and one process count"
    );
    let mut report = ScaleReport {
        cores: Settings::threads_or_cores(0),
        analyzer: "lexicon".into(),
        ceiling_events: run.events,
        ceilings: super::ceilings(run).await?,
        secs: args.scale_secs,
        warmup_secs: args.scale_warmup_secs,
        load_average_start: super::load_average(),
        load_average_end: 0.0,
        runs: Vec::new(),
    };

    let most = args
        .scale_rates
        .iter()
        .map(|r| (r * args.scale_secs).ceil() as u64)
        .max()
        .unwrap_or(0);
    eprintln!("preparing {most} posts for the scale runs");
    let events = Arc::new(super::generate_posts(most, &format!("scale-{run_id}-")));
    let mut rates = args.scale_rates.clone();
    rates.sort_by(f64::total_cmp);

    for &processes in &args.scale_processes {
        let stream = format!("pulse:bench:{run_id}:scale{processes}");
        let servers = (0..processes)
            .map(|_| {
                Server::start(
                    run,
                    &stream,
                    &[
                        ("PULSE_ALERTS__ENABLED", "false"),
                        ("PULSE_MIGRATE_ON_START", "false"),
                    ],
                )
            })
            .collect::<anyhow::Result<Vec<Server>>>()?;
        let addresses: Vec<SocketAddr> = servers.iter().map(|s| s.address).collect();
        for &rate in &rates {
            let measured = one_run(
                run, &stream, &servers, &addresses, &events, processes, rate, args,
            )
            .await
            .with_context(|| format!("{processes} processes at {rate} posts/s"))?;
            eprintln!(
                "{processes} process(es), {rate:.0}/s offered: {:.0}/s sustained, p50 {:.1} ms, p99 {:.1} ms, backlog {}",
                measured.throughput_per_sec, measured.latency_p50_ms, measured.latency_p99_ms, measured.backlog_at_end
            );
            report.runs.push(measured);
            report.load_average_end = super::load_average();
            write_files(&report, &run.out_dir)?;
        }
        drop(servers);
        let _: i64 = redis.del(&stream).await?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    run: &super::Run,
    stream: &str,
    servers: &[Server],
    addresses: &[SocketAddr],
    events: &Arc<Vec<String>>,
    processes: usize,
    rate: f64,
    args: &ScaleArgs,
) -> anyhow::Result<ScaleRun> {
    let (settings, db_url, redis) = (&run.settings, &run.db_url, &run.redis);
    let n = ((rate * args.scale_secs).ceil() as usize).min(events.len());
    let producer = crate::streams::connect(&settings.redis.url, "bench-producer").await?;
    let offer = tokio::spawn(offer(producer, stream.to_string(), events.clone(), n, rate));

    tokio::time::sleep(Duration::from_secs_f64(args.scale_warmup_secs)).await;
    let (start, t0) = (scrape::read_all(addresses).await?, Instant::now());
    let (sent, offered_secs) = offer.await??;
    let (end, t1) = (scrape::read_all(addresses).await?, Instant::now());

    let mut group = settings.clone();
    group.redis.stream = stream.to_string();
    group.redis.group = "pulse".into();
    let stats = crate::streams::group::group_stats(redis, &group).await?;
    let backlog = stats.lag.unwrap_or(0) + stats.pending;
    let drained = Instant::now();
    super::wait_drained(redis, &group, "the scale run").await?;
    let drain_secs = drained.elapsed().as_secs_f64();
    let stored = super::count_posts(db_url).await?;
    anyhow::ensure!(
        stored == sent as i64,
        "expected {sent} posts stored, found {stored}"
    );
    super::truncate(db_url).await?;

    let acked = end.value(names::ENTRIES_ACKED) - start.value(names::ENTRIES_ACKED);
    let throughput = acked / (t1 - t0).as_secs_f64();
    let offered = sent as f64 / offered_secs;
    let latency = end.latency.since(&start.latency);
    let ms = |q: f64| latency.quantile(q).map_or(0.0, |s| s * 1_000.0);
    Ok(ScaleRun {
        processes,
        target_rate: rate,
        offered_per_sec: offered,
        throughput_per_sec: throughput,
        latency_samples: latency.count() as u64,
        latency_p50_ms: ms(0.50),
        latency_p99_ms: ms(0.99),
        backlog_at_end: backlog,
        saturated: throughput < 0.95 * offered || backlog as f64 > offered,
        drain_secs,
        max_child_rss_mb: servers
            .iter()
            .map(|s| super::peak_rss_mb_in(&format!("/proc/{}/status", s.pid())))
            .fold(0.0, f64::max),
    })
}

/// Sends `events[..n]` at `rate` per second in pipelined chunks, as a paced producer would;
/// returns how many were sent and over how many seconds.
async fn offer(
    redis: Client,
    stream: String,
    events: Arc<Vec<String>>,
    n: usize,
    rate: f64,
) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let due = ((started.elapsed().as_secs_f64() * rate) as usize).min(n);
        if due > sent {
            for chunk in events[sent..due].chunks(crate::streams::producer::MAX_PIPELINE) {
                crate::streams::producer::xadd_events(&redis, &stream, chunk).await?;
            }
            sent = due;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = redis.quit().await;
    Ok((sent, secs))
}

/// Writes `scale.md`, `scale.json`, `scale.svg` and (when Chromium is there) `scale.png`.
pub fn write_files(report: &ScaleReport, out_dir: &Path) -> anyhow::Result<()> {
    output::write_report(out_dir, "scale", report, markdown)?;
    let title = format!(
        "Pulse pipeline, 1–3 processes in one group ({} cores, lexicon analyzer)",
        report.cores
    );
    output::write_charts(out_dir, "scale", &title, &panels(report))
}

fn panels(report: &ScaleReport) -> [Panel; 2] {
    let mut counts: Vec<usize> = report.runs.iter().map(|r| r.processes).collect();
    counts.dedup();
    let series = |f: fn(&ScaleRun) -> f64| -> Vec<Series> {
        counts
            .iter()
            .map(|&p| Series {
                label: format!("{p} process{}", if p == 1 { "" } else { "es" }),
                points: report
                    .runs
                    .iter()
                    .filter(|r| r.processes == p)
                    .map(|r| (r.offered_per_sec, f(r)))
                    .collect(),
            })
            .collect()
    };
    let c = &report.ceilings;
    [
        Panel {
            title: "Sustained throughput".into(),
            x_label: "offered load, posts/s".into(),
            y_label: "acknowledged, posts/s".into(),
            log_y: false,
            diagonal: true,
            series: series(|r| r.throughput_per_sec),
            // The store's physical limit, from outside Pulse's code: a line drawn at Pulse's own
            // statement would move down with it and hide a slower store.
            rules: vec![Rule {
                label: format!("COPY ceiling {:.0} rows/s", c.copy_rows_per_sec),
                y: c.copy_rows_per_sec,
            }],
        },
        Panel {
            title: "p99 latency, XADD to commit".into(),
            x_label: "offered load, posts/s".into(),
            y_label: "p99, ms (log scale)".into(),
            log_y: true,
            diagonal: false,
            series: series(|r| r.latency_p99_ms),
            rules: Vec::new(),
        },
    ]
}

/// The report as Markdown: the ceilings, then one row per process count and rate.
pub fn markdown(r: &ScaleReport) -> String {
    let c = &r.ceilings;
    let mut out = format!(
        "| ceiling ({events} posts, {cores} cores) | result |\n|---|---|\n\
         | raw XADD (pipelined 500) | {xadd:.0} /s |\n\
         | raw XREADGROUP + XACK (500 per read) | {read:.0} /s |\n\
         | PostgreSQL `COPY` of the same posts into a table of the posts table's shape | {copy:.0} rows/s |\n\
         | raw analyzer (lexicon) | {analyzer:.0} posts/s |\n\
         | (not a ceiling) Pulse's batch write alone, 500 rows, 4 writers | {insert:.0} rows/s |\n\n\
         | processes | offered posts/s | sustained posts/s | p50 ms | p99 ms | backlog at end | saturated |\n\
         |---|---|---|---|---|---|---|\n",
        events = r.ceiling_events,
        cores = r.cores,
        xadd = c.xadd_per_sec,
        read = c.xreadgroup_xack_per_sec,
        insert = c.insert_rows_per_sec,
        copy = c.copy_rows_per_sec,
        analyzer = c.analyzer_posts_per_sec,
    );
    for run in &r.runs {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {} | {} |\n",
            run.processes,
            run.offered_per_sec,
            run.throughput_per_sec,
            run.latency_p50_ms,
            run.latency_p99_ms,
            run.backlog_at_end,
            if run.saturated { "yes" } else { "no" },
        ));
    }
    out.push('\n');
    let peaks: Vec<String> = r
        .peaks()
        .iter()
        .map(|(p, best)| format!("{p}: {best:.0}/s"))
        .collect();
    out.push_str(&format!(
        "Highest sustained throughput by process count: {} ({} s per rate, the first {} s left out; \
         load average {:.1} at the start, {:.1} at the end).\n",
        peaks.join(", "),
        r.secs,
        r.warmup_secs,
        r.load_average_start,
        r.load_average_end
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_and_markdown_list_every_process_count() {
        let run = |processes, throughput| ScaleRun {
            processes,
            target_rate: 1_000.0,
            offered_per_sec: 1_000.0,
            throughput_per_sec: throughput,
            ..Default::default()
        };
        let report = ScaleReport {
            runs: vec![run(1, 900.0), run(1, 1_000.0), run(2, 800.0)],
            ..Default::default()
        };
        assert_eq!(report.peaks(), vec![(1, 1_000.0), (2, 800.0)]);
        let md = markdown(&report);
        assert_eq!(md.matches("\n| 1 |").count(), 2);
        assert!(md.contains("1: 1000/s, 2: 800/s"));
        let [throughput, latency] = panels(&report);
        assert_eq!(throughput.series.len(), 2);
        assert!(latency.log_y);
    }
}
