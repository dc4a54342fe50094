//! The WebSocket part of `pulse bench`, against a real `pulse serve` child process (so its
//! memory is measured alone): latency from XADD to `message:new` on a subscriber at a fixed
//! offered rate, the fan-out rate achieved, and the extra memory of many subscribers that
//! each get metrics updates and a filtered post stream.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::sources::demo::{self as producer, ProduceOptions};

/// Options of the WebSocket benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct WsBenchArgs {
    /// Subscribers of the unfiltered post stream in the latency run.
    #[arg(long, default_value_t = 100)]
    pub ws_subscribers: usize,
    /// Offered posts per second in the latency run.
    #[arg(long, default_value_t = 2_000.0)]
    pub ws_rate: f64,
    /// Length of each run, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub ws_secs: f64,
    /// Subscribers of metrics plus a filtered post stream in the memory run.
    #[arg(long, default_value_t = 1_000)]
    pub ws_memory_subscribers: usize,
    /// Offered posts per second in the memory run.
    #[arg(long, default_value_t = 500.0)]
    pub ws_memory_rate: f64,
}

/// Figures of the WebSocket benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WsReport {
    pub subscribers: usize,
    pub offered_posts_per_sec: f64,
    pub delivered_messages: u64,
    pub delivered_per_sec: f64,
    pub dropped_messages: u64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub memory_subscribers: usize,
    pub memory_rate: f64,
    pub memory_metrics_updates: u64,
    pub memory_filtered_posts: u64,
    pub server_rss_before_mb: f64,
    pub server_rss_peak_mb: f64,
    pub extra_memory_mb: f64,
}

/// A `pulse serve` child process on a free port.
pub(crate) struct Server {
    child: Child,
    pub(crate) address: SocketAddr,
}

impl Server {
    /// A `pulse serve` child on `stream` with the lexicon analyzer (these runs measure the
    /// live layer, not the model) and `extra` settings as environment variables, which
    /// override those (the soak sets the model backend this way).
    pub(crate) fn start(
        run: &super::Run,
        stream: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut env = vec![
            ("PULSE_LIMITS__RATE_LIMITS", "false"),
            ("PULSE_ANALYZER__BACKEND", "lexicon"),
        ];
        env.extend_from_slice(extra);
        Self::start_as(
            &crate::server_binary()?,
            &["serve", "--open"],
            run,
            stream,
            &env,
        )
    }

