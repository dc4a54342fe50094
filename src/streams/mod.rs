//! Redis: the connections and every stream command Pulse sends.
//!
//! - [`connect`]: clients with the process's timeouts and reconnect policy.
//! - [`producer`]: appending events to the stream.
//! - [`bounded`]: reads and claims through the consumer group that never bring an entry back
//!   whole when it is larger than `ingest.max_entry_bytes`.

pub mod bounded;
pub mod connect;
pub mod producer;

pub use self::connect::connect;
