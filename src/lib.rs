//! Pulse: a real-time social-media sentiment and virality event server.
//!
//! The layers of the code and where each module stands are in the README ("Where things are
//! in the code"), kept by `tests/layers.rs`: every module uses only its own layer and those
//! below it, and no files import each other in a circle. The four lowest layers are the crate
//! `pulse-core` (crates/core, re-exported here under their own names, so `crate::models` reads
//! the same everywhere); the commands' tools are the crate `pulse-tools` (crates/tools), so the
//! server builds without them. The path of one post through the stages, file by file, is in
//! docs/architecture.md.

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
