//! Layered configuration: built-in defaults, then `pulse.toml` (or the file named by
//! `PULSE_CONFIG`), then `PULSE_*` environment variables. The conventional `DATABASE_URL` and
//! `REDIS_URL` are honoured, and `PULSE_STREAM` / `PULSE_LISTEN` are short forms of the two
//! settings people change most.

use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod digests;
mod export;
mod fingerprint;
mod search;
mod sources;
mod stories;
mod topics;
pub use digests::{DigestSettings, MAX_CATCH_UP};
pub use export::ExportSettings;
pub use search::SearchSettings;
pub use sources::{
    FeedSettings, JetstreamSettings, MastodonSettings, RedditSettings, SourceKind, SourceSettings,
    PUBLIC_JETSTREAMS,
};
pub use stories::StorySettings;
pub use topics::{TopicSettings, MIN_TRAINING_LABELS};

/// Which backend the analyzer pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The built-in lexicon analyzer: fast, no model files.
    Lexicon,
    /// Transformer model bundles run with ONNX Runtime.
    Onnx,
}

/// Default cap on concurrent WebSocket sessions (`ws.max_sessions`).
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default messages queued per session before the oldest posts are dropped
/// (`ws.queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1_024;
/// Default largest client frame or message, in bytes (`ws.max_frame_bytes`).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// How often the server pings a client (the default of `ws.heartbeat_secs`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a client may stay silent, pongs included, before it is disconnected (the
/// default of `ws.client_timeout_secs`).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings renamed, as (former name, name): the former is still read.
const FORMER_NAMES: [(&str, &str); 1] = [("ingest.block_ms", "ingest.idle_poll_ms")];

/// Every setting of a Pulse process. `docs/configuration.md`'s table mirrors this struct (`tests/docs.rs` checks it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub http: HttpSettings,
    pub ingest: IngestSettings,
    pub analyzer: AnalyzerSettings,
    pub store: StoreSettings,
    pub metrics: MetricsSettings,
    pub alerts: AlertSettings,
    pub webhooks: WebhookSettings,
    pub email: EmailSettings,
    pub ws: WsSettings,
    pub virality: ViralitySettings,
    pub stories: StorySettings,
    pub topics: TopicSettings,
    pub export: ExportSettings,
    pub digests: DigestSettings,
    pub search: SearchSettings,
    pub fanout: FanoutSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub traces: TraceSettings,
    /// Real platforms and feeds read into the stream by `pulse serve` (and, one at a time, by
    /// `pulse ingest NAME`).
    pub sources: Vec<SourceSettings>,
    /// Longest time SIGTERM waits, in seconds, for the export and digest workers to stop and
    /// in-flight batches to commit, together; the flush of in-memory aggregates (2 s at least)
    /// and the HTTP server's stop (5 s) come after it.
    pub shutdown_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub migrate_on_start: bool,
}

/// Cross-process fan-out of live messages over Redis pub/sub, so that a WebSocket client of
/// any process of a group sees what every process produced (see `ws::fanout`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct FanoutSettings {
    /// Publish this process's live messages and deliver the other processes' ones.
    pub enabled: bool,
    /// The pub/sub channel; empty means `<stream>:fanout`, so groups on other streams of the
    /// same Redis stay apart.
    pub channel: String,
    /// Batches of messages waiting to be published; past it they are dropped and counted,
    /// so a slow or absent Redis never holds up the pipeline.
    pub queue_capacity: usize,
    /// Longest wait for one PUBLISH, in milliseconds; its messages count as dropped after.
    pub publish_timeout_ms: u64,
}

impl Default for FanoutSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            channel: String::new(),
            queue_capacity: 1_024,
            publish_timeout_ms: 2_000,
        }
    }
}

/// PostgreSQL connections. The pipeline and the HTTP API have pools of their own, so no
/// amount of API traffic can take the connections the pipeline commits through, and API
/// queries run under a statement timeout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    pub url: String,
    /// Connections of the pipeline (store, alerter, virality tracker, retention).
    pub pool_size: usize,
    /// Connections the HTTP API may use at once: also how many API queries run at once.
    /// 0 means half the cores (at least one), so API queries can never take every core the
    /// pipeline needs.
    pub api_pool_size: usize,
    /// Longest an API query may run before PostgreSQL cancels it (504 `query_timeout`), in
    /// milliseconds.
    pub api_statement_timeout_ms: u64,
    /// Longest an API request waits for a free connection before it is answered 503 `busy`,
    /// in milliseconds.
    pub api_wait_ms: u64,
    /// Largest share of the time (0 to 1) an API connection may be busy: after holding a
    /// connection for `t`, a request leaves it unused for `t × (1/share − 1)`, so however hard
    /// the API is called its queries take at most this share of a core per connection.
    pub api_busy_share: f64,
    /// Longest one of our sessions may sit idle inside a transaction before PostgreSQL ends
    /// it, in milliseconds (0: never). A process paused or starved between two statements of
    /// a transaction holds that transaction's locks (rollup rows, post locks) until then, and
    /// every other process writing the same rows waits on it; ending the session lets them
    /// go on and the paused process retry. Our transactions send their statements back to
    /// back, so only a stalled process comes near it.
    pub idle_transaction_timeout_ms: u64,
}

