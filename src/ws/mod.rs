//! WebSocket subscribers: the live push protocol for dashboards and integrations.
//!
//! The pipeline already exposes what this layer consumes (committed posts with their
//! analysis); sessions, topics and filters are built on it.
