//! `pulse bench --only isolation`: whether the API can starve the pipeline. Over a database
//! seeded with `--isolation-posts` posts spread across the last 24 hours (with engagements and
//! as many finished cascades), Pulse ingests `--isolation-rate` posts/s for
//! `--isolation-secs`, once alone and once while `--isolation-clients` clients call the most
//! expensive API queries back to back. It reports the ingest latency of both runs and their
//! ratio, pipeline errors, and what the API answered (status counts, latency, and answers
//! slower than the longest a request may legitimately wait, counted as hung).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use fred::prelude::*;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::{analyze_all, generate_posts, start_recorded};
use crate::actors::messages::{AnalyzedBatch, StreamedEngagement};
use crate::config::Settings;
use crate::models::{Engagement, EngagementKind};
use crate::telemetry::names;

/// Options of the isolation part.
#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Posts stored before the runs, spread over the last 24 hours.
    #[arg(long, default_value_t = 300_000)]
    pub isolation_posts: u64,
    /// Posts per second offered to the pipeline in both runs.
    #[arg(long, default_value_t = 2_000.0)]
    pub isolation_rate: f64,
    /// Length of each run, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub isolation_secs: f64,
    /// Concurrent API clients in the loaded run.
    #[arg(long, default_value_t = 32)]
    pub isolation_clients: usize,
    /// Pairs of runs (alone, then loaded); each side's latencies are pooled over the pairs, so
    /// one noisy run moves the figures less.
    #[arg(long, default_value_t = 2)]
    pub isolation_rounds: usize,
}

/// Ingest latency of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestRun {
    pub offered_per_sec: f64,
    pub posts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Store errors, dead letters and read errors during the run.
    pub pipeline_errors: u64,
}

/// What the API answered to one query in the loaded run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueryOutcome {
    pub query: String,
    pub requests: u64,
    /// Answers by HTTP status (`0` for no answer at all).
    pub statuses: BTreeMap<u16, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers that took longer than a request may legitimately wait.
    pub hung: u64,
    /// Error answers that were not in the API's error shape.
    pub shapeless_errors: u64,
}

/// Every figure of the isolation part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IsolationReport {
    /// When and where it ran, and the API's database settings in force.
    pub date: String,
    pub machine: String,
    pub api_pool_size: usize,
    pub api_busy_share: f64,
    pub api_statement_timeout_ms: u64,
    pub api_wait_ms: u64,
    pub seeded_posts: u64,
    pub seeded_finished_cascades: u64,
    pub clients: usize,
    /// Runs of each kind whose latencies are pooled.
    pub rounds: usize,
    pub alone: IngestRun,
    pub with_api_load: IngestRun,
    /// p99 with the API load over p99 alone.
    pub p99_ratio: f64,
    pub api_requests: u64,
    pub api_requests_per_sec: f64,
    pub queries: Vec<QueryOutcome>,
    /// Seconds after which an answer counts as hung.
    pub hung_after_secs: f64,
}

/// The queries the clients cycle through: the filtered and long-window ones that read the
/// most rows, and the largest forecast.
fn queries() -> Vec<(&'static str, &'static str, Option<serde_json::Value>)> {
    let score = serde_json::json!({
        "post": {"platform": "twitter", "created_at": Utc::now().to_rfc3339(), "author_followers": 5000},
        "engagements": [
            {"kind": "share", "at": Utc::now().to_rfc3339()},
            {"kind": "like", "at": Utc::now().to_rfc3339()}
        ]
    });
    // The largest forecast request: 64 drafts of 8 products, each text analysed and each
    // product's percentile read among the platform's finished cascades.
    let drafts: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            serde_json::json!({
                "text": format!("Draft {i}: the new pulse-buds ship today, and they are lovely #launch"),
                "platform": "twitter",
                "author": {"id": format!("author-{}", i % 16), "followers": 1000 + i},
                "product": format!("product-{}", i % 8)
            })
        })
        .collect();
    vec![
        (
            "GET",
            "/api/v1/metrics/geo?window=24h&sentiment=negative",
            None,
        ),
        (
            "GET",
            "/api/v1/metrics/overall?window=24h&platform=twitter",
            None,
        ),
        (
            "GET",
            "/api/v1/metrics/products?window=24h&channel=support",
            None,
        ),
        (
            "GET",
            "/api/v1/metrics/platforms?window=24h&country=FR",
            None,
        ),
        ("GET", "/api/v1/posts?city=Nowhere&limit=500", None),
        (
            "GET",
            "/api/v1/posts?sentiment=negative&channel=news&limit=500",
            None,
        ),
        ("GET", "/api/v1/trending/terms?window=24h&limit=100", None),
        ("GET", "/api/v1/trending/posts?limit=100", None),
        ("POST", "/api/v1/score", Some(score)),
        (
            "POST",
            "/api/v1/forecast",
            Some(serde_json::json!({ "posts": drafts })),
        ),
    ]
}

