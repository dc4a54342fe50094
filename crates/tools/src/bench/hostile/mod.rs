//! `pulse bench --only hostile`: a `pulse serve` child with authentication on and every
//! setting at its default, attacked from outside the way the last outside probe attacked one,
//! one attack at a time, while legitimate traffic flows: posts XADDed at `--hostile-rate`, and
//! a client with an analyst token asking for health, posts, a geographic breakdown and an
//! analysis several times a second. For the run without an attack and for each attack it
//! reports the server's peak resident memory over its idle memory, the pipeline's latency from
//! XADD to commit (from the server's own histogram), and what the legitimate client got
//! (answers by status, hung requests, slowest answer). Then `pulse import` of hostile files
//! (its own peak memory), and the inputs that once answered 500.
//!
//! `--hostile-server` names another `pulse` binary to attack, so an older build is measured
//! by the same benchmark in the same way.

mod attacks;
mod raw;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use fred::prelude::*;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::scrape;
use super::websocket::Server;
use crate::auth::{keys, Role};
use crate::sources::demo as producer;

/// Options of the hostile part.
#[derive(Debug, Clone, clap::Args)]
pub struct HostileArgs {
    /// Legitimate posts per second offered in every phase.
    #[arg(long, default_value_t = 2_000.0)]
    pub hostile_rate: f64,
    /// Length of each phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub hostile_secs: f64,
    /// Only these attacks (comma-separated names, see the report); all by default.
    #[arg(long, value_delimiter = ',')]
    pub hostile_attacks: Vec<String>,
    /// The `pulse` binary to attack; this one by default.
    #[arg(long)]
    pub hostile_server: Option<PathBuf>,
    /// The attacked server's analyzer backend.
    #[arg(long, default_value = "lexicon")]
    pub hostile_backend: String,
}

/// What the legitimate client got in one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Legit {
    pub requests: u64,
    /// Answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests with no answer within 15 s (or none at all).
    pub hung: u64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The slowest answer of `GET /api/v1/metrics/geo`.
    pub geo_max_ms: f64,
}

/// One phase: the legitimate load, with or without an attack.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    pub name: String,
    pub attack: String,
    /// What the attacker got.
    pub attacker: String,
    /// Resident memory of the phase's fresh server, warmed up, before the phase.
    pub idle_rss_mb: f64,
    pub peak_rss_mb: f64,
    /// Peak resident memory over the idle memory.
    pub growth_mb: f64,
    /// Resident memory once the phase is over, over the idle memory.
    pub after_mb: f64,
    pub committed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p99 over the p99 of the phase without an attack.
    pub p99_ratio: f64,
    pub legit: Legit,
    /// Mean and longest wait of the legitimate posts from their append to their commit, in
    /// milliseconds, as the server tells (`GET /api/v1/pipeline`, `waits`): what a flood
    /// costs the producers beside it.
    pub legit_wait_mean_ms: f64,
    pub legit_wait_max_ms: f64,
    /// Whether the server was still running at the end.
    pub alive: bool,
}

/// `pulse import` of one hostile file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportRun {
    pub file: String,
    pub bytes: u64,
    pub peak_rss_mb: f64,
    /// What the import said it did (its JSON summary, or why it failed).
    pub summary: String,
    /// Whether the event hidden in the hostile record was accepted.
    pub hidden_accepted: bool,
}

/// Every figure of the hostile part. Each phase runs against a fresh server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostileReport {
    pub date: String,
    pub machine: String,
    pub server: String,
    pub backend: String,
    pub rate: f64,
    pub phase_secs: f64,
    pub idle_rss_mb: f64,
    /// What analysis and request bodies may add over idle memory at full load, estimated from
    /// the server's settings (`analysis::footprint`), in MB.
    pub full_load_estimate_mb: f64,
    /// The most a phase's peak may grow over idle memory: the estimate and
    /// [`GROWTH_ALLOWANCE_MB`].
    pub growth_limit_mb: f64,
    pub phases: Vec<Phase>,
    pub imports: Vec<ImportRun>,
    /// The inputs that once answered 500, and their statuses.
    pub bad_inputs: Vec<(String, u16)>,
}

