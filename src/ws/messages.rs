//! The messages between the broadcaster and the sessions, and those the rest of the process
//! sends the broadcaster. The pipeline's own messages (`MetricsUpdate`, `Publish`) live in
//! `actors::messages`; committed batches come through `broadcaster::LiveIntake`.

use std::sync::Arc;

use actix::{Message, Recipient};

use super::outbox::Outbox;

/// Identifies a session in the registry.
pub type SessionId = u64;

/// How the broadcaster reaches one session.
#[derive(Clone)]
pub struct SessionHandle {
    pub wake: Recipient<Wake>,
    pub going_away: Recipient<GoingAway>,
    pub revoked: Recipient<CredentialRevoked>,
}

/// The process's story desk: stories the other processes announce (their `story:new` messages
/// through the fan-out) are handed to it, so posts placed here join them under their ids.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HearStories(pub Arc<crate::actors::stories::StoryDesk>);

/// A new session, sent by the session when it starts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub id: SessionId,
    pub session: SessionHandle,
    pub outbox: Arc<Outbox>,
    /// The API key the session was opened with.
    pub key_id: Option<Arc<str>>,
    /// What shuts its connection if its client stops reading (none where the connection's
    /// descriptor is unknown).
    pub socket: Option<Arc<super::socket::SocketHandle>>,
}

/// A session that stopped, sent by the session itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub id: SessionId,
}

/// Asks every session to send what it has queued and close (server shutdown). Answers once
/// every session has been told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

/// The number of registered sessions.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

/// API key `0` was revoked: its sessions close.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct KeyRevoked(pub Arc<str>);

/// The broadcaster queued something for this session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

/// The server is shutting down: send what is queued, then close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GoingAway;

/// The credential the session was opened with was revoked: close at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CredentialRevoked;