/// Runs the part against the run's database (migrated and empty).
pub async fn run(run: &super::Run, args: &IsolationArgs) -> anyhow::Result<IsolationReport> {
    let db_url = &run.db_url;
    let mut settings = run.lexicon.clone();
    settings.limits.rate_limits = false;
    settings.alerts.enabled = false;
    let mut report = IsolationReport {
        date: Utc::now().format("%Y-%m-%d").to_string(),
        machine: super::machine_description(),
        api_pool_size: crate::db::api_pool_size(&settings.database),
        api_busy_share: settings.database.api_busy_share,
        api_statement_timeout_ms: settings.database.api_statement_timeout_ms,
        api_wait_ms: settings.database.api_wait_ms,
        clients: args.isolation_clients,
        rounds: args.isolation_rounds.max(1),
        ..Default::default()
    };
    eprintln!("isolation: seeding {} posts", args.isolation_posts);
    report.seeded_posts = seed_posts(&settings, db_url, &run.id, args.isolation_posts).await?;
    report.seeded_finished_cascades = seed_cascades(db_url, args.isolation_posts).await?;
    settle(db_url).await?;

    let (mut alone, mut loaded) = (Measured::new(), Measured::new());
    for round in 1..=args.isolation_rounds.max(1) {
        eprintln!("isolation: round {round}, ingest alone");
        let measured = ingest_run(run, &settings, &format!("alone-{round}"), args, 0).await?;
        alone.add(measured);
        eprintln!(
            "isolation: round {round}, with {} API clients",
            args.isolation_clients
        );
        let clients = args.isolation_clients;
        let measured =
            ingest_run(run, &settings, &format!("loaded-{round}"), args, clients).await?;
        loaded.add(measured);
    }
    report.alone = alone.summary();
    report.with_api_load = loaded.summary();
    report.p99_ratio = report.with_api_load.p99_ms / report.alone.p99_ms.max(1.0);
    report.api_requests = loaded.tallies.iter().map(|t| t.requests).sum();
    report.api_requests_per_sec = report.api_requests as f64 / loaded.load_secs.max(1e-9);
    report.queries = outcomes(loaded.tallies);
    report.hung_after_secs = hung_after(&settings).as_secs_f64();
    Ok(report)
}

/// The longest a request may legitimately take: waiting for a connection, then running to
/// the statement timeout, plus a margin for the rest of the request.
fn hung_after(settings: &Settings) -> Duration {
    let wait = Duration::from_millis(settings.database.api_wait_ms);
    let statement = Duration::from_millis(settings.database.api_statement_timeout_ms);
    wait + statement + Duration::from_secs(5)
}

