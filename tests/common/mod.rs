//! Test harness: every test gets its own database, stream key and ports on the real
//! PostgreSQL and Redis, so tests run in parallel and survive leftovers of earlier runs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use pulse::config::Settings;
use tokio_postgres::NoTls;

pub mod app;
pub mod event;
pub mod http_standin;
pub mod jetstream;
pub mod lists;
pub mod private_servers;
pub mod raw_http;
pub mod secured;
pub mod sql;
pub mod tuning;
#[allow(unused_imports)]
pub use app::{
    assert_metric_counted, assert_metrics_hold, http_get, http_post, listed_post_ids, metrics_text,
    spawn_app, spawn_app_tuned, spawn_app_with, spawn_app_with_options, summed, TestApp,
};
pub use event::PostEvent;
#[allow(unused_imports)]
pub use lists::*;
#[allow(unused_imports)]
pub use private_servers::{PrivatePostgres, PrivateRedis};
#[allow(unused_imports)]
pub use raw_http::{raw_request, RawResponse, WS_UPGRADE};
pub use sql::SqlValues;
#[allow(unused_imports)]
pub use tuning::{
    address_budget, authenticated, backlog_limits, database_share, key_event_budget,
    network_budget, quick_alerts, quick_scores, quick_webhooks, stalled_sockets_shut,
};

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The Redis tests use unless they start their own.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    let query = url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{db}{query}")
}

