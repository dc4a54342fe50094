//! Redis: the connections and every stream command Pulse sends.
//!
//! - [`connect`]: clients with the process's timeouts and reconnect policy.
//! - [`producer`]: appending events to the stream.
//! - [`entry`]: a stream entry as read, before it is decoded; [`reply`] turns Redis's replies
//!   into entries.
//! - [`bounded`]: reads and claims through the consumer group that never bring an entry back
//!   whole when it is larger than `ingest.max_entry_bytes` or has more than
//!   `ingest.max_entry_fields` fields.
//! - [`group`]: the rest of the consumer group's commands (creating it, refreshing held
//!   entries, delivery counts, acknowledgements, dead letters, lag and pending figures).
//! - [`upkeep`]: the group monitor's commands (trimming acknowledged entries and dead letters,
//!   removing stale consumers).
//! - [`admission`]: waiting while the group is behind, for sources and imports.
//! - [`future_ids`]: the ages of entries whose ids are ahead of the clock.

pub mod admission;
pub mod bounded;
pub mod connect;
pub mod entry;
pub mod future_ids;
pub mod group;
pub mod producer;
pub mod reply;
pub mod upkeep;

pub use self::connect::connect;
