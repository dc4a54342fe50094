//! `pulse bench`: in one run against the real services, (a) this machine's ceilings, each from
//! outside Pulse's code — raw XADD, raw XREADGROUP+XACK, PostgreSQL's `COPY` of the same posts
//! into a table of the posts table's shape, raw analyzer throughput — and Pulse's batch write
//! beside them; (b) Pulse end to end: events/s from XADD to committed and acknowledged, and
//! latency percentiles at a fixed offered rate; (c) Pulse's batch write and end to end as
//! fractions of the `COPY` ceiling, and peak resident memory; (d) the
//! WebSocket layer (see [`websocket`]). Two parts run only when named with `--only`: several
//! processes in one group ([`scale`]) and a long run with the model ([`soak`]).

pub mod alerts;
mod ceilings;
mod copy_ceiling;
pub mod digests;
pub mod hostile;
pub mod isolation;
pub mod model;
mod output;
mod plot;
pub mod refit;
pub mod scale;
mod scrape;
pub mod search;
pub mod soak;
pub mod sources;
pub mod stories;
pub mod topics;
pub mod websocket;

pub use self::ceilings::Ceilings;
use self::ceilings::{analyze_all, ceilings};
pub(crate) use self::ceilings::{generate_posts, raw_xadd};
pub(crate) use crate::machine::{
    load_average, machine_description, peak_rss_mb, peak_rss_mb_in, rss_mb_of,
};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler};
use anyhow::Context as _;
use fred::prelude::*;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::actors::messages::Committed;
use crate::analysis;
use crate::app::{Application, ServeOptions};
use crate::config::Settings;
use crate::sources::demo::{self as producer, ProduceOptions};

/// Options of `pulse bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Posts used for each ceiling and for the end-to-end throughput run.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Offered rate of the latency run, in posts per second.
    #[arg(long, default_value_t = 2_000.0)]
    pub latency_rate: f64,
    /// Length of the latency run, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub latency_secs: f64,
    /// Write the results as JSON to this file as well.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// A JSON file an earlier run wrote (`--json`, e.g. one of `docs/bench/pipeline-*.json`):
    /// print how each fraction of a ceiling changed since, so a drop shows as a drop whatever
    /// the two machines.
    #[arg(long)]
    pub compare: Option<std::path::PathBuf>,
    /// Run only one part (`scale` and `soak` run only when named here).
    #[arg(long, value_enum)]
    pub only: Option<Part>,
    /// Keep the run's database (its name is printed) to look into its figures afterwards.
    #[arg(long)]
    pub keep_database: bool,
    /// Where `scale`, `soak` and `isolation` write their tables, JSON and charts.
    #[arg(long, default_value = "docs/bench")]
    pub out_dir: std::path::PathBuf,
    #[command(flatten)]
    pub ws: websocket::WsBenchArgs,
    #[command(flatten)]
    pub model: model::ModelBenchArgs,
    #[command(flatten)]
    pub alerts: alerts::AlertBenchArgs,
    #[command(flatten)]
    pub scale: scale::ScaleArgs,
    #[command(flatten)]
    pub soak: soak::SoakArgs,
    #[command(flatten)]
    pub isolation: isolation::IsolationArgs,
    #[command(flatten)]
    pub sources: sources::SourcesBenchArgs,
    #[command(flatten)]
    pub hostile: hostile::HostileArgs,
    #[command(flatten)]
    pub stories: stories::StoriesBenchArgs,
    #[command(flatten)]
    pub refit: refit::RefitBenchArgs,
    #[command(flatten)]
    pub digests: digests::DigestBenchArgs,
    #[command(flatten)]
    pub topics: topics::TopicsBenchArgs,
    #[command(flatten)]
    pub search: search::SearchBenchArgs,
}

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Ceilings, end-to-end throughput and latency of the pipeline (lexicon backend).
    Pipeline,
    /// The transformer model: raw ONNX Runtime ceiling, pipeline throughput, memory.
    Model,
    /// WebSocket latency, fan-out and memory.
    Websocket,
    /// Time from a negativity spike to its WebSocket alert under load.
    Alerts,
    /// 1, 2 and 3 `pulse serve` processes in one group at several offered rates (lexicon).
    Scale,
    /// A `pulse serve` child with the model at half its capacity for `--minutes`.
    Soak,
    /// Ingest latency with and without clients hammering the most expensive API queries.
    Isolation,
    /// The Bluesky source alone and feeding `pulse serve`, and `pulse import` of a large file.
    Sources,
    /// A `pulse serve` child with authentication on, under each attack of the last outside
    /// probe in turn, beside legitimate traffic.
    Hostile,
    /// Story detection per post beside the analysis of the post, and its memory over a long
    /// stream.
    Stories,
    /// Refitting the reach forecast on a platform's 10,000 most recent finished cascades.
    Refit,
    /// A weekly digest over a week of stored posts, of the whole stream and of a topic.
    Digests,
    /// Matching posts against 0 to 10,000 topics, the pipeline with topics, and re-tagging
    /// stored posts beside the pipeline.
    Topics,
    /// Searches and an export through the API over a seeded store.
    Search,
}