/// The fields an `invalid_request` error names, in its order.
pub fn error_fields(body: &serde_json::Value) -> Vec<&str> {
    body["error"]["details"]["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no error list in {body}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect()
}

/// A unique name part for this test.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new directory under the system's temporary one, named by [`unique`] of `prefix`.
pub fn fresh_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One test's private database and stream.
pub struct TestEnv {
    pub database: String,
    pub database_url: String,
    pub redis_url: String,
    pub stream: String,
    pub group: String,
}

impl TestEnv {
    /// A fresh database on the shared server and a fresh stream on the shared Redis.
    pub async fn new() -> TestEnv {
        Self::on(admin_url(), redis_url()).await
    }

    /// A fresh database on `pg_url`'s server and a fresh stream on `redis_url`.
    pub async fn on(pg_url: String, redis_url: String) -> TestEnv {
        pulse::telemetry::init_logging();
        let database = unique("pulse_test");
        create_database(&pg_url, &database).await;
        let stream = format!("pulse:test:{}", unique("s"));
        TestEnv {
            database_url: with_database(&pg_url, &database),
            database,
            redis_url,
            stream,
            group: "pulse".into(),
        }
    }

    /// A fresh environment whose database has Pulse's schema, for a test of the store
    /// without a server.
    pub async fn migrated() -> TestEnv {
        let env = Self::new().await;
        pulse::db::migrate(&env.database_url).await.unwrap();
        env
    }

    /// Settings pointing a Pulse at this environment, listening on a free port.
    pub fn settings(&self) -> Settings {
        let mut s = Settings::default();
        s.database.url = self.database_url.clone();
        s.database.pool_size = 4;
        s.redis.url = self.redis_url.clone();
        s.redis.stream = self.stream.clone();
        s.redis.group = self.group.clone();
        s.http.listen = "127.0.0.1:0".into();
        s.http.workers = 1;
        s.analyzer.workers = 1;
        // The lexicon keeps pipeline tests fast; the model tests opt in with `with_model`.
        s.analyzer.backend = pulse::analysis::Backend::Lexicon;
        s.ingest.claim_idle_ms = 1_000;
        s.ingest.claim_interval_ms = 500;
        s.shutdown_timeout_secs = 20;
        // Alert tests turn evaluation on; elsewhere default rules must not fire mid-test.
        s.alerts.enabled = false;
        // Pipeline tests run open (said explicitly); tests/security.rs turns authentication on.
        s.auth.open = true;
        // Tests open many connections from one address; the limits have tests of their own.
        s.limits.rate_limits = false;
        s.limits.bodies_per_client = 256;
        s.ws.max_sessions_per_client = 100_000;
        // Webhook receivers in tests listen on loopback; the SSRF tests turn this off.
        s.webhooks.allow_private_targets = true;
        s
    }

    /// The same settings as environment variables, for a Pulse child process.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("REDIS_URL".into(), self.redis_url.clone()),
            ("PULSE_STREAM".into(), self.stream.clone()),
            ("PULSE_LISTEN".into(), "127.0.0.1:0".into()),
            ("PULSE_REDIS__GROUP".into(), self.group.clone()),
            ("PULSE_HTTP__WORKERS".into(), "1".into()),
            // As the in-process servers: a group of processes at the default 16 each, beside the
            // other tests, can run the shared PostgreSQL out of connections.
            ("PULSE_DATABASE__POOL_SIZE".into(), "4".into()),
            ("PULSE_ANALYZER__WORKERS".into(), "1".into()),
            ("PULSE_ANALYZER__BACKEND".into(), "lexicon".into()),
            ("PULSE_INGEST__CLAIM_IDLE_MS".into(), "1000".into()),
            ("PULSE_INGEST__CLAIM_INTERVAL_MS".into(), "500".into()),
            ("PULSE_CONFIG".into(), "/nonexistent/pulse.toml".into()),
            ("PULSE_ALERTS__ENABLED".into(), "false".into()),
            ("PULSE_AUTH__OPEN".into(), "true".into()),
            ("PULSE_LIMITS__RATE_LIMITS".into(), "false".into()),
            (
                "PULSE_WEBHOOKS__ALLOW_PRIVATE_TARGETS".into(),
                "true".into(),
            ),
        ]
    }

    /// A Redis client for the test's own commands.
    pub async fn redis(&self) -> Client {
        pulse::streams::connect(&self.redis_url, "test")
            .await
            .expect("redis")
    }

    /// A PostgreSQL client on the test database.
    pub async fn pg(&self) -> tokio_postgres::Client {
        connect(&self.database_url).await
    }

    /// Number of stored posts.
    pub async fn post_count(&self) -> i64 {
        match connect_retry(&self.database_url).await {
            Some(c) => c
                .query_one("SELECT count(*) FROM posts", &[])
                .await
                .map(|r| r.get(0))
                .unwrap_or(-1),
            None => -1,
        }
    }

    /// Waits up to `timeout` until at least `posts` posts are stored.
    pub async fn stored(&self, posts: i64, timeout: Duration) -> bool {
        wait_until(timeout, || async { self.post_count().await >= posts }).await
    }

    /// Asserts at least `posts` posts are stored within `timeout`; how many were, and `what`
    /// (the posts meant), make the failure's message.
    pub async fn assert_stored(&self, posts: i64, timeout: Duration, what: &str) {
        assert!(
            self.stored(posts, timeout).await,
            "{} of {posts} {what} stored",
            self.post_count().await
        );
    }

    /// Waits up to `timeout` until exactly `posts` posts are stored (more would be one twice).
    pub async fn stored_exactly(&self, posts: i64, timeout: Duration) -> bool {
        wait_until(timeout, || async { self.post_count().await == posts }).await
    }

    /// Waits up to `timeout` until exactly `posts` posts are stored and the group holds no
    /// entry pending: the stream worked off, no post twice.
    pub async fn worked_off(&self, redis: &Client, posts: i64, timeout: Duration) -> bool {
        wait_until(timeout, || async {
            self.post_count().await == posts && self.pending(redis).await == 0
        })
        .await
    }

    /// Engagements stored held, waiting for their post.
    pub async fn held_engagements(&self) -> i64 {
        self.pg()
            .await
            .query_one("SELECT count(*) FROM engagements WHERE held", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1)
    }

    /// Runs retention once over raw posts and engagements older than `raw_days` (every other
    /// family kept); the rows deleted.
    pub async fn sweep_raw(&self, raw_days: u32) -> u64 {
        let pool = pulse::db::pool(&self.database_url, 2).unwrap();
        let policy = pulse::actors::retention::RetentionPolicy {
            raw_days,
            history_days: 0,
            audit_days: 0,
            rollup_days: 0,
            batch: 1,
        };
        pulse::actors::retention::sweep(&pool, &policy)
            .await
            .unwrap()
    }

    /// Marks the posts `which` (an SQL condition) as having reached Pulse nine days ago, then
    /// runs retention once over raw posts older than seven days; the rows deleted.
    pub async fn sweep_arrived_long_ago(&self, which: &str) -> u64 {
        let backdate =
            format!("UPDATE posts SET ingested_at = now() - interval '9 days' WHERE {which}");
        self.pg().await.execute(&backdate, &[]).await.unwrap();
        self.sweep_raw(7).await
    }

    /// Every entry of the dead-letter stream, oldest first.
    pub async fn dead_letters(&self, redis: &Client) -> Vec<pulse::streams::entry::RawEntry> {
        let dead: Value = redis
            .xrange(format!("{}:dead", self.stream), "-", "+", None)
            .await
            .unwrap();
        pulse::streams::reply::parse_read_reply(Value::Array(vec![Value::Array(vec![
            Value::String("dead".into()),
            dead,
        ])]))
    }

    /// The dead-letter stream as text (each letter's fields as `name=value`, one letter a
    /// line), to look for a reason or an id in.
    pub async fn dead_letters_text(&self, redis: &Client) -> String {
        let letters = self.dead_letters(redis).await;
        let lines: Vec<String> = letters
            .iter()
            .map(|letter| {
                let fields: Vec<String> = letter
                    .fields
                    .iter()
                    .map(|(name, value)| format!("{name}={}", String::from_utf8_lossy(value)))
                    .collect();
                format!("{} {}", letter.id, fields.join(" "))
            })
            .collect();
        lines.join("\n")
    }

    /// Entries the group has still to read or acknowledge (-1 when Redis does not answer):
    /// `pending` alone reads 0 between two reads while entries wait unread.
    pub async fn unfinished(&self, redis: &Client) -> i64 {
        pulse::streams::group::group_stats(redis, &self.group_settings())
            .await
            .map(|g| g.backlog())
            .unwrap_or(-1)
    }

    /// Delivers up to `count` new entries to another `consumer` of the group (made first if
    /// need be, from the stream's start), as a process that reads and then stops would; they
    /// stay pending on it.
    pub async fn read_as(&self, redis: &Client, consumer: &str, count: u64) -> Value {
        pulse::streams::group::ensure_group(redis, &self.stream, &self.group)
            .await
            .unwrap();
        redis
            .xreadgroup(
                self.group.as_str(),
                consumer,
                Some(count),
                None,
                false,
                self.stream.as_str(),
                ">",
            )
            .await
            .unwrap()
    }

    /// Appends a post event (`post_json`) to this environment's stream; its entry id.
    pub async fn xadd_post(&self, redis: &Client, id: &str, text: &str) -> String {
        xadd_event(redis, &self.stream, &post_json(id, text)).await
    }

    /// Waits up to `timeout` until the group has acknowledged every entry it was delivered.
    pub async fn drained(&self, redis: &Client, timeout: Duration) -> bool {
        wait_until(timeout, || async { self.pending(redis).await == 0 }).await
    }

    /// Entries delivered to the group and not acknowledged.
    pub async fn pending(&self, redis: &Client) -> i64 {
        pulse::streams::group::group_stats(redis, &self.group_settings())
            .await
            .map(|g| g.pending)
            .unwrap_or(-1)
    }

    /// Default settings but for this environment's stream and group: all the group's figures
    /// read.
    pub fn group_settings(&self) -> Settings {
        let mut s = Settings::default();
        s.redis.stream = self.stream.clone();
        s.redis.group = self.group.clone();
        s
    }
}