/// Redis connection and the stream Pulse consumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    pub url: String,
    /// Stream key producers append to.
    pub stream: String,
    /// Consumer group shared by every Pulse process reading the stream.
    pub group: String,
    /// Consumer name; empty means `<host>-<pid>-<random>`, unique per process.
    pub consumer: String,
    /// Trim stream entries the group has acknowledged (off when other groups read the stream).
    pub trim_acknowledged: bool,
    /// Approximate cap on the dead-letter stream's length; the oldest letters go first.
    pub dead_letter_max_len: i64,
    /// Cap on the dead-letter stream's memory in Redis, in bytes; past it the oldest letters
    /// are trimmed (checked every few seconds).
    pub dead_letter_max_bytes: u64,
    /// Consumers idle this long with nothing pending are removed from the group, in seconds.
    pub stale_consumer_secs: u64,
}

/// The HTTP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Address to bind; port 0 picks a free port (the bound address is logged).
    pub listen: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Most events one `POST /api/v1/events` request may carry.
    pub max_events_per_request: usize,
    /// The built dashboard served at `/` (relative paths resolve against the working directory).
    pub dashboard_dir: String,
    /// Origins (`https://host[:port]`) other sites may call the API and open WebSockets from;
    /// `*` allows any. Empty allows only the dashboard's own origin.
    pub cors_origins: Vec<String>,
    /// The `Content-Security-Policy` sent with every response.
    pub content_security_policy: String,
    /// Host names this server answers to besides IP addresses and `localhost` (`*.example.com`
    /// matches subdomains, `*` any name). A request naming another Host is refused with 400
    /// `host_not_allowed`: it stops DNS rebinding, where a page on another site reaches this
    /// server under that site's name.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client
    /// for rate limits and the audit log; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Connections one client network (/24, /64) may hold open at once; the next one's first
    /// request is answered 429 and the connection closed. Trusted proxies are not counted. 0: no
    /// cap.
    pub max_connections_per_network: usize,
}

/// Who may use the API. Without a secret `serve` refuses to start unless `open` says the
/// server is meant to run without authentication (`serve --demo` does, when no secret is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Serve everything to everyone, as an admin. Logged loudly and shown on the dashboard.
    pub open: bool,
    /// HMAC key signing access tokens (HS256), at least 32 bytes; every process of a group
    /// must share it.
    pub jwt_secret: Secret,
    /// Lifetime of an access token, in seconds.
    pub token_ttl_secs: u64,
    /// `iss` of issued tokens; tokens from another issuer are refused.
    pub issuer: String,
    /// How often each process re-reads which keys exist and which are revoked, in seconds:
    /// the longest a key revoked by another process stays usable here.
    pub key_refresh_secs: u64,
}

/// A configured secret: deserialized like a string, never printed by `Debug`.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret's text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(unset)")
        } else {
            f.write_str("Secret([redacted])")
        }
    }
}

/// Request rate and size limits: what one client can cost the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Apply the rate limits (size limits always apply).
    pub rate_limits: bool,
    /// Sustained requests per second per API key (or per client network, the address's /24 or
    /// /64, on an open server).
    pub per_key_per_sec: f64,
    /// Requests per key allowed in a burst above the sustained rate.
    pub per_key_burst: f64,
    /// Sustained requests per second per client address to the endpoints that need no key
    /// (token exchange, documentation) and for requests whose credentials fail.
    pub per_ip_per_sec: f64,
    /// Burst per client address.
    pub per_ip_burst: f64,
    /// Sustained requests per second of the same kinds per client network (the address's
    /// /24 or /64), whichever of its addresses they come from.
    pub per_network_per_sec: f64,
    /// Burst per client network.
    pub per_network_burst: f64,
    /// Sustained events per second one key may append through `POST /api/v1/events`.
    pub per_key_events_per_sec: f64,
    /// Events per key allowed in a burst above that rate.
    pub per_key_events_burst: f64,
    /// Largest request body of a caller with credentials, in bytes (bodies of `POST
    /// /api/v1/events` excepted); without credentials (the token exchange), 16 KiB.
    pub max_body_bytes: usize,
    /// Largest body of `POST /api/v1/events`, in bytes.
    pub max_events_body_bytes: usize,
    /// Deepest nesting of arrays and objects a JSON body may have.
    pub max_json_depth: usize,
    /// Longest a request body may take to arrive, in seconds; a slower one is answered 408
    /// `body_timeout` and its connection closed.
    pub body_timeout_secs: u64,
    /// Request bodies one client (a key, or a network without one) may be sending at once.
    pub bodies_per_client: usize,
    /// Bytes of request bodies one client may have held in memory at once.
    pub body_memory_per_client_bytes: usize,
    /// Bytes of request bodies held in memory at once by every client together; past it a
    /// request is answered 503 `busy`.
    pub body_memory_bytes: usize,
    /// Share of the API's connection time (each use and the rest after it) one caller may
    /// take on average: one caller's slow reads cannot keep the API's few connections from
    /// every other caller. Past it, 429 until its debt is paid back.
    pub per_caller_db_share: f64,
    /// Seconds of connection time, per connection of the API's pool, a caller may take in a
    /// burst above that share.
    pub per_caller_db_burst_secs: f64,
    /// Bytes of request bodies one client's audit records keep a day (in each process); past
    /// it a record keeps the body's size and SHA-256 instead. The log is kept for
    /// `store.audit_retention_days`, and a key sending large bodies that fail would otherwise
    /// add 16 KiB of it a request.
    pub audit_payload_bytes_per_day: usize,
}