/// Every figure of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    pub events: u64,
    pub cores: usize,
    pub xadd_per_sec: f64,
    pub xreadgroup_xack_per_sec: f64,
    pub insert_rows_per_sec: f64,
    pub analyzer_posts_per_sec: f64,
    /// PostgreSQL's `COPY` of the same posts into a table of the posts table's shape.
    pub copy_rows_per_sec: f64,
    /// The slowest of the ceilings from outside Pulse's code (XADD, XREADGROUP+XACK, `COPY`,
    /// the analyzer).
    pub slowest_ceiling: String,
    pub end_to_end_per_sec: f64,
    /// Events a second end to end when the generator's engagements come with its posts (each
    /// engagement batch takes its posts' locks against deletions).
    pub end_to_end_engaged_per_sec: f64,
    /// Of those events, the share that were engagements.
    pub engaged_share: f64,
    pub fraction_of_slowest_ceiling: f64,
    /// Pulse's batch write (posts and rollups) as a fraction of the `COPY` ceiling.
    pub insert_fraction_of_copy: f64,
    /// Pulse end to end as a fraction of the `COPY` ceiling.
    pub end_to_end_fraction_of_copy: f64,
    pub latency_rate: f64,
    pub latency_samples: u64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub peak_rss_mb: f64,
    pub model: Option<model::ModelReport>,
    pub websocket: Option<websocket::WsReport>,
    pub alerts: Option<alerts::AlertReport>,
    pub scale: Option<scale::ScaleReport>,
    pub soak: Option<soak::SoakReport>,
    pub isolation: Option<isolation::IsolationReport>,
    pub sources: Option<sources::SourcesReport>,
    pub hostile: Option<hostile::HostileReport>,
    pub stories: Option<stories::StoriesReport>,
    pub refit: Option<refit::RefitReport>,
    pub digests: Option<digests::DigestReport>,
    pub topics: Option<topics::TopicsReport>,
    pub search: Option<search::SearchReport>,
}

/// What every part of one run works against: the services, the run's own database and the
/// options all parts share.
pub struct Run {
    /// The settings as loaded, their analyzer included.
    pub settings: Settings,
    /// `settings` with the lexicon analyzer: the plumbing's own figures, whatever the model.
    pub lexicon: Settings,
    /// The run's own database, migrated.
    pub db_url: String,
    pub redis: Client,
    /// Eight hex digits that name the run's database, streams and post ids.
    pub id: String,
    /// `--events`: posts for each ceiling and each end-to-end run.
    pub events: u64,
    /// `--out-dir`.
    pub out_dir: std::path::PathBuf,
}

impl Run {
    pub fn redis_url(&self) -> &str {
        &self.settings.redis.url
    }
}