    /// `binary` run with `args` on `stream` of the run's services, with `extra` settings as
    /// environment variables.
    pub(crate) fn start_as(
        binary: &std::path::Path,
        args: &[&str],
        run: &super::Run,
        stream: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let mut child = Command::new(binary)
            .args(args)
            .env("DATABASE_URL", &run.db_url)
            .env("REDIS_URL", run.redis_url())
            .env("PULSE_STREAM", stream)
            .env("PULSE_LISTEN", "127.0.0.1:0")
            .env("PULSE_LOG", "warn,pulse::app=info")
            .env("PULSE_LOG_FORMAT", "text")
            // The caller's secret, if its environment holds one, would make `serve --open`
            // refuse to start; a server that needs one is given it in `extra`.
            .env_remove("PULSE_AUTH__JWT_SECRET")
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting pulse serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let addr: String =
                            rest.chars().take_while(|c| !c.is_whitespace()).collect();
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .context("pulse serve did not start listening")?
            .parse()?;
        Ok(Server { child, address })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child's resident memory now, in MB (0 when unreadable).
    pub(crate) fn rss_mb(&self) -> f64 {
        super::rss_mb_of(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the subscriber tasks count.
#[derive(Default)]
struct Tally {
    posts: AtomicU64,
    metrics: AtomicU64,
    dropped: AtomicU64,
    subscribed: AtomicU64,
}

/// Connects one subscriber and counts what it receives until `stop`.
async fn subscriber(
    address: SocketAddr,
    subscribe: String,
    tally: Arc<Tally>,
    latency: Option<Arc<Mutex<Histogram<u64>>>>,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream).await?;
    ws.send(Message::text(subscribe)).await?;
    let mut local = Histogram::<u64>::new(3)?;
    // Registered once, before any frame: `notify_waiters` wakes only registered waiters, and a
    // `notified()` made anew each turn would miss a stop sent while a frame was being read, so
    // the subscriber would wait for a frame that never comes.
    let stopped = stop.notified();
    tokio::pin!(stopped);
    stopped.as_mut().enable();
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = &mut stopped => break,
        };
        let Some(Ok(frame)) = frame else { break };
        let Message::Text(text) = frame else { continue };
        let text = text.as_str();
        if text.starts_with("{\"type\":\"message:new\"") {
            tally.posts.fetch_add(1, Ordering::Relaxed);
            if latency.is_some() {
                if let Some(ms) = created_at_age_ms(text) {
                    let _ = local.record(ms);
                }
            }
        } else if text.starts_with("{\"type\":\"metrics:") {
            tally.metrics.fetch_add(1, Ordering::Relaxed);
        } else if text.starts_with("{\"type\":\"lagged\"") {
            let dropped = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["dropped"].as_u64())
                .unwrap_or(0);
            tally.dropped.fetch_add(dropped, Ordering::Relaxed);
        } else if text.starts_with("{\"type\":\"subscribed\"") {
            tally.subscribed.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(latency) = latency {
        latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&local)?;
    }
    Ok(())
}

/// Milliseconds since the post's `created_at` (the moment the producer sent it), read without
/// parsing the whole message.
fn created_at_age_ms(text: &str) -> Option<u64> {
    let start = text.find("\"created_at\":\"")? + "\"created_at\":\"".len();
    let end = start + text[start..].find('"')?;
    let at = chrono::DateTime::parse_from_rfc3339(&text[start..end]).ok()?;
    let age = chrono::Utc::now()
        .signed_duration_since(at)
        .num_milliseconds();
    Some(age.max(0) as u64)
}

async fn connect_all(
    server: &Server,
    n: usize,
    subscribe: &str,
    tally: &Arc<Tally>,
    latency: Option<Arc<Mutex<Histogram<u64>>>>,
    stop: &Arc<tokio::sync::Notify>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<anyhow::Result<()>>>> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tasks.push(tokio::spawn(subscriber(
            server.address,
            subscribe.to_string(),
            tally.clone(),
            latency.clone(),
            stop.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while (tally.subscribed.load(Ordering::Relaxed) as usize) < n {
        // A subscriber that could not connect or subscribe says why at once.
        if let Some(done) = tasks.iter_mut().find(|t| t.is_finished()) {
            let why = match done.await {
                Ok(Err(e)) => format!("{e:#}"),
                Ok(Ok(())) => "the server closed the connection".into(),
                Err(e) => e.to_string(),
            };
            anyhow::bail!("a subscriber did not subscribe: {why}");
        }
        anyhow::ensure!(Instant::now() < deadline, "subscribers did not all connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(tasks)
}

async fn finish(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    stop: &tokio::sync::Notify,
) {
    stop.notify_waiters();
    for t in tasks {
        let _ = t.await;
    }
}

/// Settings that let one client (every subscriber comes from this machine's address) hold `n`
/// sessions: the run measures the fan-out, not the per-client budgets (`ws.max_sessions_per_client`,
/// 100 by default, which refused the memory run's 1,000 subscribers, and
/// `http.max_connections_per_network`, 256), beside a few connections for the run's own requests.
fn sessions(n: usize) -> [(&'static str, String); 3] {
    let all = n.max(crate::config::DEFAULT_MAX_SESSIONS);
    [
        ("PULSE_WS__MAX_SESSIONS_PER_CLIENT", n.max(1).to_string()),
        ("PULSE_WS__MAX_SESSIONS", all.to_string()),
        (
            "PULSE_HTTP__MAX_CONNECTIONS_PER_NETWORK",
            (n + 64).to_string(),
        ),
    ]
}

/// `pairs` as [`Server::start`] takes them.
fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Runs both WebSocket measurements against a fresh server.
pub async fn run(run: &super::Run, args: &WsBenchArgs) -> anyhow::Result<WsReport> {
    let (redis, run_id) = (&run.redis, &run.id);
    let mut report = WsReport {
        subscribers: args.ws_subscribers,
        memory_subscribers: args.ws_memory_subscribers,
        memory_rate: args.ws_memory_rate,
        ..Default::default()
    };
    let duration = Duration::from_secs_f64(args.ws_secs);

    // Latency and fan-out: every subscriber gets every post.
    {
        let stream = format!("pulse:bench:{run_id}:ws-latency");
        let sessions = sessions(args.ws_subscribers);
        let server = Server::start(run, &stream, &borrowed(&sessions))?;
        let tally = Arc::new(Tally::default());
        let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
        let stop = Arc::new(tokio::sync::Notify::new());
        let subscribe = r#"{"type":"subscribe","topics":["posts"]}"#;
        let tasks = connect_all(
            &server,
            args.ws_subscribers,
            subscribe,
            &tally,
            Some(latency.clone()),
            &stop,
        )
        .await?;
        let started = Instant::now();
        let sent = producer::produce(
            redis,
            &stream,
            posts_only(args.ws_rate, duration, run_id, "lat"),
        )
        .await?;
        let expected = sent.posts * args.ws_subscribers as u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tally.posts.load(Ordering::Relaxed) + tally.dropped.load(Ordering::Relaxed) < expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        finish(tasks, &stop).await;
        let h = latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
        report.offered_posts_per_sec = sent.posts as f64 / sent.seconds;
        report.delivered_messages = tally.posts.load(Ordering::Relaxed);
        report.delivered_per_sec = report.delivered_messages as f64 / elapsed;
        report.dropped_messages = tally.dropped.load(Ordering::Relaxed);
        report.latency_p50_ms = h.value_at_quantile(0.50) as f64;
        report.latency_p99_ms = h.value_at_quantile(0.99) as f64;
        report.latency_max_ms = h.max() as f64;
        let _: i64 = fred::prelude::KeysInterface::del(redis, &stream).await?;
    }

    // Memory: many subscribers, each with metrics updates and a filtered post stream.
    {
        let stream = format!("pulse:bench:{run_id}:ws-memory");
        let sessions = sessions(args.ws_memory_subscribers);
        let server = Server::start(run, &stream, &borrowed(&sessions))?;
        producer::produce(
            redis,
            &stream,
            posts_only(args.ws_memory_rate, Duration::from_secs(3), run_id, "warm"),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        report.server_rss_before_mb = server.rss_mb();
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(tokio::sync::Notify::new());
        let subscribe =
            r#"{"type":"subscribe","topics":["posts","metrics"],"filter":{"platform":"reddit"}}"#;
        let tasks = connect_all(
            &server,
            args.ws_memory_subscribers,
            subscribe,
            &tally,
            None,
            &stop,
        )
        .await?;
        let peak = Arc::new(Mutex::new(report.server_rss_before_mb));
        let sampling = {
            let (peak, pid) = (peak.clone(), server.child.id());
            tokio::spawn(async move {
                loop {
                    let rss = super::rss_mb_of(pid);
                    {
                        let mut p = peak.lock().unwrap_or_else(|p| p.into_inner());
                        *p = p.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        producer::produce(
            redis,
            &stream,
            posts_only(args.ws_memory_rate, duration, run_id, "mem"),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        sampling.abort();
        report.server_rss_peak_mb = *peak.lock().unwrap_or_else(|p| p.into_inner());
        report.extra_memory_mb = report.server_rss_peak_mb - report.server_rss_before_mb;
        report.memory_metrics_updates = tally.metrics.load(Ordering::Relaxed);
        report.memory_filtered_posts = tally.posts.load(Ordering::Relaxed);
        finish(tasks, &stop).await;
        let _: i64 = fred::prelude::KeysInterface::del(redis, &stream).await?;
    }
    Ok(report)
}

fn posts_only(rate: f64, duration: Duration, run_id: &str, tag: &str) -> ProduceOptions {
    super::posts_only(rate, Some(duration), 5, format!("ws-{tag}-{run_id}-"))
}

/// The report as the rows of `docs/benchmarks.md`.
pub fn markdown(r: &WsReport) -> String {
    format!(
        "| WebSocket: XADD → `message:new` at {rate:.0} posts/s, {subs} subscribers: p50 / p99 / max | {p50:.0} / {p99:.0} / {max:.0} ms |\n\
         | WebSocket fan-out delivered ({subs} subscribers × {rate:.0} posts/s offered) | {fan:.0} messages/s ({dropped} dropped) |\n\
         | WebSocket memory: {msubs} subscribers with metrics updates and a filtered post stream ({mrate:.0} posts/s) | +{extra:.0} MB ({before:.0} → {peak:.0} MB; {updates} metrics updates, {posts} posts delivered) |",
        rate = r.offered_posts_per_sec,
        subs = r.subscribers,
        p50 = r.latency_p50_ms,
        p99 = r.latency_p99_ms,
        max = r.latency_max_ms,
        fan = r.delivered_per_sec,
        dropped = r.dropped_messages,
        msubs = r.memory_subscribers,
        mrate = r.memory_rate,
        extra = r.extra_memory_mb,
        before = r.server_rss_before_mb,
        peak = r.server_rss_peak_mb,
        updates = r.memory_metrics_updates,
        posts = r.memory_filtered_posts,
    )
}