/// Stores `n` generated posts with created times spread evenly over the last 24 hours, and an
/// engagement for every third one, through the store's own statement.
async fn seed_posts(
    settings: &Settings,
    db_url: &str,
    run_id: &str,
    n: u64,
) -> anyhow::Result<u64> {
    let events = generate_posts(n, &format!("iso-{run_id}-"));
    let (mut posts, _) = analyze_all(settings, &events)?;
    drop(events);
    let now = Utc::now();
    let step = 86_400.0 / n.max(1) as f64;
    for (i, p) in posts.iter_mut().enumerate() {
        p.post.created_at = now - TimeDelta::milliseconds((i as f64 * step * 1000.0) as i64);
    }
    let pool = crate::db::pool(db_url, 4)?;
    let admission =
        crate::db::rollup_keys::KeyAdmission::new(settings.metrics.max_keys_per_dimension);
    let stored = posts.len() as u64;
    let kinds = [
        EngagementKind::Like,
        EngagementKind::Share,
        EngagementKind::View,
    ];
    for (c, chunk) in posts.chunks(2_000).enumerate() {
        let engagements = chunk
            .iter()
            .step_by(3)
            .enumerate()
            .map(|(i, p)| StreamedEngagement {
                entry_id: format!("{}-{c}-{i}", p.post.created_at.timestamp_millis()),
                producer: p.producer.clone(),
                engagement: Engagement {
                    id: Some(format!("seed-{}", p.post.id)),
                    post_id: p.post.id.clone(),
                    kind: kinds[i % kinds.len()],
                    at: p.post.created_at + TimeDelta::seconds(30),
                    actor_followers: Some(100),
                    via: None,
                    count: Some(1 + (i % 5) as u32),
                },
            })
            .collect();
        seed_batch(&pool, settings, &admission, chunk, engagements).await?;
    }
    Ok(stored)
}

/// Adds `n` finished cascades (what the viral thresholds are learned from).
/// Stores `posts` and `engagements` through the store's own batch write, as seeded data.
pub(super) async fn seed_batch(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
    admission: &crate::db::rollup_keys::KeyAdmission,
    posts: &[crate::models::analysis::AnalyzedPost],
    engagements: Vec<StreamedEngagement>,
) -> anyhow::Result<()> {
    let batch = AnalyzedBatch {
        posts: posts.to_vec(),
        engagements,
        deletions: Vec::new(),
        rejected: Vec::new(),
    };
    crate::actors::store::write(
        pool,
        &crate::db::batch::WriteOptions {
            stream: "seed",
            high_churn: settings.metrics.high_churn_threshold,
            admission,
            trust: &Default::default(),
        },
        &batch,
    )
    .await
    .map(|_| ())
    .map_err(|e| anyhow::anyhow!("seeding posts: {e}"))
}

async fn seed_cascades(db_url: &str, n: u64) -> anyhow::Result<u64> {
    let client = super::connect(db_url).await?;
    let n = i64::try_from(n)?;
    let inserted = client
        .execute(
            "INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, \
                 last_activity_at, status, shares, model_name, model_version, params_hash) \
             SELECT 'seed-cascade-' || g, \
                 (ARRAY['twitter','reddit','instagram','tiktok','youtube','bluesky','mastodon','other'])[1 + g % 8], \
                 now() - make_interval(secs => g % 86400), now() - make_interval(secs => g % 86400), \
                 now() - make_interval(secs => g % 86400), 'finished', (g * 7919) % 1000, 'seed', '1', 'seed' \
             FROM generate_series(1, $1::int8) AS g",
            &[&n],
        )
        .await
        .context("seeding finished cascades")?;
    Ok(inserted)
}

/// Vacuums, analyses and checkpoints the seeded database, so neither run pays for the
/// seeding's aftermath (autovacuum, a checkpoint) and the planner knows the tables.
async fn settle(db_url: &str) -> anyhow::Result<()> {
    let client = super::connect(db_url).await?;
    for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
        client
            .batch_execute(statement)
            .await
            .context("settling the seeded database")?;
    }
    Ok(())
}

/// What runs of one kind measured, pooled.
struct Measured {
    latency_ms: Histogram<u64>,
    offered: Vec<f64>,
    pipeline_errors: f64,
    tallies: Vec<Tally>,
    load_secs: f64,
}

impl Measured {
    fn new() -> Measured {
        Measured {
            latency_ms: Histogram::new(3).expect("histogram"),
            offered: Vec::new(),
            pipeline_errors: 0.0,
            tallies: queries().iter().map(|_| Tally::new()).collect(),
            load_secs: 0.0,
        }
    }