/// Runs every measurement and prints a Markdown table (and JSON when asked).
pub async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let database = format!("pulse_bench_{id}");
    let admin_url = settings.database.url.clone();
    create_database(&admin_url, &database).await?;
    let db_url = replace_database(&admin_url, &database);
    crate::db::migrate(&db_url).await?;
    let redis = crate::streams::connect(&settings.redis.url, "bench").await?;
    let mut report = BenchReport {
        events: args.events,
        cores: Settings::threads_or_cores(0),
        latency_rate: args.latency_rate,
        ..Default::default()
    };
    let runs = |part: Part| {
        args.only == Some(part)
            || (args.only.is_none()
                && !matches!(
                    part,
                    Part::Scale
                        | Part::Soak
                        | Part::Isolation
                        | Part::Sources
                        | Part::Hostile
                        | Part::Stories
                        | Part::Refit
                        | Part::Digests
                        | Part::Topics
                        | Part::Search
                ))
    };
    let mut lexicon = settings.clone();
    lexicon.analyzer.backend = analysis::Backend::Lexicon;
    let run = Run {
        settings,
        lexicon,
        db_url,
        redis,
        id,
        events: args.events,
        out_dir: args.out_dir.clone(),
    };
    let result = async {
        if runs(Part::Pipeline) {
            pipeline(&run, &args, &mut report).await?;
        }
        if runs(Part::Model) {
            eprintln!("model runs");
            report.model = Some(model::run(&run, &args.model).await?);
        }
        if runs(Part::Websocket) {
            eprintln!("websocket runs");
            report.websocket = Some(websocket::run(&run, &args.ws).await?);
        }
        if runs(Part::Alerts) {
            eprintln!("alert runs");
            report.alerts = Some(alerts::run(&run, &args.alerts).await?);
        }
        if runs(Part::Scale) {
            eprintln!("scale runs");
            report.scale = Some(scale::run(&run, &args.scale).await?);
        }
        if runs(Part::Soak) {
            eprintln!("soak");
            report.soak = Some(soak::run(&run, &args.soak).await?);
        }
        if runs(Part::Isolation) {
            eprintln!("isolation runs");
            let isolation = isolation::run(&run, &args.isolation).await?;
            isolation::write_files(&isolation, &run.out_dir)?;
            report.isolation = Some(isolation);
        }
        if runs(Part::Sources) {
            eprintln!("source runs");
            report.sources = Some(sources::run(&run, &args.sources).await?);
        }
        if runs(Part::Stories) {
            eprintln!("story runs");
            report.stories = Some(stories::run(&args.stories)?);
        }
        if runs(Part::Refit) {
            eprintln!("refit runs");
            report.refit = Some(refit::run(&run, &args.refit).await?);
        }
        if runs(Part::Digests) {
            eprintln!("digest runs");
            report.digests = Some(digests::run(&run, &args.digests).await?);
        }
        if runs(Part::Topics) {
            eprintln!("topic runs");
            report.topics = Some(topics::run(&run, &args.topics).await?);
        }
        if runs(Part::Search) {
            eprintln!("search runs");
            report.search = Some(search::run(&run, &args.search).await?);
        }
        if runs(Part::Hostile) {
            eprintln!("hostile runs");
            report.hostile = Some(hostile::run(&run, &args.hostile).await?);
        }
        anyhow::Ok(())
    }
    .await;
    if args.keep_database {
        eprintln!("bench: the database {database} is kept");
    } else {
        drop_database(&admin_url, &database).await;
    }
    result?;

    if runs(Part::Pipeline) {
        println!("{}", markdown(&report));
    }
    print_markdown(&report.model, model::markdown);
    print_markdown(&report.websocket, websocket::markdown);
    print_markdown(&report.alerts, alerts::markdown);
    if print_markdown(&report.scale, scale::markdown) {
        eprintln!("scale results written to {}", args.out_dir.display());
    }
    if print_markdown(&report.soak, soak::markdown) {
        eprintln!("soak results written to {}", args.out_dir.display());
    }
    print_markdown(&report.isolation, isolation::markdown);
    print_markdown(&report.sources, sources::markdown);
    print_markdown(&report.stories, stories::markdown);
    print_markdown(&report.refit, refit::markdown);
    print_markdown(&report.hostile, hostile::markdown);
    print_markdown(&report.topics, topics::markdown);
    print_markdown(&report.search, search::markdown);
    print_markdown(&report.digests, digests::markdown);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &args.compare {
        let saved: serde_json::Value = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not a report `--json` wrote", path.display()))?;
        println!("{}", compare(&saved, &serde_json::to_value(&report)?, path));
    }
    Ok(())
}