/// The stream reader.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestSettings {
    /// Most entries fetched by one XREADGROUP.
    pub read_batch: usize,
    /// Most entries read but not yet committed and acknowledged (the credit limit).
    pub max_in_flight: usize,
    /// Most batches read but not yet committed and acknowledged. When all are busy the reader
    /// waits, so entries arriving meanwhile are read as one bigger batch rather than many
    /// small ones that each pay a statement (8 × `read_batch` = `max_in_flight` by default).
    pub max_batches_in_flight: usize,
    /// Longest pause between two reads of a stream with nothing new, in milliseconds: the
    /// most a post that ends an idle spell waits to be read. (Reads never block in Redis: a
    /// blocking read returns its entry whole, however large.)
    pub idle_poll_ms: u64,
    /// Entries pending longer than this on another consumer are claimed, in milliseconds.
    pub claim_idle_ms: u64,
    /// How often to look for such entries, in milliseconds.
    pub claim_interval_ms: u64,
    /// An entry delivered more times than this goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// Largest stream entry (field names and values together) read whole, in bytes. A larger
    /// one is read as a truncated copy and dead-lettered with its size, so no producer can
    /// make a read hold more than about `read_batch` times this. The default is the largest
    /// event the ingester takes (`MAX_EVENT_BYTES`, 64 KiB) and 4 KiB for the entry's other
    /// fields: a larger entry is refused whatever is read of it, and read whole it was held
    /// (and copied for its dead letter) in full.
    pub max_entry_bytes: usize,
    /// Most fields (name and value pairs) a stream entry may have; an entry with more is read
    /// as a copy of its first few and dead-lettered, like an oversize one.
    pub max_entry_fields: usize,
    /// Entries the consumer group may have to read or acknowledge before `POST
    /// /api/v1/events` answers 503 `busy` with `Retry-After` (0: never): a bound on Redis's
    /// memory, where `max_backlog_secs` bounds the delay.
    pub max_backlog: u64,
    /// Seconds the oldest entry the group has not acknowledged may have waited before `POST
    /// /api/v1/events` answers every producer 503 `busy` with `Retry-After` and sources and
    /// `pulse import` pause (0: never). Long enough for Redis to hold a short PostgreSQL
    /// outage.
    pub max_backlog_secs: f64,
    /// Bytes the entries the group has to read or acknowledge may hold in Redis (the stream's
    /// `MEMORY USAGE` in the share of its entries that are backlog) before `POST /api/v1/events` answers 503 `busy` and sources and `pulse
    /// import` pause (0: never). `max_backlog` counts entries, and an entry may be 64 KiB or a
    /// hundred bytes: while PostgreSQL is away, this is what bounds Redis's memory.
    pub max_backlog_bytes: u64,
    /// The delay, in seconds, past which the HTTP intake shares what the group drains between
    /// the producers that ask, and that it then holds the delay near (0: never): each may
    /// append at most its max-min fair share, and one asking more gets 503 `busy` (`reason`
    /// `share`). See [`crate::http::api::events::fair_share::Controller`].
    pub fair_share_after_secs: f64,
    /// Producers that may delete and engage with posts other producers stored first: each
    /// producer (`key:<key id>`, `source:<name>`, `import`, `http`, `stream`) maps to the
    /// owners it may act for, `*` for every one. A producer always acts for its own posts.
    pub producer_trust: std::collections::BTreeMap<String, Vec<String>>,
    /// Seconds an engagement whose post is not stored yet is held for it, uncounted; then
    /// it is dropped and counted as refused (`unknown_post`).
    pub unknown_post_hold_secs: u64,
}