/// What the attacks reach the server with.
pub(crate) struct Target {
    pub address: SocketAddr,
    pub redis: Client,
    pub stream: String,
    pub run_id: String,
    pub admin_key: String,
    pub analyst_key: String,
    pub ingest_key: String,
    /// The legitimate client's token.
    pub analyst_token: String,
    /// An attacking analyst's token (a key of its own).
    pub attacker_token: String,
    /// Legitimate posts per second.
    pub rate: f64,
}

/// The attacks, in the order they run.
#[derive(Debug, Clone, Copy)]
enum Attack {
    SlowBodies,
    SlowBodiesSpread,
    SlowBodiesIngest,
    ManyFields,
    KeyGuessing,
    GzipMembers,
    Analyze,
    StalledSockets,
    UniqueLabels,
    EventsFlood,
}

impl Attack {
    const ALL: [Attack; 10] = [
        Attack::SlowBodies,
        Attack::SlowBodiesSpread,
        Attack::SlowBodiesIngest,
        Attack::ManyFields,
        Attack::KeyGuessing,
        Attack::GzipMembers,
        Attack::Analyze,
        Attack::StalledSockets,
        Attack::UniqueLabels,
        Attack::EventsFlood,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::SlowBodies => "slow-bodies",
            Attack::SlowBodiesSpread => "slow-bodies-spread",
            Attack::SlowBodiesIngest => "slow-bodies-ingest",
            Attack::ManyFields => "many-fields",
            Attack::KeyGuessing => "key-guessing",
            Attack::GzipMembers => "gzip-members",
            Attack::Analyze => "analyze",
            Attack::StalledSockets => "stalled-sockets",
            Attack::UniqueLabels => "unique-labels",
            Attack::EventsFlood => "events-flood",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Attack::SlowBodies => "500 token requests declaring 1 MiB and sending one byte fewer, from 25 addresses of one /24",
            Attack::SlowBodiesSpread => "the same from 25 addresses in 25 different /24s",
            Attack::SlowBodiesIngest => "150 event bodies declaring 8 MiB and sending one byte fewer, with an ingest key",
            Attack::ManyFields => "8 stream entries of 500,000 one-byte fields, XADDed directly",
            Attack::KeyGuessing => "16 clients presenting random well-formed API keys, from 25 addresses of one /24",
            Attack::GzipMembers => "8 clients posting 1 MiB of empty gzip members to the token exchange",
            Attack::Analyze => "4 analyst clients asking to analyse 256 texts of 3.9 KB, back to back",
            Attack::StalledSockets => "600 WebSocket sessions subscribed to every post whose client never reads",
            Attack::UniqueLabels => "30,000 posts each naming a product, city, country and channel of its own",
            Attack::EventsFlood => "2 clients posting batches of 1,000 events with one ingest key, back to back",
        }
    }

    /// How long its phase lasts: the sockets' is longer than the write timeout, so the
    /// server's closing them is part of the run.
    fn duration(self, secs: Duration) -> Duration {
        match self {
            Attack::StalledSockets => secs.max(Duration::from_secs(45)),
            _ => secs,
        }
    }

    /// The attack on `t` for `secs`.
    async fn run(self, t: &Target, secs: Duration) -> anyhow::Result<String> {
        let addr = t.address;
        let deadline = Instant::now() + secs;
        let one_net = raw::addresses(1, 25, false);
        let json = ("Content-Type", "application/json".to_string());
        let ingest = ("Authorization", format!("Bearer {}", t.ingest_key));
        let analyst = ("Authorization", format!("Bearer {}", t.attacker_token));
        let token_path = "/api/v1/auth/token";
        Ok(match self {
            Attack::SlowBodies => {
                attacks::slow_bodies(
                    addr,
                    one_net,
                    token_path,
                    vec![json],
                    1 << 20,
                    500,
                    deadline,
                )
                .await
            }
            Attack::SlowBodiesSpread => {
                let spread = raw::addresses(100, 25, true);
                attacks::slow_bodies(addr, spread, token_path, vec![json], 1 << 20, 500, deadline)
                    .await
            }
            Attack::SlowBodiesIngest => {
                let headers = vec![json, ingest];
                attacks::slow_bodies(
                    addr,
                    one_net,
                    "/api/v1/events",
                    headers,
                    8 << 20,
                    150,
                    deadline,
                )
                .await
            }
            Attack::ManyFields => {
                let summary = attacks::many_fields(t, 8, 500_000).await?;
                tokio::time::sleep_until(deadline).await;
                summary
            }
            Attack::KeyGuessing => attacks::key_guessing(addr, one_net, 16, deadline).await,
            Attack::GzipMembers => {
                let body = Arc::new(attacks::empty_gzip_members(1 << 20));
                let headers = vec![json, ("Content-Encoding", "gzip".into())];
                attacks::repeated_posts(addr, one_net, 8, token_path, headers, body, deadline).await
            }
            Attack::Analyze => {
                let texts: Vec<String> = (0..256)
                    .map(|i| {
                        format!("{i} ")
                            + &"terrible awful service, I want a refund now! ".repeat(87)
                    })
                    .collect();
                let body = Arc::new(serde_json::to_vec(&serde_json::json!({"texts": texts}))?);
                let headers = vec![json, analyst];
                attacks::repeated_posts(
                    addr,
                    one_net,
                    4,
                    "/api/v1/analyze",
                    headers,
                    body,
                    deadline,
                )
                .await
            }
            Attack::StalledSockets => {
                attacks::stalled_sockets(addr, one_net, &t.attacker_token, 600, deadline).await
            }
            Attack::UniqueLabels => {
                let summary = attacks::unique_labels(t, 30_000, 1_500.0).await?;
                tokio::time::sleep_until(deadline).await;
                summary
            }
            Attack::EventsFlood => {
                let events = super::generate_posts(1_000, &format!("flood-{}-", t.run_id));
                let body = Arc::new(format!("[{}]", events.join(",")).into_bytes());
                let headers = vec![json, ingest];
                attacks::repeated_posts(addr, one_net, 2, "/api/v1/events", headers, body, deadline)
                    .await
            }
        })
    }
}