/// Prints a part's table when the part ran; whether it did.
fn print_markdown<R>(part: &Option<R>, markdown: fn(&R) -> String) -> bool {
    if let Some(r) = part {
        println!("{}", markdown(r));
    }
    part.is_some()
}

/// The pipeline part. Its figures are the lexicon's: the plumbing's own ceiling.
async fn pipeline(run: &Run, args: &BenchArgs, report: &mut BenchReport) -> anyhow::Result<()> {
    let measured = ceilings(run).await?;
    report.xadd_per_sec = measured.xadd_per_sec;
    report.xreadgroup_xack_per_sec = measured.xreadgroup_xack_per_sec;
    report.analyzer_posts_per_sec = measured.analyzer_posts_per_sec;
    report.insert_rows_per_sec = measured.insert_rows_per_sec;
    report.copy_rows_per_sec = measured.copy_rows_per_sec;
    report.insert_fraction_of_copy = report.insert_rows_per_sec / report.copy_rows_per_sec;

    // Only ceilings from outside Pulse's code: one built from Pulse's own statement would slow
    // down with it and hide the regression.
    let ceilings = [
        ("XADD", report.xadd_per_sec),
        ("XREADGROUP+XACK", report.xreadgroup_xack_per_sec),
        ("COPY", report.copy_rows_per_sec),
        ("analyzer", report.analyzer_posts_per_sec),
    ];
    let (name, slowest) = ceilings
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("none", 0.0));
    report.slowest_ceiling = name.to_string();

    report.end_to_end_per_sec = end_to_end(run, &run.id, run.events).await?;
    let (engaged, share) = end_to_end_engaged(run).await?;
    report.end_to_end_engaged_per_sec = engaged;
    report.engaged_share = share;
    eprintln!("end to end with engagements: {engaged:.0} events/s");
    report.fraction_of_slowest_ceiling = report.end_to_end_per_sec / slowest;
    report.end_to_end_fraction_of_copy = report.end_to_end_per_sec / report.copy_rows_per_sec;
    eprintln!("end to end: {:.0}/s", report.end_to_end_per_sec);

    latency(run, args, report).await?;
    report.peak_rss_mb = peak_rss_mb();
    Ok(())
}

/// Collects XADD-to-acknowledged latency of every committed post.
struct LatencyRecorder {
    histogram: Arc<Mutex<Histogram<u64>>>,
}

impl Actor for LatencyRecorder {
    type Context = Context<Self>;
}

impl Handler<Committed> for LatencyRecorder {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        let mut h = self.histogram.lock().unwrap_or_else(|p| p.into_inner());
        for post in &msg.batch.posts {
            if let Some((ms, _)) = post.entry_id.split_once('-') {
                if let Ok(added) = ms.parse::<i64>() {
                    let _ = h.record((msg.acked_at_ms - added).max(0) as u64);
                }
            }
        }
    }
}

/// Starts Pulse on `stream` with a recorder of every committed post's latency.
pub(crate) async fn start_recorded(
    settings: &Settings,
    db_url: &str,
    stream: &str,
    histogram: &Arc<Mutex<Histogram<u64>>>,
) -> anyhow::Result<Application> {
    let app = Application::build(
        bench_settings(settings, db_url, stream),
        ServeOptions::default(),
    )
    .await?;
    let recorder = LatencyRecorder {
        histogram: histogram.clone(),
    };
    app.pipeline().subscribe(recorder.start().recipient());
    Ok(app)
}

pub(crate) fn bench_settings(settings: &Settings, db_url: &str, stream: &str) -> Settings {
    let mut s = settings.clone();
    s.database.url = db_url.to_string();
    s.redis.stream = stream.to_string();
    s.redis.group = "pulse".into();
    s.http.listen = "127.0.0.1:0".into();
    s.migrate_on_start = false;
    // The benchmark's own servers listen on loopback for the benchmark alone. A secret from
    // the environment would make the open server refuse to start.
    s.auth.open = true;
    s.auth.jwt_secret = crate::config::Secret::default();
    s
}

