//! WebSocket subscribers: the live push protocol for dashboards and integrations.
//!
//! - [`protocol`]: the JSON messages both ways, topics and filters, parsed and validated once.
//! - [`outbox`]: each session's bounded queue, shared by the broadcaster and the session.
//!   Pushing never blocks; a full queue drops its oldest post and the client is told how many
//!   it lost (`lagged`); metrics are coalesced to the latest snapshot.

pub mod outbox;
pub mod protocol;
