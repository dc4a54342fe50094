//! Pulse: a real-time social-media sentiment and virality event server.
//!
//! # Layout
//!
//! - [`models`]: the event format producers send and the analysis attached to each post;
//!   validated once at the edge, ranges carried in the types.
//! - [`analysis`]: text analyzers behind the [`analysis::Analyzer`] trait (the built-in lexicon
//!   backend today, ONNX transformer bundles alongside it).
//! - [`actors`]: the supervised pipeline stages, one file each: `ingester` (Redis Streams
//!   consumer group, credits, claiming, dead letters), `analyzer` (worker pool), `store`
//!   (batched idempotent PostgreSQL writes with exact per-minute rollups), `aggregator` (live
//!   metrics snapshots, trending terms), `alerter` (alert rules over rollup windows),
//!   `monitor` (group lag, stream trimming), `retention`, and `supervisor`. Their typed
//!   messages live in `actors::messages`.
//! - [`http`]: the actix-web API: health, readiness, Prometheus metrics, event intake, post
//!   queries, windowed metrics and alerts, with one error shape.
//! - [`ws`]: live subscribers over WebSocket (`GET /ws`): a broadcaster actor fans committed
//!   posts, metrics snapshots and alerts out to sessions through bounded per-session queues;
//!   `ws::fanout` carries each process's live messages to the other processes of its group
//!   over Redis pub/sub.
//! - [`generate`]: the synthetic producer behind `pulse generate` and `serve --demo`.
//! - [`virality`]: live share cascades, early final-size prediction with calibrated intervals
//!   and probabilities, deep versus broad spreading; fed by the `virality` actor (one per
//!   group, reading committed engagements from PostgreSQL), served by
//!   `http::virality_api`, measured by `pulse eval virality` ([`eval_virality`]).
//! - [`auth`]: API keys, access tokens, roles and the route policy; [`audit`]: the log of
//!   admin changes. `http::guard` applies both, with rate and size limits, to every request.
//!
//! # The path of one post
//!
//! A producer XADDs `{"event": <json>}` to the stream (directly or via `POST /api/v1/events`).
//! The ingester reads it through the consumer group within its credit limit, parses and
//! validates it (failures go to `<stream>:dead` and are acknowledged), and hands the batch to
//! the analyzer pool. The analyzed batch goes to the store, which writes it in one statement
//! with `ON CONFLICT DO NOTHING`; only after that commit does the ingester XACK the entries and
//! return their credits. A crash anywhere before the XACK leaves the entry pending, to be
//! re-read or claimed, and the natural keys make the replay harmless. The acknowledged batch is
//! then published to downstream stages: the WebSocket broadcaster sends each post that was new
//! to the database, once, to the sessions whose filters match, and publishes it for the other
//! processes of the group, whose broadcasters do the same for their sessions.

pub mod actors;
pub mod analysis;
pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod egress;
pub mod eval;
pub mod eval_virality;
pub mod generate;
pub mod http;
pub mod models;
pub mod producer;
pub mod redis;
pub mod streams;
pub mod telemetry;
pub mod virality;
pub mod ws;