/// Pre-fills a stream with `n` posts, starts Pulse (the lexicon's) and times it until every
/// entry is committed and acknowledged: posts a second. `run_id` names the stream and posts.
pub(crate) async fn end_to_end(run: &Run, run_id: &str, n: u64) -> anyhow::Result<f64> {
    let events = generate_posts(n, &format!("e2e-{run_id}-"));
    let stream = format!("pulse:bench:{run_id}:e2e");
    timed_run(run, &stream, events, "end-to-end run").await
}

/// [`end_to_end`] with the generator's engagements among its `--events` events: events a
/// second, and the share of them that were engagements.
async fn end_to_end_engaged(run: &Run) -> anyhow::Result<(f64, f64)> {
    let (run_id, n) = (&run.id, run.events);
    let events = ceilings::generate_events(n, &format!("e2e-engaged-{run_id}-"), true);
    let posts = events.iter().filter(|e| is_post(e)).count();
    let stream = format!("pulse:bench:{run_id}:e2e-engaged");
    let name = "end-to-end run with engagements";
    let per_sec = timed_run(run, &stream, events, name).await?;
    Ok((per_sec, 1.0 - posts as f64 / n.max(1) as f64))
}

/// Whether a generated event is a post (the generator writes `type` first).
fn is_post(event: &str) -> bool {
    event.starts_with(r#"{"type":"post""#)
}

/// Appends `events` to `stream`, starts Pulse (the lexicon's) on it and times it until every
/// entry is committed and acknowledged and every post stored: events a second. `name` names
/// the run in errors.
async fn timed_run(
    run: &Run,
    stream: &str,
    events: Vec<String>,
    name: &str,
) -> anyhow::Result<f64> {
    let (settings, db_url, redis) = (&run.lexicon, run.db_url.as_str(), &run.redis);
    let n = events.len();
    let posts = events.iter().filter(|e| is_post(e)).count() as i64;
    raw_xadd(redis, stream, &events).await?;
    drop(events);
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let started = Instant::now();
    let app = start_recorded(settings, db_url, stream, &histogram).await?;
    wait_drained(redis, &bench_settings(settings, db_url, stream), name).await?;
    let elapsed = started.elapsed().as_secs_f64();
    app.shutdown().await;
    let stored = count_posts(db_url).await?;
    anyhow::ensure!(
        stored == posts,
        "{name}: expected {posts} posts stored, found {stored}"
    );
    let _: i64 = redis.del(stream).await?;
    truncate(db_url).await?;
    Ok(n as f64 / elapsed)
}

/// Waits until the group of `settings` has read and acknowledged every entry of its stream
/// (10 minutes at most; `run` names the run in the error).
pub(crate) async fn wait_drained(
    redis: &Client,
    settings: &Settings,
    run: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stats = crate::streams::group::group_stats(redis, settings).await?;
        if stats.lag == Some(0) && stats.pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{run} did not finish in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the producer on a thread and runtime of its own, as a producer process beside Pulse
/// would. On the pipeline's own runtime thread it would compete with the stages whose
/// latency it measures (it added about 20 ms to the p99 at 2,000 posts/s).
pub(crate) async fn produce_beside(
    redis_url: &str,
    stream: &str,
    options: ProduceOptions,
) -> anyhow::Result<producer::ProduceReport> {
    let (url, stream) = (redis_url.to_string(), stream.to_string());
    let (done, report) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-producer".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| {
                    runtime.block_on(async {
                        let redis = crate::streams::connect(&url, "bench-producer").await?;
                        producer::produce(&redis, &stream, options).await
                    })
                });
            let _ = done.send(result);
        })?;
    report.await?
}