/// The credentials the attacked servers know.
struct Credentials {
    secret: String,
    admin_key: String,
    analyst_key: String,
    attacker_key: String,
    ingest_key: String,
}

/// A fresh server on a stream of its own, warmed up by the legitimate load: what every phase
/// starts from, so each phase's memory is its own.
async fn fresh_server(
    binary: &std::path::Path,
    run: &super::Run,
    phase: &str,
    credentials: &Credentials,
    args: &HostileArgs,
) -> anyhow::Result<(Server, Target, f64)> {
    let (redis, run_id) = (&run.redis, &run.id);
    let stream = format!("pulse:bench:{run_id}:hostile:{phase}");
    let server = Server::start_as(
        binary,
        &["serve"],
        run,
        &stream,
        &[
            ("PULSE_AUTH__JWT_SECRET", credentials.secret.as_str()),
            ("PULSE_ANALYZER__BACKEND", args.hostile_backend.as_str()),
            ("PULSE_MIGRATE_ON_START", "false"),
        ],
    )?;
    let token = analyst_token(server.address, &credentials.analyst_key).await?;
    let attacker_token = analyst_token(server.address, &credentials.attacker_key).await?;
    let target = Target {
        address: server.address,
        redis: redis.clone(),
        stream: stream.clone(),
        run_id: format!("{run_id}-{phase}"),
        admin_key: credentials.admin_key.clone(),
        analyst_key: credentials.analyst_key.clone(),
        ingest_key: credentials.ingest_key.clone(),
        analyst_token: token,
        attacker_token,
        rate: args.hostile_rate,
    };
    // Warm up (the code and buffers the normal load needs), then measure idle memory.
    legit_posts(&target, args.hostile_rate, Duration::from_secs(5), "warm").await?;
    super::wait_drained(redis, &group_settings(&stream), "warm-up").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.rss_mb();
    Ok((server, target, idle))
}