/// The analyzer worker pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyzerSettings {
    /// `onnx` (transformer bundles) or `lexicon`.
    pub backend: Backend,
    /// Worker threads (one ONNX session each); 0 means one per core.
    pub workers: usize,
    /// Model bundle directories for the onnx backend; the first bundle providing a field wins.
    pub bundles: Vec<PathBuf>,
    /// Bundles of the multilingual model that analyses posts not in English (onnx backend);
    /// empty marks such posts unsupported. Defaults to the bundle `scripts/models.sh` builds
    /// (`PULSE_MULTILINGUAL_MODEL_DIR` when set) when it is there.
    pub multilingual_bundles: Vec<PathBuf>,
    /// Path of `libonnxruntime.so`; unset means the `ORT_DYLIB_PATH` environment variable.
    pub onnxruntime: Option<PathBuf>,
    /// Threads each session uses inside one operator.
    pub intra_threads: usize,
    /// Most texts per inference call (B).
    pub batch_size: usize,
    /// How long the ingester waits to fill a batch of `batch_size` posts (T), in milliseconds.
    pub batch_wait_ms: u64,
    /// Token limit per text; 0 keeps the bundle's own `max_length`.
    pub max_length: usize,
    /// Whether ONNX Runtime keeps its CPU memory arena. The arena never gives memory back, so
    /// with batches of varying shape resident memory ratchets up to the largest block it has
    /// ever had to carve; off (the default), each run's buffers go back to the allocator.
    pub memory_arena: bool,
    /// When entries are older than this many seconds on arrival, new posts go to the lexicon
    /// so Pulse never falls further behind; 0 turns the fallback off.
    pub fallback_lag_secs: f64,
    /// The model takes over again once arriving entries are at most this many seconds old.
    pub recover_lag_secs: f64,
    /// Largest share (0 to 1) of one analyzer worker's time `POST /api/v1/analyze` may take:
    /// after a chunk of its texts took `t`, the next waits `t × (1/share − 1)`, and none runs
    /// while the pipeline is behind, so the pipeline always comes first.
    pub api_share: f64,
    /// Longest an analysis request waits for its turn before it is answered 503 `busy`, in
    /// milliseconds.
    pub api_wait_ms: u64,
    /// How often each process looks for new sentiment labels to calibrate on, and for another
    /// calibration put in use, in milliseconds; 0 turns calibration off (none is trained or
    /// applied).
    pub calibration_every_ms: u64,
    /// The newest sentiment labels a calibration is trained on.
    pub calibration_labels: usize,
    /// Shortest time between the starts of two calibration trainings, in milliseconds: labels
    /// given meanwhile wait for the next (a training reads every labelled post again).
    pub calibration_train_gap_ms: u64,
}

impl AnalyzerSettings {
    /// The bundled model, as `scripts/models.sh` builds it (`PULSE_MODEL_DIR` when set).
    pub fn default_bundle() -> PathBuf {
        match std::env::var_os("PULSE_MODEL_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(".pulse/models/minilm-tweets-l4-fp32"),
        }
    }

    /// The bundled multilingual model when it has been built (`PULSE_MULTILINGUAL_MODEL_DIR`
    /// when set, which must then exist).
    pub fn default_multilingual_bundles() -> Vec<PathBuf> {
        match std::env::var_os("PULSE_MULTILINGUAL_MODEL_DIR") {
            Some(dir) if !dir.is_empty() => vec![PathBuf::from(dir)],
            _ => {
                let dir = PathBuf::from(".pulse/models/e5-multilingual-int8");
                if dir.join("pulse-model.json").is_file() {
                    vec![dir]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// The PostgreSQL writer and retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    /// Raw posts and engagements are deleted this many days after they reached Pulse;
    /// 0 keeps them forever.
    pub retention_days: u32,
    /// Resolved alerts, finished webhook deliveries, finished cascades and their predictions
    /// are deleted this many days after they ended; 0 keeps them forever.
    pub history_retention_days: u32,
    /// Audit records are deleted this many days after they were written; 0 keeps them forever.
    pub audit_retention_days: u32,
    /// Per-minute metric rollups are deleted this many days after their minute; 0 keeps them
    /// forever.
    pub rollup_retention_days: u32,
    /// How often retention runs, in seconds.
    pub retention_interval_secs: u64,
    /// Rows deleted per retention statement, so deletes never hold long locks.
    pub retention_batch: i64,
}

/// OpenTelemetry traces, exported over OTLP/HTTP (protobuf) to a collector: each HTTP request
/// and each post's path through the pipeline (read, analyse, store, acknowledge, publish) as
/// spans. `OTEL_EXPORTER_OTLP_HEADERS` adds headers (a vendor's token), `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` describe the process, as everywhere else.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP base URL, e.g. `http://localhost:4318`; spans are sent to
    /// `<endpoint>/v1/traces`. Empty turns traces off, which costs nothing.
    pub otlp_endpoint: String,
    /// Share (0 to 1) of new traces recorded: of HTTP requests, and of posts that arrive without
    /// a caller's trace. A post or request that continues a caller's sampled trace is recorded
    /// whatever the share, when `follow_incoming` is on.
    pub sample_ratio: f64,
    /// Continue the trace a caller names: the W3C `traceparent` header of an HTTP request, and a
    /// stream entry's `traceparent` field (the HTTP intake writes it, so a post's spans sit
    /// under the request that sent it). Off: every request and post starts a trace of its own.
    pub follow_incoming: bool,
    /// Longest a finished span waits before it is sent, in milliseconds.
    pub export_interval_ms: u64,
    /// Finished spans held for sending; past it new ones are dropped (with a warning in the
    /// log), so a slow or absent collector never holds up the pipeline.
    pub max_queue_spans: usize,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            sample_ratio: 0.1,
            follow_incoming: true,
            export_interval_ms: 5_000,
            max_queue_spans: 8_192,
        }
    }
}

/// Windowed metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// A post with churn risk at or above this counts as high-churn.
    pub high_churn_threshold: f32,
    /// Live metrics snapshots pushed to subscribers per second (0 turns them off).
    pub updates_per_sec: f64,
    /// Keys of each producer-named dimension (city, country, product, channel, language) that
    /// get rollups of their own per day; posts with further keys that day are counted under
    /// `(other)`, as are a batch's keys of the days past those it asks about at once (see
    /// `db::rollup_keys`).
    pub max_keys_per_dimension: usize,
}