    fn add(&mut self, other: Measured) {
        let _ = self.latency_ms.add(&other.latency_ms);
        self.offered.extend(other.offered);
        self.pipeline_errors += other.pipeline_errors;
        for (mine, theirs) in self.tallies.iter_mut().zip(other.tallies) {
            mine.add(theirs);
        }
        self.load_secs += other.load_secs;
    }

    fn summary(&self) -> IngestRun {
        let h = &self.latency_ms;
        IngestRun {
            offered_per_sec: self.offered.iter().sum::<f64>() / self.offered.len().max(1) as f64,
            posts: h.len(),
            p50_ms: h.value_at_quantile(0.50) as f64,
            p99_ms: h.value_at_quantile(0.99) as f64,
            max_ms: h.max() as f64,
            pipeline_errors: self.pipeline_errors.max(0.0) as u64,
        }
    }
}

/// One ingest run on the run's services with `settings`, with `clients` API clients calling
/// the expensive queries meanwhile.
async fn ingest_run(
    run: &super::Run,
    settings: &Settings,
    name: &str,
    args: &IsolationArgs,
    clients: usize,
) -> anyhow::Result<Measured> {
    let (db_url, redis, run_id) = (&run.db_url, &run.redis, &run.id);
    let stream = format!("pulse:bench:{run_id}:isolation-{name}");
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let app = start_recorded(settings, db_url, &stream, &histogram).await?;
    let base = format!("http://{}", app.address());
    let errors_before = pipeline_errors(&base).await;
    let stop = Arc::new(AtomicBool::new(false));
    let hung = hung_after(settings);
    let started = Instant::now();
    // The clients run on a thread and runtime of their own, as they would on other machines:
    // on the benchmark's own runtime they would share a thread with the pipeline's actors.
    let load = {
        let (base, stop) = (base.clone(), stop.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime")
                .block_on(async move {
                    let tasks: Vec<_> = (0..clients)
                        .map(|c| tokio::spawn(client_loop(base.clone(), c, stop.clone(), hung)))
                        .collect();
                    let mut per_client = Vec::new();
                    for task in tasks {
                        per_client.extend(task.await);
                    }
                    per_client
                })
        })
    };
    let sent = super::produce_beside(
        &settings.redis.url,
        &stream,
        super::posts_only(
            args.isolation_rate,
            Some(Duration::from_secs_f64(args.isolation_secs)),
            13,
            format!("iso-{name}-{run_id}-"),
        ),
    )
    .await?;
    stop.store(true, Ordering::Release);
    let per_client = tokio::task::spawn_blocking(move || load.join())
        .await?
        .map_err(|_| anyhow::anyhow!("an API client panicked"))?;
    let load_secs = if clients > 0 {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    super::wait_recorded(&histogram, sent.posts, Duration::from_secs(120)).await;
    let errors = pipeline_errors(&base).await - errors_before;
    app.shutdown().await;
    let _: i64 = redis
        .del(vec![stream.clone(), format!("{stream}:dead")])
        .await?;
    let mut measured = Measured::new();
    for client in per_client {
        for (mine, theirs) in measured.tallies.iter_mut().zip(client) {
            mine.add(theirs);
        }
    }
    let _ = measured
        .latency_ms
        .add(&*histogram.lock().unwrap_or_else(|p| p.into_inner()));
    measured.offered.push(sent.posts as f64 / sent.seconds);
    measured.pipeline_errors = errors;
    measured.load_secs = load_secs;
    Ok(measured)
}

/// Store errors, dead letters and read errors so far, from the process's own metrics.
async fn pipeline_errors(base: &str) -> f64 {
    let text = match reqwest::get(format!("{base}/metrics")).await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => return 0.0,
    };
    let reading = super::scrape::parse(&text);
    [names::STORE_ERRORS, names::DEAD_LETTERS, names::READ_ERRORS]
        .iter()
        .map(|name| reading.value(name))
        .sum()
}

/// What one query got, per client and merged.
struct Tally {
    requests: u64,
    statuses: BTreeMap<u16, u64>,
    latency_ms: Histogram<u64>,
    hung: u64,
    shapeless: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            requests: 0,
            statuses: BTreeMap::new(),
            latency_ms: Histogram::new(3).expect("histogram"),
            hung: 0,
            shapeless: 0,
        }
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        let _ = self.latency_ms.add(&other.latency_ms);
        self.hung += other.hung;
        self.shapeless += other.shapeless;
    }
}

