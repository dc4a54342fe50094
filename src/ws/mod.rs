//! WebSocket subscribers: the live push protocol for dashboards and integrations, served at
//! `GET /ws` (the protocol is in `docs/websocket.md` and [`protocol`]).
//!
//! - [`protocol`]: the JSON messages both ways, topics and filters, parsed and validated once.
//! - [`broadcaster`]: the [`Broadcaster`] actor, on a thread of its own, owns the session
//!   registry. It receives every committed batch from the pipeline (only posts new to the
//!   database become `message:new`), metrics snapshots ([`MetricsUpdate`]) and other live
//!   events ([`Publish`]); each is serialized once and pushed to the matching sessions.
//! - [`outbox`]: each session's bounded queue, shared by the broadcaster and the session.
//!   Pushing never blocks; a full queue drops its oldest post and the client is told how many
//!   it lost (`lagged`); metrics are coalesced to the latest snapshot.
//! - [`session`]: the [`WsSession`] actor per connection: client messages, heartbeat, limits.
//! - [`frame_guard`]: refuses a client frame by the length its header declares, before its
//!   payload is buffered.
//! - [`socket`]: a handle that shuts a session's connection from outside, for clients that
//!   stopped reading (their session no longer runs; see `ws.write_timeout_secs`).
//! - [`fanout`]: the cross-process fan-out over Redis pub/sub: what this process produced
//!   goes to the other processes of the group, what they produced comes to these sessions.
//!
//! [`Hub`] is what the rest of the application holds: the broadcaster's address and the
//! admission counter that caps concurrent sessions.

pub mod broadcaster;
pub mod fanout;
pub mod frame_guard;
pub mod hub;
pub mod messages;
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod socket;

pub use self::broadcaster::{Broadcaster, MetricsUpdate, Publish};
pub use self::hub::{Hub, SessionPermit};
pub use self::protocol::{FilterKeys, Topic};
pub use self::session::WsSession;
pub use crate::config::{DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_QUEUE_CAPACITY};