/// Alert evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertSettings {
    /// Evaluate alert rules in this process.
    pub enabled: bool,
    /// How often rules are evaluated, in seconds.
    pub evaluate_every_secs: f64,
    /// An open alert whose condition stays clear this long resolves itself, in seconds.
    pub resolve_after_secs: u64,
    /// Most alerts of one rule open at once (at least 1). A rule that watches every key of a
    /// dimension fires one alert per key, and producers name the keys: without a bound, a
    /// stream naming a thousand new products fires a thousand alerts into every channel.
    /// Further keys whose condition holds fire once alerts of the rule resolve, the furthest
    /// past the threshold first.
    pub max_open_per_rule: usize,
}

/// Webhook delivery of alerts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// A delivery that failed this many times is given up (`dead`).
    pub max_attempts: u32,
    /// First retry delay, in milliseconds; it doubles per attempt, with jitter.
    pub base_delay_ms: u64,
    /// Longest retry delay, in seconds.
    pub max_delay_secs: u64,
    /// Timeout of one delivery request, in seconds.
    pub timeout_secs: u64,
    /// How often due deliveries are looked for, in milliseconds.
    pub poll_ms: u64,
    /// Let webhooks reach loopback, private, link-local and other internal addresses (for
    /// receivers on the same network); off, only public addresses are reached. Logged when on.
    pub allow_private_targets: bool,
    /// The dashboard's address as people reach it, for the links in Slack, Teams and PagerDuty
    /// messages.
    pub dashboard_url: String,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on this machine (a loopback host).
    None,
}

/// The SMTP relay email channels send through; email channels are refused until `smtp_host`
/// is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: EmailTls,
    /// Empty: no authentication.
    pub username: String,
    pub password: Secret,
    /// The sender, as `Name <address>` or a bare address.
    pub from: String,
    /// A PEM file of extra root certificates, for a relay with a private CA.
    pub ca_file: String,
    /// Timeout of one SMTP exchange, in seconds.
    pub timeout_secs: u64,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 587,
            tls: EmailTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "Pulse <pulse@localhost>".into(),
            ca_file: String::new(),
            timeout_secs: 10,
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay_ms: 1_000,
            max_delay_secs: 600,
            timeout_secs: 10,
            poll_ms: 500,
            allow_private_targets: false,
            dashboard_url: "http://localhost:8080".into(),
        }
    }
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            evaluate_every_secs: 10.0,
            resolve_after_secs: 300,
            max_open_per_rule: 20,
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            high_churn_threshold: 0.6,
            updates_per_sec: 2.0,
            max_keys_per_dimension: 1_000,
        }
    }
}

/// WebSocket subscribers (`GET /ws`): admission, per-session limits and liveness.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WsSettings {
    /// Most concurrent sessions; further upgrades get 503 so a flood of sockets cannot
    /// exhaust memory or file descriptors.
    pub max_sessions: usize,
    /// Messages queued per session before the oldest posts are dropped (and counted in a
    /// `lagged` message); bounds what one slow subscriber can hold.
    pub queue_capacity: usize,
    /// Largest frame (and reassembled message) a client may send, in bytes; larger closes the
    /// socket with 1009.
    pub max_frame_bytes: usize,
    /// Most topics one session may subscribe to at once.
    pub max_topics_per_session: usize,
    /// Interval between server pings, in seconds.
    pub heartbeat_secs: u64,
    /// A session that hears nothing from its client for this long is closed, in seconds.
    pub client_timeout_secs: u64,
    /// Bytes of messages queued per session; past it the oldest posts are dropped, as past
    /// `queue_capacity`.
    pub max_queued_bytes: usize,
    /// A session whose client has taken nothing it was sent for this long is closed (its
    /// connection shut), in seconds.
    pub write_timeout_secs: u64,
    /// The kernel's send buffer of each session's connection, in bytes (0: the kernel's own,
    /// which grows to megabytes): what a client that stops reading leaves queued in the
    /// kernel, and how soon the stall is seen.
    pub send_buffer_bytes: usize,
    /// Concurrent sessions per client: per key, or per network (/24, /64) without one.
    pub max_sessions_per_client: usize,
    /// Posts of committed batches waiting for the broadcaster to deliver them live. Its work
    /// grows with sessions times posts on one thread; past this, the oldest waiting batches
    /// are not delivered live (the sessions get `lagged` and catch up from the store), so
    /// what waits stays bounded whatever the post rate.
    pub max_pending_posts: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            http: HttpSettings::default(),
            ingest: IngestSettings::default(),
            analyzer: AnalyzerSettings::default(),
            store: StoreSettings::default(),
            metrics: MetricsSettings::default(),
            alerts: AlertSettings::default(),
            webhooks: WebhookSettings::default(),
            email: EmailSettings::default(),
            ws: WsSettings::default(),
            virality: ViralitySettings::default(),
            stories: StorySettings::default(),
            topics: TopicSettings::default(),
            export: ExportSettings::default(),
            digests: DigestSettings::default(),
            search: SearchSettings::default(),
            fanout: FanoutSettings::default(),
            auth: AuthSettings::default(),
            limits: LimitSettings::default(),
            traces: TraceSettings::default(),
            sources: Vec::new(),
            shutdown_timeout_secs: 30,
            migrate_on_start: true,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/pulse".into(),
            pool_size: 16,
            api_pool_size: 0,
            api_statement_timeout_ms: 5_000,
            api_wait_ms: 2_000,
            api_busy_share: 0.25,
            idle_transaction_timeout_ms: 5_000,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            stream: "pulse:events".into(),
            group: "pulse".into(),
            consumer: String::new(),
            trim_acknowledged: true,
            dead_letter_max_len: 100_000,
            dead_letter_max_bytes: 64 * 1024 * 1024,
            stale_consumer_secs: 3_600,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            max_events_per_request: 1_000,
            dashboard_dir: "frontend/dist".into(),
            cors_origins: Vec::new(),
            content_security_policy: DEFAULT_CSP.into(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            max_connections_per_network: 256,
        }
    }
}

