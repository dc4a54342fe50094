//! Structured logs (`tracing`), Prometheus metrics (`metrics`) and OpenTelemetry traces
//! ([`traces`]). Metric names live in [`names`] so every stage reports under one documented
//! scheme.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub mod causes;
pub mod log_fields;
pub mod process;
pub mod redact;
pub mod repeated;
pub mod traces;

/// Metric names: `pulse_<thing>_<unit>`, labels low-cardinality (never a post or user id).
/// Each name's doc comment is also its `# HELP` text on `/metrics`.
pub mod names {
    /// The kind of a metric, for its description.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        Counter,
        Gauge,
        Histogram,
    }

    macro_rules! metric_names {
        ($($(#[doc = $doc:literal])+ $kind:ident $name:ident = $value:literal;)+) => {
            $($(#[doc = $doc])+ pub const $name: &str = $value;)+
            /// Every metric Pulse reports: name, kind and help text.
            pub const ALL: &[(&str, Kind, &str)] = &[$(($value, metric_names!(@kind $kind), concat!($($doc),+)),)+];
        };
        (@kind counter) => { Kind::Counter };
        (@kind gauge) => { Kind::Gauge };
        (@kind histogram) => { Kind::Histogram };
    }

    metric_names! {
        /// Entries read from the stream (first deliveries and claims).
        counter ENTRIES_READ = "pulse_ingest_entries_read_total";
        /// Entries read whose ids claim a time ahead of Redis's clock (a producer set them, or
        /// Redis's clock stepped back, and Redis gives every later entry an id past them):
        /// their ages are counted from when this process first saw them.
        counter FUTURE_ID_ENTRIES = "pulse_ingest_future_id_entries_total";
        /// Entries claimed from consumers that stopped.
        counter ENTRIES_CLAIMED = "pulse_ingest_entries_claimed_total";
        /// Entries acknowledged after commit (or dead-lettering).
        counter ENTRIES_ACKED = "pulse_ingest_entries_acked_total";
        /// Entries sent to the dead-letter stream, by `reason`.
        counter DEAD_LETTERS = "pulse_dead_letters_total";
        /// Dead letters trimmed because the dead-letter stream was over its byte cap.
        counter DEAD_LETTERS_TRIMMED = "pulse_dead_letters_trimmed_total";
        /// Times the stream's ids were found used up (an entry appended with the largest id,
        /// after which Redis refuses every append) and set back, once the group had read it.
        counter STREAM_IDS_RESET = "pulse_stream_ids_reset_total";
        /// Times entries were found removed from the stream before the group read them (a
        /// producer's `XADD ... MAXLEN`/`MINID`, or an `XTRIM` by another client): they were
        /// acknowledged to their producers and will never be stored.
        counter UNREAD_ENTRIES_REMOVED = "pulse_stream_unread_entries_removed_total";
        /// Terms of deleted posts not taken back out of trending terms because their minute
        /// already held as many terms as it may (they stay counted).
        counter TERM_REMOVALS_DROPPED = "pulse_term_removals_dropped_total";
        /// Often redelivered entries tried again on their own before any is dead-lettered.
        counter ENTRY_TRIALS = "pulse_ingest_entry_trials_total";
        /// Entries read and not yet acknowledged.
        gauge IN_FLIGHT = "pulse_ingest_in_flight_entries";
        /// Batches read and not yet acknowledged.
        gauge IN_FLIGHT_BATCHES = "pulse_ingest_in_flight_batches";
        /// Stream errors while reading, by `error_type`.
        counter READ_ERRORS = "pulse_ingest_read_errors_total";
        /// Batch retries after a failed stage, by `stage`.
        counter BATCH_RETRIES = "pulse_pipeline_batch_retries_total";
        /// Time from XADD to commit, per entry.
        histogram PIPELINE_LATENCY_SECONDS = "pulse_pipeline_latency_seconds";
        /// Posts analysed, by `model`.
        counter ANALYZED_POSTS = "pulse_analyzer_posts_total";
        /// Posts analysed, by `support` of their language (supported, unverified, unsupported).
        counter POSTS_BY_LANGUAGE_SUPPORT = "pulse_analyzer_language_support_posts_total";
        /// Time to decode and analyse one batch.
        histogram ANALYZE_BATCH_SECONDS = "pulse_analyzer_batch_duration_seconds";
        /// Time to match one batch's posts against every active topic.
        histogram TOPIC_MATCH_SECONDS = "pulse_topics_match_duration_seconds";
        /// Topics matched by posts at analysis (a post matching three counts three).
        counter TOPIC_MATCHES = "pulse_topics_matches_total";
        /// Active topics the matcher holds.
        gauge TOPICS_ACTIVE = "pulse_topics_active";
        /// Rebuilds of the topic matcher after topics changed, by `outcome`.
        counter TOPIC_RELOADS = "pulse_topics_reloads_total";
        /// Stored posts re-tagged for a topic, by `change` (`scanned`, `added`, `removed`).
        counter TOPIC_RETAGGED = "pulse_topics_retagged_posts_total";
        /// Topics whose learned relevance filters their posts.
        gauge TOPICS_FILTERED = "pulse_topics_relevance_filters";
        /// Posts a topic's query matched that its relevance left out at analysis.
        counter TOPIC_FILTERED_POSTS = "pulse_topics_filtered_posts_total";
        /// Relevance models trained, by `outcome` (`adopted`, `kept_previous`).
        counter RELEVANCE_TRAINED = "pulse_topics_relevance_trainings_total";
        /// Stored posts moved by relevance, by `change` (`filtered`, `restored`).
        counter RELEVANCE_MOVED = "pulse_topics_relevance_moved_posts_total";
        /// Labels given by reviewers, by `kind`.
        counter LABELS = "pulse_review_labels_total";
        /// Sentiment calibrations trained, by `outcome` (`in_use`, `better_not_used`,
        /// `not_better`).
        counter CALIBRATIONS_TRAINED = "pulse_sentiment_calibrations_total";
        /// Analyses a sentiment calibration adapted.
        counter CALIBRATED_POSTS = "pulse_sentiment_calibrated_posts_total";
        /// Search vectors written for posts stored without one.
        counter SEARCH_INDEXED = "pulse_search_indexed_posts_total";
        /// Searches answered, by `kind` (`page`, `facets`, `export`).
        counter SEARCHES = "pulse_search_requests_total";
        /// Posts a search checked against its query one by one.
        counter SEARCH_CHECKED = "pulse_search_checked_posts_total";
        /// Rows written by exports.
        counter EXPORTED_ROWS = "pulse_search_exported_rows_total";
        /// Exports and downloads whose place was given to another caller after they went
        /// unread too long.
        counter EXPORTS_TAKEN_BACK = "pulse_search_exports_taken_back_total";
        /// Pages of streamed exports and chunks of downloads that waited for their caller's
        /// share of the API's connections before they were read.
        counter EXPORTS_PACED = "pulse_search_exports_paced_total";
        /// Export jobs by `event` (`created`, `done`, `failed`, `deleted`, `downloaded`).
        counter EXPORT_JOBS = "pulse_export_jobs_total";
        /// Rows inserted (replays excluded), by `table`.
        counter STORED_ROWS = "pulse_store_rows_inserted_total";
        /// Time to commit one batch.
        histogram STORE_BATCH_SECONDS = "pulse_store_batch_duration_seconds";
        /// Failed batch writes, by `error_type`.
        counter STORE_ERRORS = "pulse_store_errors_total";
        /// Rows removed by retention, by `table`.
        counter RETENTION_DELETED = "pulse_retention_deleted_rows_total";
        /// Alerts fired, by `kind`.
        counter ALERTS_FIRED = "pulse_alerts_fired_total";
        /// Webhook delivery attempts, by `outcome` (delivered, retry, dead).
        counter WEBHOOK_DELIVERIES = "pulse_webhook_deliveries_total";
        /// Digests made on schedule by this process, by `late`.
        counter DIGESTS_MADE = "pulse_digests_made_total";
        /// Rounds of the digest schedules that failed (PostgreSQL away, a digest that could
        /// not be computed); the round is tried again.
        counter DIGEST_ERRORS = "pulse_digest_errors_total";
        /// Seconds to compute, render and store one scheduled digest.
        histogram DIGEST_SECONDS = "pulse_digest_seconds";
        /// Actor restarts after a crash, by `actor`; for `analyzer`, also analyzer backends
        /// rebuilt after a panic.
        counter ACTOR_RESTARTS = "pulse_actor_restarts_total";
        /// Entries in the stream not yet delivered to the group.
        gauge CONSUMER_LAG = "pulse_consumer_lag_entries";
        /// Entries delivered to the group and not yet acknowledged.
        gauge CONSUMER_PENDING = "pulse_consumer_pending_entries";
        /// Seconds the oldest entry the group has not acknowledged has waited (what
        /// `ingest.max_backlog_secs` and `ingest.fair_share_after_secs` are measured against).
        gauge CONSUMER_OLDEST_AGE_SECONDS = "pulse_consumer_oldest_age_seconds";
        /// Bytes the stream holds in Redis, its group's pending list included (what
        /// `ingest.max_backlog_bytes` is measured against).
        gauge STREAM_BYTES = "pulse_stream_bytes";
        /// 1 while another process of the group publishes a different fingerprint of the
        /// settings that decide entries (`GET /api/v1/pipeline`, `group_settings`), else 0.
        gauge GROUP_SETTINGS_DIFFER = "pulse_group_settings_differ";
        /// Events accepted by `POST /api/v1/events`.
        counter HTTP_EVENTS_ACCEPTED = "pulse_http_events_accepted_total";
        /// HTTP responses, by `status` class.
        counter HTTP_RESPONSES = "pulse_http_responses_total";
        /// Open WebSocket sessions.
        gauge WS_SESSIONS = "pulse_ws_sessions";
        /// WebSocket sessions opened since start.
        counter WS_SESSIONS_OPENED = "pulse_ws_sessions_total";
        /// Messages written to WebSocket clients, by `type` (message, metrics, alert, virality,
        /// control).
        counter WS_MESSAGES_SENT = "pulse_ws_messages_sent_total";
        /// Messages a slow WebSocket client lost because its queue was full.
        counter WS_MESSAGES_DROPPED = "pulse_ws_messages_dropped_total";
        /// Posts (new and deleted) of committed batches not delivered live because more than
        /// `ws.max_pending_posts` waited for the broadcaster.
        counter WS_POSTS_SHED = "pulse_ws_posts_shed_total";
        /// WebSocket upgrades refused, by `reason` (too_many_sessions, bad_handshake).
        counter WS_REJECTED = "pulse_ws_rejected_total";
        /// Sessions closed because the API key they were opened with was revoked.
        counter WS_CLOSED_REVOKED = "pulse_ws_sessions_revoked_total";
        /// Sessions closed because their client took nothing it was sent for
        /// `ws.write_timeout_secs`.
        counter WS_CLOSED_STALLED = "pulse_ws_sessions_stalled_total";
        /// 1 while new posts go to the lexicon because the model fell behind, else 0.
        gauge ANALYZER_FALLBACK = "pulse_analyzer_fallback_active";
        /// Switches between the model and the lexicon fallback, by `to` (lexicon, model).
        counter ANALYZER_SWITCHES = "pulse_analyzer_switches_total";
        /// Batches the model handed back to the lexicon because they waited in its queue past
        /// the fallback threshold.
        counter ANALYZER_HANDED_BACK = "pulse_analyzer_batches_handed_back_total";
        /// Age of the oldest entry of a batch when the ingester routes it, in seconds.
        histogram INGEST_ENTRY_AGE_SECONDS = "pulse_ingest_entry_age_seconds";
        /// Texts analysed synchronously through `POST /api/v1/analyze`.
        counter HTTP_ANALYZED_TEXTS = "pulse_http_analyzed_texts_total";
        /// Posts forecast through `POST /api/v1/forecast`.
        counter FORECASTS = "pulse_forecasts_total";
        /// Cascades recorded in their authors' track records, by `status` (growing, finished).
        counter FORECAST_RECORDED_CASCADES = "pulse_forecast_recorded_cascades_total";
        /// Reach-forecast refits on a platform's finished cascades, by `outcome` (adopted: it
        /// ranked them better than the shipped model; kept: it did not).
        counter FORECAST_REFITS = "pulse_forecast_refits_total";
        /// Time of one refit pass over every platform, in seconds.
        histogram FORECAST_REFIT_SECONDS = "pulse_forecast_refit_seconds";
        /// Engagement events applied to live cascades (replays excluded).
        counter VIRALITY_EVENTS = "pulse_virality_events_total";
        /// Cascades held in memory.
        gauge VIRALITY_CASCADES = "pulse_virality_cascades";
        /// Cascades finished, by `reason` (inactive, evicted, deleted).
        counter VIRALITY_FINISHED = "pulse_virality_cascades_finished_total";
        /// Product and hashtag momentum keys that left memory to make room for a new key.
        counter VIRALITY_MOMENTUM_KEYS_EVICTED = "pulse_virality_momentum_keys_evicted_total";
        /// Finished cascades taken up again because they were engaged again.
        counter VIRALITY_REVIVED = "pulse_virality_cascades_revived_total";
        /// Post predictions computed.
        counter VIRALITY_PREDICTIONS = "pulse_virality_predictions_total";
        /// Time to rescore and write the changed cascades of one tick.
        histogram VIRALITY_TICK_SECONDS = "pulse_virality_tick_duration_seconds";
        /// `virality:update` messages published.
        counter VIRALITY_UPDATES = "pulse_virality_updates_total";
        /// Failed virality writes or reads, by `operation`.
        counter VIRALITY_ERRORS = "pulse_virality_errors_total";
        /// 1 while this process runs the virality tracker (holds its lock), else 0.
        gauge VIRALITY_LEADER = "pulse_virality_leader";
        /// Times this process took over the virality tracker.
        counter VIRALITY_TAKEOVERS = "pulse_virality_takeovers_total";
        /// Committed engagements the tracker read from PostgreSQL's feed.
        counter VIRALITY_FEED_ROWS = "pulse_virality_feed_rows_total";
        /// Live stories in this process's story tracker.
        gauge STORIES_LIVE = "pulse_stories_live";
        /// Stories born.
        counter STORIES_BORN = "pulse_stories_born_total";
        /// Stories born in another process of the group and taken in here.
        counter STORIES_ADOPTED = "pulse_stories_adopted_total";
        /// Time to place one batch's posts in stories.
        histogram STORY_PLACEMENT_SECONDS = "pulse_story_placement_duration_seconds";
        /// Story detection failures, by `operation` (`place`, `write`, `read`).
        counter STORY_ERRORS = "pulse_story_errors_total";
        /// Batches placed in stories, by `outcome`: `in_turn` (after every batch read before
        /// it) or `timed_out` (an earlier batch was still not placed after the longest wait).
        counter STORY_TURNS = "pulse_story_turns_total";
        /// Live messages this process produced and published to the other processes.
        counter FANOUT_PUBLISHED = "pulse_fanout_messages_published_total";
        /// Live messages received from other processes and handed to local sessions.
        counter FANOUT_RECEIVED = "pulse_fanout_messages_received_total";
        /// Live messages lost between processes, by `reason` (queue_full, publish_failed on the
        /// publishing side; missed, invalid on the receiving side).
        counter FANOUT_DROPPED = "pulse_fanout_messages_dropped_total";
        /// 1 while the fan-out subscription is established, else 0.
        gauge FANOUT_SUBSCRIBED = "pulse_fanout_subscribed";
        /// Other processes subscribed to this one's live messages (none: nothing is published).
        gauge FANOUT_PEERS = "pulse_fanout_peers";
        /// Requests refused for their credentials or role, by `reason`.
        counter AUTH_REFUSED = "pulse_auth_refused_total";
        /// Argon2 checks of presented API keys, by `result` (match or mismatch).
        counter AUTH_KEY_VERIFICATIONS = "pulse_auth_key_verifications_total";
        /// Presented keys refused without a check because the same key failed moments ago.
        counter AUTH_REMEMBERED_FAILURES = "pulse_auth_remembered_failures_total";
        /// Access tokens issued.
        counter AUTH_TOKENS_ISSUED = "pulse_auth_tokens_issued_total";
        /// API keys that exist and are not revoked.
        gauge AUTH_ACTIVE_KEYS = "pulse_auth_active_keys";
        /// 1 while this process serves without authentication.
        gauge AUTH_OPEN = "pulse_auth_open";
        /// Requests refused by a rate limit, by `scope` (key or ip).
        counter RATE_LIMITED = "pulse_http_rate_limited_total";
        /// Connections accepted past their network's cap (answered 429 once, then closed).
        counter CONNECTIONS_REFUSED = "pulse_http_connections_refused_total";
        /// Requests refused for their size or shape before any handler ran, by `reason`.
        counter INPUT_REFUSED = "pulse_http_input_refused_total";
        /// Request bodies refused for the memory they would hold, by `reason` (client_bodies,
        /// client_memory, total_memory, public_memory).
        counter BODIES_REFUSED = "pulse_http_bodies_refused_total";
        /// Bytes of request bodies held in memory now (arrived and not yet answered).
        gauge BODY_BYTES_HELD = "pulse_http_body_bytes";
        /// Events `POST /api/v1/events` refused before reaching the stream, by `reason`
        /// (backlog: the group has too many entries to read; backlog_age: its oldest waited
        /// too long; rate: the key's events budget is spent; share: the producer asks more
        /// than its share while the group is behind; out_of_scope: outside the key's scope).
        counter EVENTS_REFUSED = "pulse_http_events_refused_total";
        /// Requests the gate refused (each spends its address's rate budget), by `reason`: the
        /// error code answered.
        counter HTTP_REFUSED = "pulse_http_refused_total";
        /// API requests answered 503 `busy` (every API connection taken) or 504 `query_timeout`
        /// (past the statement timeout), by `reason` (pool or timeout).
        counter API_BUSY = "pulse_api_busy_total";
        /// Audit records written, by `outcome`.
        counter AUDIT_RECORDS = "pulse_audit_records_total";
        /// Audit records that could not be written or completed.
        counter AUDIT_FAILURES = "pulse_audit_failures_total";
        /// Audit records that kept a body's size and hash, not the body: its caller's
        /// `limits.audit_payload_bytes_per_day` was spent.
        counter AUDIT_PAYLOADS_WITHHELD = "pulse_audit_payloads_withheld_total";
        /// Keys counted under `(other)` in the rollups because their dimension had
        /// `metrics.max_keys_per_dimension` keys that day already, or because their batch named
        /// more dimensions and days than one batch asks about (`ASKED_GROUPS` in
        /// `db::rollup_keys`), by `dimension`.
        counter ROLLUP_KEYS_OTHER = "pulse_rollup_other_keys_total";
        /// Stored posts marked deleted by a `delete` event (a post stored already deleted is not
        /// counted).
        counter POSTS_DELETED = "pulse_posts_deleted_total";
        /// Events refused because another producer owns the post they name, by `reason`:
        /// `id_taken` (a post whose id another producer stored first), `not_owner_deletion`,
        /// `not_owner_engagement`; and `unknown_post`, engagements dropped after waiting
        /// `ingest.unknown_post_hold_secs` for a post that never came.
        counter EVENTS_NOT_OWNED = "pulse_events_refused_total";
        /// Engagements stored held, waiting for their post.
        counter ENGAGEMENTS_HELD = "pulse_engagements_held_total";
        /// Events a source appended to the stream, by `source` and `event` (post, share, like,
        /// comment, view).
        counter SOURCE_EVENTS = "pulse_source_events_total";
        /// Platform records a source read and left out, by `source` and `reason` (filtered,
        /// unsupported, empty_text, invalid, malformed, deleted).
        counter SOURCE_SKIPPED = "pulse_source_skipped_total";
        /// Failures of a source, by `source` and `reason` (connect, refused, read, append, ...).
        counter SOURCE_ERRORS = "pulse_source_errors_total";
        /// Connections a source opened again after losing one, by `source`.
        counter SOURCE_RECONNECTS = "pulse_source_reconnects_total";
        /// Seconds a source was asked to wait by a platform (`Retry-After`, a spent rate-limit
        /// window), by `source`.
        counter SOURCE_RATE_LIMIT_WAIT = "pulse_source_rate_limit_wait_seconds_total";
        /// Seconds a source or `pulse import` paused because the consumer group was behind
        /// (`ingest.max_backlog`, `ingest.max_backlog_secs`), by `source`.
        counter SOURCE_BACKLOG_PAUSE = "pulse_source_backlog_pause_seconds_total";
        /// Reconnections whose backfill (the Mastodon REST timeline read to fill what the
        /// stream missed) failed or was cut short, leaving a gap, by `source`.
        counter SOURCE_BACKFILL_FAILURES = "pulse_source_backfill_failures_total";
        /// 1 while a source is connected to its platform (or polling it without errors), else 0.
        gauge SOURCE_CONNECTED = "pulse_source_connected";
        /// How far behind the platform a source is: now minus the platform time of its latest
        /// event, in seconds.
        gauge SOURCE_LAG_SECONDS = "pulse_source_lag_seconds";
        /// Resident memory of the process, in bytes (the name Prometheus clients use).
        gauge PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes";
        /// The memory limit of the process's cgroup, in bytes; 0 when it has none.
        gauge PROCESS_MEMORY_LIMIT = "pulse_process_memory_limit_bytes";
    }
}

/// Latency buckets in seconds, from sub-millisecond to tens of seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Finer buckets for the end-to-end latency (XADD to commit), Pulse's headline figure: about
/// 25% apart from 1 ms to 1 s, so percentiles read from `/metrics` (the scale and soak
/// benchmarks do) are within a bucket's width of the truth.
pub const PIPELINE_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04,
    0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0,
    2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
];
/// How often histogram samples are folded into buckets, bounding their memory.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The log filter when `PULSE_LOG` is unset. The connection pool's own warnings repeat, without
/// their cause and unthrottled, what Pulse's call sites report with it once per 10 s.
pub const DEFAULT_LOG_FILTER: &str = "info,deadpool=error";

/// Installs the log subscriber once: `PULSE_LOG` filters (default [`DEFAULT_LOG_FILTER`]),
/// `PULSE_LOG_FORMAT` picks `json` or `text` (default text). Logs go to stdout.
pub fn init_logging() {
    init_logging_on(false);
}

/// [`init_logging`], with logs on stderr for commands whose stdout is their output.
pub fn init_logging_on(stderr: bool) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = EnvFilter::try_from_env("PULSE_LOG")
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || -> Box<dyn std::io::Write> {
                if stderr {
                    Box::new(std::io::stderr())
                } else {
                    Box::new(std::io::stdout())
                }
            });
        let json = std::env::var("PULSE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
        let _ = if json {
            builder.json().flatten_event(true).try_init()
        } else {
            builder.fmt_fields(log_fields::text_fields()).try_init()
        };
    });
}

