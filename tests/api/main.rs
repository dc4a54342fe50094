//! Every test of one Pulse application in the test process: the HTTP API, WebSocket
//! subscribers, the dashboard, the pipeline and the model, each module against its own
//! database and stream. One binary, so the crate is linked once for all of them; the suites
//! that run Pulse as child processes (durability, chaos, scale-out) are the `processes` binary.

#[path = "../common/mod.rs"]
mod common;

mod admission;
mod alerts;
mod calibration;
mod compression;
mod dashboard;
mod deletions;
mod digests;
mod export_jobs;
mod forecast;
mod http_api;
mod languages;
mod metrics_api;
mod model;
mod monitoring;
mod openapi;
mod pipeline;
mod review;
mod search;
mod security;
mod sources;
mod store_failures;
mod stories;
mod stream_ids;
mod topics;
mod traces;
mod views;
mod virality;
mod websocket;