/// The dashboard needs scripts and styles from its own origin (styles also inline: the
/// charts set style attributes), images inline as data URLs, and its own WebSocket. Nothing
/// may frame it.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; \
    font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
    object-src 'none'";

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            open: false,
            jwt_secret: Secret::default(),
            token_ttl_secs: 3_600,
            issuer: "pulse".into(),
            key_refresh_secs: 5,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            rate_limits: true,
            per_key_per_sec: 100.0,
            per_key_burst: 200.0,
            per_ip_per_sec: 5.0,
            per_ip_burst: 20.0,
            per_network_per_sec: 20.0,
            per_network_burst: 80.0,
            per_key_events_per_sec: 1_000.0,
            per_key_events_burst: 2_000.0,
            max_body_bytes: 1024 * 1024,
            max_events_body_bytes: 8 * 1024 * 1024,
            max_json_depth: 32,
            body_timeout_secs: 10,
            bodies_per_client: 4,
            body_memory_per_client_bytes: 8 * 1024 * 1024,
            body_memory_bytes: 32 * 1024 * 1024,
            per_caller_db_share: 0.5,
            per_caller_db_burst_secs: 30.0,
            audit_payload_bytes_per_day: 4 * 1024 * 1024,
        }
    }
}

/// Values Redis's Lua holds on its stack at most (`LUAI_MAXCSTACK`).
pub const LUA_STACK_VALUES: usize = 8_000;

/// The most `ingest.max_entry_fields` may be. A dead letter carries its entry's fields, a name
/// and a value each, beside eight of its own, and the dead-letter script (in
/// `streams::group`) unpacks them onto Lua's stack at once with `redis.call` and the XADD's
/// six words: past about 3,990 fields the script fails on every try, and the batch holding
/// such an entry is never acknowledged. The largest letter, 2 × (1,900 + 8) + 7 = 3,823
/// values, keeps within half the stack.
pub const MAX_ENTRY_FIELDS_CEILING: usize = 1_900;

impl IngestSettings {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_entry_fields > MAX_ENTRY_FIELDS_CEILING {
            return Err(format!(
                "ingest.max_entry_fields must be at most {MAX_ENTRY_FIELDS_CEILING}, not {}: \
                 a dead letter holds the entry's fields, and Redis's Lua cannot take more",
                self.max_entry_fields
            ));
        }
        Ok(())
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            read_batch: 500,
            max_in_flight: 4_000,
            max_batches_in_flight: 8,
            idle_poll_ms: 20,
            claim_idle_ms: 30_000,
            claim_interval_ms: 5_000,
            max_deliveries: 5,
            max_entry_bytes: crate::models::event::MAX_EVENT_BYTES + 4 * 1024,
            max_entry_fields: 16,
            max_backlog: 50_000,
            max_backlog_secs: 300.0,
            max_backlog_bytes: 512 * 1024 * 1024,
            fair_share_after_secs: 1.0,
            producer_trust: crate::models::producer::default_trust(),
            unknown_post_hold_secs: 300,
        }
    }
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Onnx,
            workers: 0,
            bundles: vec![Self::default_bundle()],
            multilingual_bundles: Self::default_multilingual_bundles(),
            onnxruntime: None,
            intra_threads: 1,
            batch_size: 32,
            batch_wait_ms: 5,
            max_length: 0,
            memory_arena: false,
            fallback_lag_secs: 10.0,
            recover_lag_secs: 2.0,
            api_share: 0.25,
            api_wait_ms: 2_000,
            calibration_every_ms: 2_000,
            calibration_labels: 2_000,
            calibration_train_gap_ms: 60_000,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            retention_days: 7,
            history_retention_days: 90,
            audit_retention_days: 365,
            rollup_retention_days: 400,
            retention_interval_secs: 300,
            retention_batch: 5_000,
        }
    }
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_topics_per_session: crate::models::live::Topic::ALL.len(),
            heartbeat_secs: HEARTBEAT_INTERVAL.as_secs(),
            client_timeout_secs: CLIENT_TIMEOUT.as_secs(),
            max_queued_bytes: 256 * 1024,
            write_timeout_secs: 30,
            send_buffer_bytes: 256 * 1024,
            max_sessions_per_client: 100,
            max_pending_posts: 10_000,
        }
    }
}

