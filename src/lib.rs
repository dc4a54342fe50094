//! Pulse: a real-time social-media sentiment and virality event server.
//!
//! # Layers
//!
//! Every module sits on one layer and uses only its own layer and those below it; the rule a
//! reader can rely on is "look one layer down for what a file uses, never up".
//! `tests/layers.rs` fails the build on an import that points up or files that import each
//! other in a circle. The four lowest layers are the crate `pulse-core` (re-exported here under
//! their own names, so `crate::models` reads the same everywhere); the commands' tools are the
//! crate `pulse-tools`, so the server builds without them.
//!
//! | layer | modules | what lives there |
//! |---|---|---|
//! | vocabulary | [`models`], [`config`], [`telemetry`] | plain data: events, analyses, metrics windows and dimensions, alert rules, post views, live messages; every setting; metric names |
//! | engines | [`analysis`], [`virality`], [`stories`], [`topics`], [`search`], [`generate`] | pure computation: analyzers, term extraction, cascades and prediction, story detection, topic queries and matching, the synthetic world |
//! | storage | [`db`], [`streams`], [`egress`] | every SQL statement (one file per table family, the audit log among them), every Redis stream command, outbound HTTP |
//! | access | [`auth`] | keys, tokens, roles, the route policy |
//! | pipeline | [`actors`], [`sources`] | the supervised stages, every one wired in [`actors::Pipeline::start`]; producers into the stream: platform connectors, file import, the demo feed |
//! | live transport | [`ws`] | WebSocket sessions, the broadcaster, cross-process fan-out |
//! | HTTP transport | [`http`] | the actix-web API: middleware, handlers, one error shape; `GET /ws` upgrades into [`ws`] |
//! | composition | [`app`] | one Pulse process: pools, pipeline, live service, HTTP server, shutdown |
//! | commands | [`cli`]; the crate `pulse-tools` | the command line; `pulse bench` and `pulse eval` |
//!
//! # The path of one post
//!
//! A producer XADDs `{"event": <json>}` to the stream (directly, via `POST /api/v1/events`, or
//! through a [`sources`] feed). The ingester (`actors::ingester`) reads it through the
//! consumer group within its credit limit, parses and validates it into a [`models::Event`]
//! (failures go to `<stream>:dead` with their reason and are acknowledged), and hands the
//! batch to the analyzer pool ([`analysis`]), which also matches each post against every
//! active topic ([`topics`]). The analyzed batch goes to the store, which
//! writes it in one statement with `ON CONFLICT DO NOTHING` and updates the per-minute rollups
//! in the same statement; only after that commit does the ingester XACK the entries and return
//! their credits. A crash anywhere before the XACK leaves the entry pending, to be re-read or
//! claimed, and the natural keys make the replay harmless. The committed batch then goes to
//! the stages downstream: the aggregator (live metrics snapshots, trending terms), the
//! virality tracker (share cascades), and the WebSocket broadcaster, which sends each post new
//! to the database once to the sessions whose filters match and publishes it for the other
//! processes of the group.
//!
//! Off the post's path, on timers: the alerter evaluates alert rules over the rollups and
//! writes an alert with its webhook deliveries in one statement; the webhook deliverer sends
//! them; the monitor reports group lag and trims the stream; retention deletes what has aged
//! out.

pub use pulse_core::{
    analysis, auth, config, db, egress, generate, models, search, stories, streams, telemetry,
    topics, virality,
};

pub mod actors;
pub mod app;
pub mod cli;
pub mod http;
pub mod sources;
pub mod ws;
