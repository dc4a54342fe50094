//! Redis Streams commands whose replies need more than the client library gives.
//!
//! - [`bounded`]: reads and claims through the consumer group that never bring an entry back
//!   whole when it is larger than `ingest.max_entry_bytes`.

pub mod bounded;