impl Drop for TestEnv {
    /// Drops the test's database and stream keys so runs leave nothing behind (best effort:
    /// a later run never depends on it, every name is unique).
    fn drop(&mut self) {
        let (server, db) = (
            with_database(&self.database_url, "postgres"),
            self.database.clone(),
        );
        let (redis_url, stream) = (self.redis_url.clone(), self.stream.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&server, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .await;
                }
                if let Ok(config) = fred::types::config::Config::from_url(&redis_url) {
                    if let Ok(redis) = fred::types::Builder::from_config(config).build() {
                        if redis.init().await.is_ok() {
                            let _: Result<i64, _> = redis
                                .del(vec![stream.clone(), format!("{stream}:dead")])
                                .await;
                            let _ = redis.quit().await;
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Connects to PostgreSQL, spawning the connection driver.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("postgres connect");
    tokio::spawn(conn);
    client
}

async fn connect_retry(url: &str) -> Option<tokio_postgres::Client> {
    for _ in 0..50 {
        if let Ok((client, conn)) = tokio_postgres::connect(url, NoTls).await {
            tokio::spawn(conn);
            return Some(client);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn create_database(server_url: &str, db: &str) {
    let admin = connect(&with_database(server_url, "postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create test database");
}

/// The JSON body of a request that must be answered with one.
pub trait FetchJson {
    async fn fetch_json<T: serde::de::DeserializeOwned>(self) -> T;
}

impl FetchJson for reqwest::RequestBuilder {
    async fn fetch_json<T: serde::de::DeserializeOwned>(self) -> T {
        let response = self.send().await.expect("the request is answered");
        response.json().await.expect("a JSON body")
    }
}

/// Asserts an answer of `status` and `body` is an error of the `expected` status with `code`,
/// in the API's error shape; `what` (the case) is the failure's message.
pub fn assert_error(
    status: u16,
    body: &serde_json::Value,
    expected: u16,
    code: &str,
    what: impl std::fmt::Display,
) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (expected, Some(code)),
        "{what}"
    );
}

/// Asserts the error answer `body` has `code` and a message that says `said`.
pub fn assert_error_says(body: &serde_json::Value, code: &str, said: &str) {
    assert_eq!(body["error"]["code"], code);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(said), "{body}");
}

/// Asserts an answer of `status` and `body` is a 400 in the API's error shape (a code, a
/// message, details) with `code` and a message that says `said`.
pub fn assert_refused(status: u16, body: &serde_json::Value, code: &str, said: &str) {
    assert_error(status, body, 400, code, body);
    assert_error_says(body, code, said);
    assert!(body["error"]["details"].is_object(), "{body}");
}

/// A request's array past its bound: `items` (one more than the bound) and then `tail`
/// elements that are no request's elements (objects with a field nothing takes). A server that
/// builds every element refuses it as JSON of the wrong shape (`invalid_json`); one that stops
/// building one element past the bound refuses it for its length, with the endpoint's own
/// error.
pub fn past_its_bound(items: Vec<serde_json::Value>, tail: usize) -> serde_json::Value {
    let unread = std::iter::repeat_n(serde_json::json!({"unread": true}), tail);
    serde_json::Value::Array(items.into_iter().chain(unread).collect())
}

/// The `content-type` of `response`.
pub fn content_type(response: &reqwest::Response) -> &str {
    response.headers()["content-type"]
        .to_str()
        .expect("a content type in ASCII")
}

/// Polls `check` until it returns true or `timeout` passes; returns whether it did.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `pulse import` of `file` as the tests run it: detected format, no mapping, quiet.
pub fn import_args(file: &std::path::Path) -> pulse::sources::import::ImportArgs {
    pulse::sources::import::ImportArgs {
        file: file.to_path_buf(),
        format: None,
        map: String::new(),
        platform: "other".into(),
        restart: false,
        complete: false,
        max_backlog: 0,
        max_backlog_secs: 0.0,
        quiet: true,
    }
}

/// The summary of `pulse import` of `file` with [`import_args`], which must succeed.
pub async fn import_file(
    settings: &Settings,
    file: &std::path::Path,
) -> pulse::sources::import::ImportSummary {
    pulse::sources::import::run(settings, import_args(file))
        .await
        .unwrap()
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A valid post event as JSON (see [`PostEvent`] for what it holds).
pub fn post_json(id: &str, text: &str) -> String {
    PostEvent::new(id, text).to_string()
}

/// XADDs `{"event": json}` and returns the entry id.
pub async fn xadd_event(redis: &Client, stream: &str, json: &str) -> String {
    redis
        .xadd(stream, false, None::<()>, "*", vec![("event", json)])
        .await
        .expect("xadd")
}

/// Appends an entry of any `fields` to `stream`, as a producer that writes its own would; its
/// entry id.
pub async fn xadd_fields<V: Into<fred::types::Value>>(
    redis: &Client,
    stream: &str,
    fields: Vec<(&str, V)>,
) -> String {
    let fields: Vec<(&str, fred::types::Value)> =
        fields.into_iter().map(|(k, v)| (k, v.into())).collect();
    redis
        .xadd(stream, false, None::<()>, "*", fields)
        .await
        .expect("xadd")
}

/// XADDs many posts `prefix-0..n` in pipelined chunks, retrying chunks that fail (a Redis
/// restart); a retried chunk may add an entry twice, which Pulse must absorb.
pub async fn xadd_posts(redis: &Client, stream: &str, prefix: &str, range: std::ops::Range<usize>) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(500) {
        loop {
            let pipeline = redis.pipeline();
            for i in chunk {
                let json = post_json(
                    &format!("{prefix}-{i}"),
                    "The new phone is great, I love it",
                );
                let _: Result<(), _> = pipeline
                    .xadd(stream, false, None::<()>, "*", vec![("event", json)])
                    .await;
            }
            let sent: Result<Vec<Value>, _> = pipeline.all().await;
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A `pulse serve` child process with its log captured.
pub struct PulseProcess {
    pub child: Child,
    pub address: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl PulseProcess {
    /// Starts the real binary with `env` and waits for it to listen.
    pub fn start(env: &[(String, String)]) -> PulseProcess {
        Self::start_with_args(env, &["serve"])
    }

    /// Starts the real binary with `args` (a `serve` command line) and `env`, and waits for
    /// it to listen.
    pub fn start_with_args(env: &[(String, String)], args: &[&str]) -> PulseProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(args)
            .envs(env.iter().cloned())
            .env("PULSE_LOG", "info")
            .env("PULSE_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pulse");
        let stdout = child.stdout.take().expect("stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
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
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("pulse did not start listening: {:?}", log.lock().unwrap()));
        PulseProcess {
            child,
            address: addr.parse().expect("address"),
            log,
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the process to exit; returns its exit code (None if killed by a signal).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                panic!("pulse did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The captured log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for PulseProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum of every series of metric `name` on a process's `/metrics` (0 when unreachable).
pub async fn metric(process: &PulseProcess, name: &str) -> f64 {
    metric_at(process.address, name, "").await
}

/// Sum of the series of metric `name` whose labels contain `label` (`""`: every series) on
/// the `/metrics` of the server at `addr` (0 when unreachable).
pub async fn metric_at(addr: SocketAddr, name: &str, label: &str) -> f64 {
    let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