/// Runs the part against the run's database (migrated and empty).
pub async fn run(run: &super::Run, args: &HostileArgs) -> anyhow::Result<HostileReport> {
    let redis = &run.redis;
    let binary = match &args.hostile_server {
        Some(path) => path.clone(),
        None => crate::server_binary()?,
    };
    let pg = super::connect(&run.db_url).await?;
    let mut made = Vec::new();
    for role in [Role::Admin, Role::Analyst, Role::Analyst, Role::Ingest] {
        made.push(keys::create(&pg, role, "hostile", None, "bench").await?.key);
    }
    let [admin_key, analyst_key, attacker_key, ingest_key] =
        <[String; 4]>::try_from(made).map_err(|_| anyhow::anyhow!("four keys were made"))?;
    let credentials = Credentials {
        secret: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        admin_key,
        analyst_key,
        attacker_key,
        ingest_key,
    };
    let full_load_estimate_mb = {
        let mut settings = crate::config::Settings::load().unwrap_or_default();
        settings.analyzer.backend = if args.hostile_backend == "lexicon" {
            crate::config::Backend::Lexicon
        } else {
            crate::config::Backend::Onnx
        };
        crate::analysis::footprint::full_load_bytes(&settings) as f64 / (1024.0 * 1024.0)
    };
    let mut report = HostileReport {
        full_load_estimate_mb,
        growth_limit_mb: full_load_estimate_mb + GROWTH_ALLOWANCE_MB,
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        machine: super::machine_description(),
        server: binary.display().to_string(),
        backend: args.hostile_backend.clone(),
        rate: args.hostile_rate,
        phase_secs: args.hostile_secs,
        ..Default::default()
    };
    let secs = Duration::from_secs_f64(args.hostile_secs);
    let wanted = |name: &str| {
        args.hostile_attacks.is_empty() || args.hostile_attacks.iter().any(|a| a == name)
    };
    let fresh = |phase: &'static str| fresh_server(&binary, run, phase, &credentials, args);

    // Without an attack, before and after them: the reference is their mean. The database is
    // new; the first server runs the legitimate load a while before anything is measured.
    eprintln!("hostile: no attack");
    let (mut server, target, _) = fresh("none").await?;
    legit_posts(&target, args.hostile_rate, secs, "settle").await?;
    super::wait_drained(redis, &group_settings(&target.stream), "settling").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = server.rss_mb();
    let baseline = quiet_phase(&mut server, &target, idle, "none", "no attack", secs).await?;
    report.idle_rss_mb = idle;
    let mut reference = baseline.p99_ms;
    report.phases.push(baseline);
    drop(server);

    for attack in Attack::ALL.into_iter().filter(|a| wanted(a.name())) {
        eprintln!("hostile: {}", attack.name());
        let (mut server, target, idle) = fresh(attack.name()).await?;
        let duration = attack.duration(secs);
        let measured = phase(
            &mut server,
            &target,
            idle,
            Some(reference),
            attack.name(),
            attack.description(),
            duration,
            attack.run(&target, duration),
        )
        .await?;
        report.phases.push(measured);
        cleanup(redis, &target.stream).await;
        drop(server);
    }

    eprintln!("hostile: no attack, again");
    let (mut server, target, idle) = fresh("none-after").await?;
    let description = "no attack, after the attacks";
    let after = quiet_phase(
        &mut server,
        &target,
        idle,
        "none (again)",
        description,
        secs,
    )
    .await?;
    reference = (reference + after.p99_ms) / 2.0;
    report.phases.push(after);
    for p in &mut report.phases {
        p.p99_ratio = if reference > 0.0 {
            p.p99_ms / reference
        } else {
            0.0
        };
    }
    report.bad_inputs = attacks::bad_inputs(&target).await;
    cleanup(redis, &target.stream).await;
    drop(server);
    if wanted("import") {
        eprintln!("hostile: import");
        report.imports = imports(&binary, run).await?;
    }
    Ok(report)
}

/// Deletes a phase's stream and its dead letters.
async fn cleanup(redis: &Client, stream: &str) {
    let _: Result<i64, _> = redis.del(stream).await;
    let _: Result<i64, _> = redis.del(format!("{stream}:dead")).await;
}

/// Settings naming the stream and group the server reads, for the drain checks.
fn group_settings(stream: &str) -> crate::config::Settings {
    let mut s = crate::config::Settings::default();
    s.redis.stream = stream.to_string();
    s.redis.group = "pulse".into();
    s
}