/// Installs the Prometheus recorder once per process and returns its handle; later calls (a
/// test starting several apps in one process) share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("latency buckets are valid")
                // A full-name matcher takes precedence over the suffix.
                .set_buckets_for_metric(
                    Matcher::Full(names::PIPELINE_LATENCY_SECONDS.into()),
                    PIPELINE_LATENCY_BUCKETS,
                )
                .expect("pipeline latency buckets are valid")
                .install_recorder()
                .expect("a metrics recorder is installed once");
            describe_all();
            let upkeep = handle.clone();
            process::record();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                    process::record();
                })
                .expect("spawning the metrics upkeep thread");
            handle
        })
        .clone()
}

/// Gives every metric its `# HELP` line: the doc comment of its name. (Through the recorder,
/// not the `describe_*!` macros, whose names the docs test reads as literals.)
fn describe_all() {
    use names::Kind;
    metrics::with_recorder(|recorder| {
        for &(name, kind, help) in names::ALL {
            let key = metrics::KeyName::from_const_str(name);
            let help = metrics::SharedString::const_str(help.trim_start());
            match kind {
                Kind::Counter => recorder.describe_counter(key, None, help),
                Kind::Gauge => recorder.describe_gauge(key, None, help),
                Kind::Histogram => recorder.describe_histogram(key, None, help),
            }
        }
    });
}
