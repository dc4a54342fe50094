//! Pulse's core: the layers below the pipeline, in a crate of their own so the server and the
//! tools build on it side by side (the README's "Where things are in the code" has the whole map).

pub mod analysis;
pub mod auth;
pub mod config;
pub mod db;
pub mod egress;
pub mod generate;
pub mod models;
pub mod search;
pub mod stories;
pub mod streams;
pub mod telemetry;
pub mod topics;
pub mod virality;