async fn analyst_token(address: SocketAddr, key: &str) -> anyhow::Result<String> {
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{address}/api/v1/auth/token"))
        .json(&serde_json::json!({"api_key": key}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    reply["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access token in the exchange's answer")
}

/// Legitimate posts at `rate` for `duration`.
async fn legit_posts(t: &Target, rate: f64, duration: Duration, tag: &str) -> anyhow::Result<u64> {
    let sent = producer::produce(
        &t.redis,
        &t.stream,
        super::posts_only(
            rate,
            Some(duration),
            17,
            format!("legit-{tag}-{}-", t.run_id),
        ),
    )
    .await?;
    Ok(sent.posts)
}

/// A [`phase`] of the legitimate load alone.
async fn quiet_phase(
    server: &mut Server,
    t: &Target,
    idle: f64,
    name: &str,
    description: &str,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let no_attack = async { Ok("—".to_string()) };
    phase(
        server,
        t,
        idle,
        None,
        name,
        description,
        duration,
        no_attack,
    )
    .await
}

/// One phase: legitimate load for `duration` beside `attack`, on a server whose idle memory
/// was `idle` MB; `reference` is the p99 of the run without an attack, when known.
#[allow(clippy::too_many_arguments)]
async fn phase<'a>(
    server: &mut Server,
    t: &'a Target,
    idle: f64,
    reference: Option<f64>,
    name: &str,
    description: &str,
    duration: Duration,
    attack: impl std::future::Future<Output = anyhow::Result<String>> + 'a,
) -> anyhow::Result<Phase> {
    let before = scrape::read(t.address).await?;
    let peak = Arc::new(Mutex::new(server.rss_mb()));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop, pid) = (peak.clone(), stop.clone(), server.pid());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let rss = super::rss_mb_of(pid);
                {
                    let mut p = peak.lock().unwrap_or_else(|p| p.into_inner());
                    *p = p.max(rss);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let legit = tokio::spawn(legit_client(
        t.address,
        t.analyst_token.clone(),
        stop.clone(),
    ));
    let tag = name.to_string();
    let rate = t.rate;
    let (posts, attacker) = tokio::join!(legit_posts(t, rate, duration, &tag), attack);
    posts?;
    let attacker = attacker.unwrap_or_else(|e| format!("the attack failed: {e:#}"));
    // The phase ends when the posts offered are committed (or a minute has passed).
    let settle = Instant::now() + Duration::from_secs(60);
    let settings = group_settings(&t.stream);
    while Instant::now() < settle && server.running() {
        match crate::streams::group::group_stats(&t.redis, &settings).await {
            Ok(stats) if stats.backlog() == 0 => break,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let (legit_wait_mean_ms, legit_wait_max_ms) = legit_waits(t).await.unwrap_or((0.0, 0.0));
    stop.store(true, Ordering::Relaxed);
    let legit = legit.await.unwrap_or_default();
    let _ = sampler.await;
    let alive = server.running();
    let after = if alive {
        scrape::read(t.address).await.unwrap_or_default()
    } else {
        scrape::Reading::default()
    };
    let latency = after.latency.since(&before.latency);
    let peak = *peak.lock().unwrap_or_else(|p| p.into_inner());
    let p99_ms = latency.quantile(0.99).unwrap_or(0.0) * 1000.0;
    let baseline = reference.unwrap_or(p99_ms);
    let committed = after.value(crate::telemetry::names::ENTRIES_ACKED)
        - before.value(crate::telemetry::names::ENTRIES_ACKED);
    Ok(Phase {
        name: name.to_string(),
        attack: description.to_string(),
        attacker,
        peak_rss_mb: peak,
        idle_rss_mb: idle,
        growth_mb: peak - idle,
        after_mb: server.rss_mb() - idle,
        committed: committed.max(0.0) as u64,
        p50_ms: latency.quantile(0.5).unwrap_or(0.0) * 1000.0,
        p99_ms,
        p99_ratio: if baseline > 0.0 {
            p99_ms / baseline
        } else {
            0.0
        },
        legit,
        legit_wait_mean_ms,
        legit_wait_max_ms,
        alive,
    })
}

/// The mean and longest wait of the legitimate posts (XADDed without a producer: `stream`)
/// as the server counted them, in milliseconds.
async fn legit_waits(t: &Target) -> anyhow::Result<(f64, f64)> {
    let status: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/api/v1/pipeline", t.address))
        .bearer_auth(&t.analyst_token)
        .timeout(Duration::from_secs(15))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let waits = status["waits"].as_array().cloned().unwrap_or_default();
    let legit = waits
        .iter()
        .find(|w| w["producer"] == crate::models::producer::STREAM)
        .context("no waits of the legitimate posts")?;
    let ms = |field: &str| legit[field].as_f64().unwrap_or(0.0) * 1000.0;
    Ok((ms("mean_wait_secs"), ms("max_wait_secs")))
}

/// The legitimate client: health, a page of posts, the geographic breakdown and a one-text
/// analysis, four times a second, until `stop`.
async fn legit_client(address: SocketAddr, token: String, stop: Arc<AtomicBool>) -> Legit {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default();
    let mut legit = Legit::default();
    let mut latency = Histogram::<u64>::new(3).expect("a histogram");
    let base = format!("http://{address}");
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let requests = [
            client.get(format!("{base}/health")),
            client
                .get(format!("{base}/api/v1/posts?limit=20"))
                .bearer_auth(&token),
            client
                .get(format!("{base}/api/v1/metrics/geo?window=1h"))
                .bearer_auth(&token),
            client
                .post(format!("{base}/api/v1/analyze"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"texts": ["The new watch is great, but the app keeps crashing"]})),
        ];
        for (i, request) in requests.into_iter().enumerate() {
            let sent = Instant::now();
            legit.requests += 1;
            match request.send().await {
                Ok(res) => {
                    *legit.statuses.entry(res.status().as_u16()).or_default() += 1;
                    let _ = res.bytes().await;
                    let ms = sent.elapsed().as_millis() as u64;
                    let _ = latency.record(ms);
                    if i == 2 {
                        legit.geo_max_ms = legit.geo_max_ms.max(ms as f64);
                    }
                }
                Err(_) => legit.hung += 1,
            }
        }
        tokio::time::sleep_until(started + Duration::from_millis(250)).await;
    }
    legit.p99_ms = latency.value_at_quantile(0.99) as f64;
    legit.max_ms = latency.max() as f64;
    legit
}

/// `pulse import` of a CSV file with one quoted field of 300 MB and of a JSON-lines file
/// whose 17 MB line hides an event after its padding, each followed by one good record.
async fn imports(binary: &std::path::Path, run: &super::Run) -> anyhow::Result<Vec<ImportRun>> {
    let (redis, run_id) = (&run.redis, &run.id);
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("pulse-hostile-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    let now = chrono::Utc::now().to_rfc3339();
    let good = |id: &str| {
        serde_json::json!({"type": "post", "id": id, "platform": "other",
            "author": {"id": "a", "followers": 1}, "text": "a good line", "created_at": now})
        .to_string()
    };
    let csv = dir.join("huge-field.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        write!(f, "id,text,created_at\nhidden,\"")?;
        let block = vec![b'x'; 1 << 20];
        for _ in 0..300 {
            f.write_all(&block)?;
        }
        writeln!(f, "\",{now}\ngood,a good line,{now}")?;
    }
    let jsonl = dir.join("padded-line.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&jsonl)?);
        f.write_all(&vec![b' '; (16 << 20) + 1])?;
        writeln!(f, "{}", good("hidden"))?;
        writeln!(f, "{}", good("good"))?;
    }
    let mut runs = Vec::new();
    for file in [csv, jsonl] {
        let stream = format!("pulse:bench:{run_id}:import");
        let mut child = std::process::Command::new(binary)
            .arg("import")
            .arg(&file)
            .args(["--quiet", "--restart", "--max-backlog", "0"])
            .env("REDIS_URL", run.redis_url())
            .env("PULSE_STREAM", &stream)
            .env("PULSE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let pid = child.id();
        let mut peak: f64 = 0.0;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let hwm = super::peak_rss_mb_in(&format!("/proc/{pid}/status"));
            peak = peak.max(hwm);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            use std::io::Read;
            let _ = stdout.read_to_string(&mut out);
        }
        let ids: Vec<String> = {
            let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis
                .xrange(&stream, "-", "+", None)
                .await
                .unwrap_or_default();
            entries
                .into_iter()
                .filter_map(|(_, fields)| fields.get("event").cloned())
                .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e).ok())
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        };
        let _: i64 = redis.del(&stream).await.unwrap_or(0);
        runs.push(ImportRun {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
            peak_rss_mb: peak,
            summary: if status.success() {
                out.trim().replace('\n', " ")
            } else {
                format!("exited with {status}")
            },
            hidden_accepted: ids.iter().any(|id| id == "hidden"),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(runs)
}

/// What a phase's peak memory may grow over idle memory beyond the estimated full-load working
/// set, in MB.
pub const GROWTH_ALLOWANCE_MB: f64 = 128.0;

/// The report as the tables of `docs/benchmarks.md`.
pub fn markdown(r: &HostileReport) -> String {
    let mut out = format!(
        "Hostile run ({date}; {machine}; server `{server}`, {backend} backend; {rate:.0} legitimate posts/s, {secs:.0} s per phase, each on a fresh server warmed up by the legitimate load, idle at about {idle:.0} MB; p99 ratio against the mean p99 of the two phases without an attack)\n\n\
         | attack | attacker got | peak memory over idle (after) | pipeline p50 / p99 | p99 ratio | legitimate posts' wait mean / max | legitimate answers | hung | legit p99 / max | geo max |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        date = r.date,
        machine = r.machine,
        server = r.server,
        backend = r.backend,
        rate = r.rate,
        secs = r.phase_secs,
        idle = r.idle_rss_mb,
    );
    for p in &r.phases {
        let statuses: Vec<String> = p
            .legit
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect();
        out.push_str(&format!(
            "| {name}{dead} | {attacker} | +{growth:.0} MB (+{after:.0}) | {p50:.0} / {p99:.0} ms | {ratio:.2} | {wmean:.0} / {wmax:.0} ms | {statuses} | {hung} | {lp99:.0} / {lmax:.0} ms | {geo:.0} ms |\n",
            name = p.name,
            dead = if p.alive { "" } else { " (server died)" },
            attacker = p.attacker,
            growth = p.growth_mb,
            after = p.after_mb,
            p50 = p.p50_ms,
            p99 = p.p99_ms,
            ratio = p.p99_ratio,
            wmean = p.legit_wait_mean_ms,
            wmax = p.legit_wait_max_ms,
            statuses = statuses.join(", "),
            hung = p.legit.hung,
            lp99 = p.legit.p99_ms,
            lmax = p.legit.max_ms,
            geo = p.legit.geo_max_ms,
        ));
    }
    let over: Vec<&str> = r
        .phases
        .iter()
        .filter(|p| p.growth_mb > r.growth_limit_mb)
        .map(|p| p.name.as_str())
        .collect();
    out.push_str(&format!(
        "\nFull-load working set estimated from the server's settings (analysis and request bodies, docs/operations.md \"At full load\"): {est:.0} MB; a phase may grow {allow:.0} MB past it, to +{limit:.0} MB: {verdict}.\n",
        est = r.full_load_estimate_mb,
        allow = GROWTH_ALLOWANCE_MB,
        limit = r.growth_limit_mb,
        verdict = if over.is_empty() {
            "every phase stayed within".to_string()
        } else {
            format!("over in {}", over.join(", "))
        },
    ));
    if !r.imports.is_empty() {
        out.push_str("\n| import of | size | importer's peak memory | hidden event accepted | summary |\n|---|---|---|---|---|\n");
        for i in &r.imports {
            out.push_str(&format!(
                "| {} | {:.0} MB | {:.0} MB | {} | `{}` |\n",
                i.file,
                i.bytes as f64 / 1e6,
                i.peak_rss_mb,
                if i.hidden_accepted { "yes" } else { "no" },
                i.summary,
            ));
        }
    }
    if !r.bad_inputs.is_empty() {
        out.push_str("\n| input | status |\n|---|---|\n");
        for (input, status) in &r.bad_inputs {
            out.push_str(&format!("| `{input}` | {status} |\n"));
        }
    }
    out
}