/// The virality engine: live cascades, predictions, thresholds and live updates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ViralitySettings {
    /// Let this process run the virality tracker. One process of those sharing a database
    /// runs it at a time (it holds a PostgreSQL advisory lock); the others stand by.
    pub enabled: bool,
    /// How often a standing-by process tries to take the tracker over, in milliseconds: the
    /// longest the tracker stays without a process after its process died.
    pub takeover_interval_ms: u64,
    /// How often the tracker reads newly committed engagements from PostgreSQL, in
    /// milliseconds.
    pub feed_interval_ms: u64,
    /// How often changed cascades are rescored and written, in milliseconds.
    pub score_interval_ms: u64,
    /// How often the tracker's process records newly finished cascades in their authors'
    /// track records (which reach forecasts read), in milliseconds.
    pub author_records_interval_ms: u64,
    /// How long after the tracker wrote changed cascades their shares are recorded in their
    /// authors' track records, in milliseconds (0: only every `author_records_interval_ms`):
    /// forecasts read the shares stored a moment ago, not as they were up to a minute before.
    pub author_records_settle_ms: u64,
    /// How often the tracker's process refits the reach forecast on each platform's finished
    /// cascades, in seconds (0: never; forecasts keep the shipped model).
    pub forecast_refit_interval_secs: u64,
    /// Finished cascades a platform needs before its forecast is refitted on them.
    pub forecast_refit_min_cascades: u64,
    /// A cascade with no engagement for this long (wall clock) is finished and leaves memory,
    /// in seconds.
    pub inactive_expiry_secs: u64,
    /// A finished cascade that gets an engagement within this long of its last one is taken
    /// up again from its stored engagements, so a burst after a quiet hour (common: most real
    /// cascades have one) adds to the whole tree instead of starting a new one; in seconds,
    /// 0 never.
    pub revive_window_secs: u64,
    /// Most cascades held in memory; past it the least recently active of the producer
    /// holding the most are finished first.
    pub max_cascades: usize,
    /// Most shares kept per cascade tree; further shares are counted only.
    pub max_tracked_shares: usize,
    /// Most shares kept in every tree together: past it the least recently active cascades of
    /// the producer keeping the most are finished first (each cap alone allows billions of
    /// shares).
    pub max_total_shares: usize,
    /// A `virality:update` is published when a post's score moved by at least this many
    /// points since the last one (0..100).
    pub publish_step: f64,
    /// A prediction is added to a post's history when its score moved by at least this many
    /// points, or its predicted final size by 10%.
    pub history_step: f64,
    /// Coverage of the confidence interval.
    pub interval_level: f64,
    /// Probability at or above which a post is classified viral.
    pub classify_probability: f64,
    /// Quantile of final share counts that defines viral (0.99: top 1%), of each producer's
    /// finished cascades per platform.
    pub threshold_quantile: f64,
    /// Finished cascades a producer needs on a platform before its threshold there is learned
    /// from them; until then the platform's (the median of its producers'), else the built-in
    /// calibration's, applies.
    pub threshold_min_history: i64,
    /// A fixed viral threshold (final shares) for every platform; 0 learns it from history.
    pub threshold_shares: f64,
    /// Window of engagement velocity and acceleration, in seconds (whole minutes).
    pub momentum_window_secs: u64,
}

impl Default for ViralitySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            takeover_interval_ms: 2_000,
            feed_interval_ms: 250,
            score_interval_ms: 1_000,
            author_records_interval_ms: 60_000,
            author_records_settle_ms: 2_000,
            forecast_refit_interval_secs: 3_600,
            forecast_refit_min_cascades: 500,
            inactive_expiry_secs: 1_800,
            revive_window_secs: 7 * 24 * 3_600,
            max_cascades: 100_000,
            max_tracked_shares: 20_000,
            max_total_shares: 2_000_000,
            publish_step: 5.0,
            history_step: 1.0,
            interval_level: 0.9,
            classify_probability: 0.5,
            threshold_quantile: 0.99,
            threshold_min_history: 500,
            threshold_shares: 0.0,
            momentum_window_secs: 300,
        }
    }
}