/// Generated posts without engagements or scenarios, `rate` a second for `duration` (or
/// until stopped), their ids starting with `id_prefix`.
pub(crate) fn posts_only(
    rate: f64,
    duration: Option<Duration>,
    seed: u64,
    id_prefix: String,
) -> ProduceOptions {
    ProduceOptions {
        rate,
        total: None,
        duration,
        seed,
        engagements: false,
        id_prefix,
        scenarios: false,
    }
}

/// Seconds the latency run offers its rate before it starts recording.
pub(crate) const LATENCY_WARM_UP_SECS: f64 = 3.0;

/// Waits until `histogram` holds `n` samples, or `patience` has passed.
pub(crate) async fn wait_recorded(histogram: &Mutex<Histogram<u64>>, n: u64, patience: Duration) {
    let deadline = Instant::now() + patience;
    while histogram.lock().unwrap_or_else(|p| p.into_inner()).len() < n && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Offers a fixed rate for a fixed time and records XADD-to-acknowledged latency,
/// after a warm-up at the same rate.
async fn latency(run: &Run, args: &BenchArgs, report: &mut BenchReport) -> anyhow::Result<()> {
    let (settings, db_url, redis, run_id) = (&run.lexicon, &run.db_url, &run.redis, &run.id);
    let stream = format!("pulse:bench:{run_id}:latency");
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let app = start_recorded(settings, db_url, &stream, &histogram).await?;
    let offer = |secs: f64, prefix: &str| {
        let duration = Some(Duration::from_secs_f64(secs));
        posts_only(
            args.latency_rate,
            duration,
            11,
            format!("{prefix}-{run_id}-"),
        )
    };
    // The first seconds of a new process on new tables open connections, prepare and plan
    // statements and analyse the tables as they grow: their latency is a start-up cost, not
    // the steady state this row reports.
    let warm = produce_beside(
        &settings.redis.url,
        &stream,
        offer(LATENCY_WARM_UP_SECS, "warm"),
    )
    .await?;
    wait_recorded(&histogram, warm.posts, Duration::from_secs(60)).await;
    histogram.lock().unwrap_or_else(|p| p.into_inner()).reset();
    let sent = produce_beside(
        &settings.redis.url,
        &stream,
        offer(args.latency_secs, "lat"),
    )
    .await?;
    wait_recorded(&histogram, sent.posts, Duration::from_secs(60)).await;
    app.shutdown().await;
    let _: i64 = redis.del(&stream).await?;
    let h = histogram.lock().unwrap_or_else(|p| p.into_inner());
    report.latency_rate = sent.posts as f64 / sent.seconds;
    report.latency_samples = h.len();
    report.latency_p50_ms = h.value_at_quantile(0.50) as f64;
    report.latency_p90_ms = h.value_at_quantile(0.90) as f64;
    report.latency_p99_ms = h.value_at_quantile(0.99) as f64;
    report.latency_max_ms = h.max() as f64;
    Ok(())
}

async fn admin(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    connect(&replace_database(url, "postgres"))
        .await
        .context("connecting to PostgreSQL")
}

async fn create_database(url: &str, name: &str) -> anyhow::Result<()> {
    admin(url)
        .await?
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .context("creating the benchmark database")
}

async fn drop_database(url: &str, name: &str) {
    if let Ok(client) = admin(url).await {
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// A client of the database at `db_url`, its connection driven on a task of its own.
pub(crate) async fn connect(db_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

pub(crate) async fn count_posts(db_url: &str) -> anyhow::Result<i64> {
    Ok(connect(db_url)
        .await?
        .query_one("SELECT count(*) FROM posts", &[])
        .await?
        .get(0))
}

pub(crate) async fn truncate(db_url: &str) -> anyhow::Result<()> {
    connect(db_url)
        .await?
        .batch_execute("TRUNCATE posts, engagements")
        .await?;
    Ok(())
}

fn replace_database(url: &str, db: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (url, String::new()),
    };
    match without_query.rsplit_once('/') {
        Some((base, _))
            if base.contains("://") && base.len() > base.find("://").unwrap_or(0) + 3 =>
        {
            format!("{base}/{db}{query}")
        }
        _ => format!("{without_query}/{db}{query}"),
    }
}

/// The fractions of a ceiling a run reports, with their names in a comparison.
const FRACTIONS: [(&str, &str); 3] = [
    ("insert_fraction_of_copy", "Pulse's batch write / `COPY`"),
    ("end_to_end_fraction_of_copy", "Pulse end to end / `COPY`"),
    (
        "fraction_of_slowest_ceiling",
        "Pulse end to end / slowest ceiling",
    ),
];

/// How each fraction of a ceiling changed from `saved` (an earlier run's JSON, from `path`)
/// to `now`, as a Markdown table; a fraction the earlier run did not record is `n/a`.
pub fn compare(
    saved: &serde_json::Value,
    now: &serde_json::Value,
    path: &std::path::Path,
) -> String {
    let mut out = format!(
        "| fraction | {} | this run | change |\n|---|---|---|---|\n",
        path.display()
    );
    for (key, name) in FRACTIONS {
        let (before, after) = (saved[key].as_f64(), now[key].as_f64());
        let percent =
            |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0}%", v * 100.0));
        let change = match (before, after) {
            (Some(b), Some(a)) if b > 0.0 => format!("{:+.0}%", (a / b - 1.0) * 100.0),
            _ => "n/a".to_string(),
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {change} |\n",
            percent(before),
            percent(after)
        ));
    }
    out
}

/// The report as the table of `docs/benchmarks.md`.
pub fn markdown(r: &BenchReport) -> String {
    format!(
        "| measure | result |\n|---|---|\n\
         | posts per run | {events} |\n\
         | cores | {cores} |\n\
         | ceiling: raw XADD (pipelined {batch}) | {xadd:.0} /s |\n\
         | ceiling: raw XREADGROUP + XACK ({batch} per read) | {read:.0} /s |\n\
         | ceiling: PostgreSQL `COPY` of the same posts into a table of the posts table's shape | {copy:.0} rows/s |\n\
         | ceiling: raw analyzer ({cores} threads) | {analyzer:.0} posts/s |\n\
         | Pulse's batch write alone (its statement with rollups, {batch} rows, {writers} writers) | {insert:.0} rows/s, {insert_copy:.0}% of `COPY` |\n\
         | **Pulse end to end** (XADD to committed and acknowledged) | **{e2e:.0} posts/s, {e2e_copy:.0}% of `COPY`** |\n\
         | Pulse end to end, the generator's engagements among the events ({engaged_share:.0}% of them) | {engaged:.0} events/s |\n\
         | fraction of the slowest ceiling ({slowest}) | {fraction:.0}% |\n\
         | latency at {rate:.0} posts/s offered, after a {warm:.0} s warm-up: p50 / p90 / p99 / max | {p50:.0} / {p90:.0} / {p99:.0} / {max:.0} ms ({samples} samples) |\n\
         | peak resident memory (benchmark process, Pulse included) | {rss:.0} MB |",
        events = r.events,
        cores = r.cores,
        batch = ceilings::RAW_BATCH,
        writers = ceilings::RAW_INSERT_WRITERS,
        xadd = r.xadd_per_sec,
        read = r.xreadgroup_xack_per_sec,
        insert = r.insert_rows_per_sec,
        copy = r.copy_rows_per_sec,
        insert_copy = r.insert_fraction_of_copy * 100.0,
        e2e_copy = r.end_to_end_fraction_of_copy * 100.0,
        analyzer = r.analyzer_posts_per_sec,
        e2e = r.end_to_end_per_sec,
        engaged = r.end_to_end_engaged_per_sec,
        engaged_share = r.engaged_share * 100.0,
        slowest = r.slowest_ceiling,
        fraction = r.fraction_of_slowest_ceiling * 100.0,
        rate = r.latency_rate,
        warm = LATENCY_WARM_UP_SECS,
        p50 = r.latency_p50_ms,
        p90 = r.latency_p90_ms,
        p99 = r.latency_p99_ms,
        max = r.latency_max_ms,
        samples = r.latency_samples,
        rss = r.peak_rss_mb,
    )
}

#[cfg(test)]
mod tests;
