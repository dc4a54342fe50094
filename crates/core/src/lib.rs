//! Pulse's core: the layers below the pipeline, in a crate of their own so the server and the
//! tools build on it side by side (see the crate `pulse` for the whole map).
//!
//! | layer | modules |
//! |---|---|
//! | vocabulary | [`models`], [`config`], [`telemetry`] |
//! | engines | [`analysis`], [`virality`], [`stories`], [`topics`], [`search`], [`generate`] |
//! | storage | [`db`], [`streams`], [`egress`] |
//! | access | [`auth`] |

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