async fn client_loop(
    base: String,
    offset: usize,
    stop: Arc<AtomicBool>,
    hung: Duration,
) -> Vec<Tally> {
    let queries = queries();
    let http = reqwest::Client::builder()
        .timeout(hung * 4)
        .build()
        .expect("HTTP client builds");
    let mut tally: Vec<Tally> = queries.iter().map(|_| Tally::new()).collect();
    let mut i = offset;
    while !stop.load(Ordering::Acquire) {
        let q = i % queries.len();
        i += 1;
        let (method, path, body) = &queries[q];
        let mut req = http.request(method.parse().expect("method"), format!("{base}{path}"));
        if let Some(body) = body {
            req = req.json(body);
        }
        let started = Instant::now();
        let (status, shaped) = match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                (status, status < 400 || body["error"]["code"].is_string())
            }
            Err(_) => (0, false),
        };
        let took = started.elapsed();
        let t = &mut tally[q];
        t.requests += 1;
        *t.statuses.entry(status).or_default() += 1;
        let _ = t.latency_ms.record(took.as_millis() as u64);
        t.hung += u64::from(took > hung);
        t.shapeless += u64::from(!shaped);
    }
    tally
}

fn outcomes(tallies: Vec<Tally>) -> Vec<QueryOutcome> {
    queries()
        .iter()
        .zip(tallies)
        .map(|((method, path, _), t)| QueryOutcome {
            query: format!("{method} {path}"),
            requests: t.requests,
            statuses: t.statuses,
            p50_ms: t.latency_ms.value_at_quantile(0.5) as f64,
            p99_ms: t.latency_ms.value_at_quantile(0.99) as f64,
            max_ms: t.latency_ms.max() as f64,
            hung: t.hung,
            shapeless_errors: t.shapeless,
        })
        .collect()
}

/// The part's Markdown table.
pub fn markdown(r: &IsolationReport) -> String {
    let mut out = format!(
        "### API isolation: {} posts and {} finished cascades stored, {} API clients, {} runs of each kind\n\n\
         {} on {}. API pool: {} connection(s), busy share {}, statement timeout {} ms, wait {} ms \
         (`pulse bench --only isolation`).\n\n\
         | run | offered posts/s | posts | p50 ms | p99 ms | max ms | pipeline errors |\n\
         |---|---|---|---|---|---|---|\n",
        r.seeded_posts,
        r.seeded_finished_cascades,
        r.clients,
        r.rounds,
        r.date,
        r.machine,
        r.api_pool_size,
        r.api_busy_share,
        r.api_statement_timeout_ms,
        r.api_wait_ms
    );
    for (name, run) in [("alone", &r.alone), ("with API load", &r.with_api_load)] {
        out.push_str(&format!(
            "| {name} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {} |\n",
            run.offered_per_sec, run.posts, run.p50_ms, run.p99_ms, run.max_ms, run.pipeline_errors
        ));
    }
    out.push_str(&format!(
        "\np99 with the API load / alone: **{:.2}x** (target: at most 2x). API: {} requests \
         ({:.0}/s); an answer slower than {:.0} s counts as hung.\n\n\
         | query | requests | statuses | p50 ms | p99 ms | max ms | hung | not in the error shape |\n\
         |---|---|---|---|---|---|---|---|\n",
        r.p99_ratio, r.api_requests, r.api_requests_per_sec, r.hung_after_secs
    ));
    for q in &r.queries {
        let statuses: Vec<String> = q
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            q.query,
            q.requests,
            statuses.join(", "),
            q.p50_ms,
            q.p99_ms,
            q.max_ms,
            q.hung,
            q.shapeless_errors
        ));
    }
    out
}

/// Writes `isolation.md` and `isolation.json` to `out_dir`.
pub fn write_files(report: &IsolationReport, out_dir: &std::path::Path) -> anyhow::Result<()> {
    super::output::write_report(out_dir, "isolation", report, markdown)
}