/// Each error of a configuration that could not be read, as it may be shown (see [`shown`]).
pub fn shown_errors(error: &figment::Error) -> Vec<String> {
    error.clone().into_iter().map(shown).collect()
}

/// A configuration error as it may be shown: for the sources, and for any setting named like
/// a secret, what was found is left out (the whole of a malformed `PULSE_SOURCES` was quoted,
/// client secrets and tokens included).
fn shown(error: figment::Error) -> String {
    let holds_secrets = error.path.first().is_some_and(|p| p == "sources")
        || error.path.iter().any(|p| {
            ["secret", "token", "password", "key"]
                .iter()
                .any(|s| p.contains(s))
        });
    if !holds_secrets {
        return error.to_string();
    }
    use figment::error::Kind;
    let expected = match &error.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            format!("expected {expected}")
        }
        Kind::MissingField(field) => format!("missing field `{field}`"),
        Kind::UnknownField(field, _) => format!("unknown field `{field}`"),
        _ => "not readable".to_string(),
    };
    format!(
        "`{}`: {expected} (what was found is not shown: it may hold credentials)",
        error.path.join(".")
    )
}

/// Refuses a share of a process's time that is not above 0 and at most 1 (NaN included).
fn check_share(name: &str, value: f64) -> Result<(), String> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(format!("{name} must be above 0 and at most 1, not {value}"))
    }
}

impl Settings {
    /// Refuses rates, bursts and shares that are not positive numbers: a rate of 0 asked a
    /// caller to wait forever (a wait too long for a `Duration`), and a NaN share made every
    /// rest after an API query panic.
    pub fn check_rates(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        let positive = [
            ("limits.per_key_per_sec", l.per_key_per_sec),
            ("limits.per_key_burst", l.per_key_burst),
            ("limits.per_ip_per_sec", l.per_ip_per_sec),
            ("limits.per_ip_burst", l.per_ip_burst),
            ("limits.per_network_per_sec", l.per_network_per_sec),
            ("limits.per_network_burst", l.per_network_burst),
            ("limits.per_key_events_per_sec", l.per_key_events_per_sec),
            ("limits.per_key_events_burst", l.per_key_events_burst),
            ("limits.per_caller_db_share", l.per_caller_db_share),
            (
                "limits.per_caller_db_burst_secs",
                l.per_caller_db_burst_secs,
            ),
            ("database.api_busy_share", self.database.api_busy_share),
            ("analyzer.api_share", self.analyzer.api_share),
        ];
        for (name, value) in positive {
            anyhow::ensure!(
                value.is_finite() && value > 0.0,
                "{name} must be a positive number, not {value}"
            );
        }
        Ok(())
    }

    /// Loads defaults, then the config file, then the environment.
    pub fn load() -> Result<Settings, Box<figment::Error>> {
        let file = std::env::var_os("PULSE_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("pulse.toml"));
        Self::figment(file).extract().map_err(Box::new)
    }

    fn figment(file: PathBuf) -> Figment {
        let mut ignored = vec![
            "config",
            "log",
            "log_format",
            "stream",
            "listen",
            "home",
            "pg_bin",
        ];
        // An empty secret in the environment is no secret (compose passes `${VAR:-}` on as
        // ""): it must not wipe the one the config file sets and leave a server open.
        if std::env::var("PULSE_AUTH__JWT_SECRET").is_ok_and(|v| v.is_empty()) {
            ignored.push("auth__jwt_secret");
        }
        let given = Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("PULSE_").ignore(&ignored).split("__"))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
            .merge(
                Env::raw()
                    .only(&["PULSE_STREAM"])
                    .map(|_| "redis.stream".into()),
            )
            .merge(
                Env::raw()
                    .only(&["PULSE_LISTEN"])
                    .map(|_| "http.listen".into()),
            );
        let mut figment =
            Figment::from(Serialized::defaults(Settings::default())).merge(given.clone());
        // Settings read under a former name as well, where the new name is not given (a serde
        // alias cannot do it: the defaults always hold the new name, and both is an error).
        for (former, name) in FORMER_NAMES {
            if let (Ok(value), Err(_)) = (given.find_value(former), given.find_value(name)) {
                figment = figment.merge(Serialized::default(name, value));
            }
        }
        figment
    }

    /// The consumer name to use: the configured one or a fresh unique one.
    pub fn consumer_name(&self) -> String {
        if !self.redis.consumer.is_empty() {
            return self.redis.consumer.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "pulse".into());
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        format!("{host}-{}-{suffix}", std::process::id())
    }

    /// Worker count for a setting where 0 means one per core.
    pub fn threads_or_cores(n: usize) -> usize {
        if n > 0 {
            n
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// The pub/sub channel of the cross-process fan-out.
    pub fn fanout_channel(&self) -> String {
        if self.fanout.channel.is_empty() {
            format!("{}:fanout", self.redis.stream)
        } else {
            self.fanout.channel.clone()
        }
    }

    /// The dead-letter stream for the configured stream.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}:dead", self.redis.stream)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's test jail fixes the error type
mod tests;
