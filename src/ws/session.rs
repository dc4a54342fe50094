//! One WebSocket session: parses client messages, keeps the subscription in its [`Outbox`],
//! drains the outbox onto the socket, and proves the client alive with pings.
//!
//! The session actor runs inside the HTTP response body: it is polled only while the
//! connection's write buffer has room. A client that stops reading therefore stops its
//! session from draining, and the outbox's bounds decide what it loses; past
//! `ws.write_timeout_secs` the broadcaster shuts its connection (see [`super::socket`]), and so
//! it does when the session has not run its heartbeat for as long (a client that stops
//! reading the answers to its own messages queues nothing, but stops the session all the
//! same). Each
//! poll drains at most [`DRAIN_CHUNK_MESSAGES`], so what is buffered per connection stays
//! small.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::fut::ActorFuture;
use actix::{Actor, ActorContext, AsyncContext, Handler, StreamHandler};
use actix_http::ws::Item;
use actix_web::web::BytesMut;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use bytestring::ByteString;

use super::frame_guard::Intake;
use super::hub::{Hub, SessionPermit};
use super::messages::{
    CredentialRevoked, GoingAway, Register, SessionHandle, SessionId, Unregister, Wake,
};
use super::outbox::{Outbox, Outgoing, Subscription};
use super::protocol::{self, ClientError, ClientMessage, ErrorCode, MessageClass, Topic};
use super::socket::SocketHandle;
use crate::telemetry::names;

/// Most messages written per poll of the session: about one write buffer's worth, so a
/// session never moves its whole outbox into memory the socket has not taken.
pub const DRAIN_CHUNK_MESSAGES: usize = 64;
/// A heartbeat that comes this many intervals late means the session itself was not polled
/// (its client was not reading): the client could not have answered, so its silence until
/// then is not held against it.
const STALL_INTERVALS: u32 = 2;

/// A message being received in several frames.
struct Fragments {
    text: bool,
    data: BytesMut,
}

/// How soon a session that subscribes to metrics again is sent the whole snapshot again: a
/// client repeating a 50-byte subscribe had the server write the snapshot each time. Sooner,
/// it gets the acknowledgement alone; its updates follow as they come.
pub const SNAPSHOT_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// The session actor. See the module documentation.
pub struct WsSession {
    id: SessionId,
    hub: Hub,
    outbox: Arc<Outbox>,
    last_heard: Instant,
    last_tick: Instant,
    /// When the session was last sent the whole metrics snapshot.
    snapshot_sent: Option<Instant>,
    fragments: Option<Fragments>,
    chunk_scheduled: bool,
    drained: Vec<Outgoing>,
    /// When the credential the session was opened with expires; the session closes then
    /// with [`TOKEN_EXPIRED`] so the client reconnects with a fresh token.
    expires_in: Option<Duration>,
    /// The API key the session was opened with (directly or through a token); its revocation
    /// ends the session with [`CREDENTIAL_REVOKED`].
    key_id: Option<Arc<str>>,
    /// Shuts the connection if its client stops reading (see [`super::socket`]).
    socket: Option<Arc<SocketHandle>>,
    /// Shared with the connection's [`super::frame_guard::FrameGuard`]: whether a client frame declared more than
    /// the frame limit, and how many frames the session has handled.
    intake: Option<Arc<Intake>>,
    _permit: SessionPermit,
}

/// Close code of a session whose access token expired (application range 4000–4999).
pub const TOKEN_EXPIRED: u16 = 4001;
/// Close code of a session whose API key was revoked.
pub const CREDENTIAL_REVOKED: u16 = 4003;

impl WsSession {
    /// A session admitted by `permit`, which it holds until it stops.
    pub fn new(hub: Hub, id: SessionId, permit: SessionPermit) -> Self {
        let now = Instant::now();
        let settings = hub.settings();
        let outbox = Outbox::with_limits(settings.queue_capacity, settings.max_queued_bytes);
        Self {
            id,
            outbox: Arc::new(outbox),
            hub,
            last_heard: now,
            last_tick: now,
            snapshot_sent: None,
            fragments: None,
            chunk_scheduled: false,
            drained: Vec::with_capacity(DRAIN_CHUNK_MESSAGES),
            expires_in: None,
            key_id: None,
            socket: None,
            intake: None,
            _permit: permit,
        }
    }

    /// Lets the broadcaster shut the connection through `socket` when the client stops
    /// reading.
    pub fn with_socket(mut self, socket: Option<SocketHandle>) -> Self {
        self.socket = socket.map(Arc::new);
        self
    }

    /// Closes the session after `after`, when its access token expires.
    pub fn expiring_after(mut self, after: Duration) -> Self {
        self.expires_in = Some(after);
        self
    }

    /// Reads its frames through the [`super::frame_guard::FrameGuard`] sharing `intake`: closes with 1009 when the
    /// client's bytes stop on an oversized frame, and tells the guard of each frame handled.
    pub fn reading_through(mut self, intake: Arc<Intake>) -> Self {
        self.intake = Some(intake);
        self
    }

    /// Ends the session when API key `key_id` is revoked.
    pub fn for_key(mut self, key_id: Option<Arc<str>>) -> Self {
        self.key_id = key_id;
        self
    }

    fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.hub.settings().heartbeat_secs.max(1))
    }

    fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.hub.settings().client_timeout_secs.max(1))
    }

    /// Writes the next chunk of the outbox; schedules the following one for the next poll.
    fn drain(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let more = self.outbox.drain(DRAIN_CHUNK_MESSAGES, &mut self.drained);
        self.write_drained(ctx);
        if more && !self.chunk_scheduled {
            self.chunk_scheduled = true;
            ctx.spawn(NextChunk { yielded: false });
        }
    }

    /// Writes what was drained, counting it per class once per chunk.
    fn write_drained(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let mut counts = [0u64; MessageClass::ALL.len()];
        for out in self.drained.drain(..) {
            counts[out.class as usize] += 1;
            ctx.text(out.text);
        }
        for (class, n) in MessageClass::ALL.into_iter().zip(counts) {
            if n > 0 {
                metrics::counter!(names::WS_MESSAGES_SENT, "type" => class.label()).increment(n);
            }
        }
    }

    fn reply(&self, ctx: &mut ws::WebsocketContext<Self>, text: impl Into<ByteString>) {
        ctx.text(text);
        metrics::counter!(names::WS_MESSAGES_SENT, "type" => MessageClass::Control.label())
            .increment(1);
    }

    fn refuse(&self, ctx: &mut ws::WebsocketContext<Self>, error: &ClientError) {
        tracing::debug!(session = self.id, %error, "client message refused");
        self.reply(ctx, protocol::error(error));
    }

    fn acknowledge(&self, ctx: &mut ws::WebsocketContext<Self>, s: &Subscription) {
        self.reply(ctx, protocol::subscribed(s.topics, &s.filter));
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let message = match protocol::parse_client_message(text) {
            Ok(m) => m,
            Err(e) => return self.refuse(ctx, &e),
        };
        match message {
            ClientMessage::Subscribe { topics, filter } => {
                let max_topics = self.hub.settings().max_topics_per_session;
                match self.outbox.subscribe(topics, filter, max_topics) {
                    Ok(subscription) => {
                        self.acknowledge(ctx, &subscription);
                        let again = self
                            .snapshot_sent
                            .is_none_or(|at| at.elapsed() >= SNAPSHOT_AGAIN_AFTER);
                        if topics.contains(Topic::Metrics) && again {
                            if let Some(initial) = self.hub.latest_metrics() {
                                self.snapshot_sent = Some(Instant::now());
                                ctx.text(initial);
                                let class = MessageClass::Metrics.label();
                                metrics::counter!(names::WS_MESSAGES_SENT, "type" => class)
                                    .increment(1);
                            }
                        }
                    }
                    Err(e) => self.refuse(ctx, &e),
                }
            }
            ClientMessage::Unsubscribe { topics } => {
                let subscription = self.outbox.unsubscribe(topics);
                self.acknowledge(ctx, &subscription);
            }
            ClientMessage::Ping => self.reply(ctx, protocol::PONG),
        }
    }

    /// Whether `e` is a frame over the limit: complete (actix's parser), or declared so by its
    /// header (the frame guard).
    fn frame_too_large(&self, e: &ws::ProtocolError) -> bool {
        matches!(e, ws::ProtocolError::Overflow)
            || self.intake.as_ref().is_some_and(|i| i.tripped())
    }

    /// Closes the socket for a protocol abuse: the client broke the framing rules, so
    /// nothing more it sends can be trusted.
    fn abort(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: String) {
        tracing::debug!(session = self.id, ?code, reason = %why, "closing websocket");
        ctx.close(Some(CloseReason {
            code,
            description: Some(why),
        }));
        ctx.stop();
    }

    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.hub.settings().max_frame_bytes;
        let (first, data, last) = match item {
            Item::FirstText(data) => (Some(true), data, false),
            Item::FirstBinary(data) => (Some(false), data, false),
            Item::Continue(data) => (None, data, false),
            Item::Last(data) => (None, data, true),
        };
        match (first, self.fragments.as_mut()) {
            (Some(text), None) => {
                self.fragments = Some(Fragments {
                    text,
                    data: BytesMut::from(&data[..]),
                });
            }
            (None, Some(fragments)) => fragments.data.extend_from_slice(&data),
            _ => {
                return self.abort(
                    ctx,
                    CloseCode::Protocol,
                    "unexpected continuation frame".into(),
                )
            }
        }
        let size = self.fragments.as_ref().map_or(0, |f| f.data.len());
        if size > limit {
            return self.abort(
                ctx,
                CloseCode::Size,
                format!("message larger than {limit} bytes"),
            );
        }
        if last {
            let Some(done) = self.fragments.take() else {
                return;
            };
            if !done.text {
                return self.refuse(ctx, &binary_refused());
            }
            match std::str::from_utf8(&done.data) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => self.abort(ctx, CloseCode::Invalid, "text is not UTF-8".into()),
            }
        }
    }
}

fn binary_refused() -> ClientError {
    ClientError::new(
        ErrorCode::UnsupportedFrame,
        "binary frames are not part of the protocol; send JSON text",
    )
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // One wake-up in the mailbox at a time (the outbox's flag), plus a shutdown notice.
        ctx.set_mailbox_capacity(4);
        self.hub.broadcaster().do_send(Register {
            id: self.id,
            session: {
                let addr = ctx.address();
                SessionHandle {
                    wake: addr.clone().recipient(),
                    going_away: addr.clone().recipient(),
                    revoked: addr.recipient(),
                }
            },
            outbox: self.outbox.clone(),
            key_id: self.key_id.clone(),
            socket: self.socket.clone(),
        });
        // Asked after registering: a session that finds the hub still open registered before
        // the broadcaster was told to close every session, and is closed with them; one that
        // finds it closing would never be told.
        if self.hub.closing() {
            return self.abort(ctx, CloseCode::Away, "server shutting down".into());
        }
        ctx.run_interval(self.heartbeat_interval(), |act, ctx| {
            act.outbox.ran();
            let now = Instant::now();
            if now.duration_since(act.last_tick) > act.heartbeat_interval() * STALL_INTERVALS {
                act.last_heard = now;
            }
            act.last_tick = now;
            if now.duration_since(act.last_heard) > act.client_timeout() {
                let why = format!("no frame for {}s", act.client_timeout().as_secs());
                return act.abort(ctx, CloseCode::Policy, why);
            }
            ctx.ping(b"");
            // A wake-up that found the mailbox full is not lost: the heartbeat drains too.
            if !act.chunk_scheduled {
                act.drain(ctx);
            }
        });
        if let Some(after) = self.expires_in {
            ctx.run_later(after, |act, ctx| {
                act.abort(ctx, CloseCode::Other(TOKEN_EXPIRED), "token expired".into())
            });
        }
        tracing::debug!(session = self.id, "websocket session started");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.hub.broadcaster().do_send(Unregister { id: self.id });
        tracing::debug!(session = self.id, "websocket session stopped");
    }
}

impl Handler<Wake> for WsSession {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        if !self.chunk_scheduled {
            self.drain(ctx);
        }
    }
}

impl Handler<CredentialRevoked> for WsSession {
    type Result = ();

    fn handle(&mut self, _: CredentialRevoked, ctx: &mut Self::Context) {
        self.abort(
            ctx,
            CloseCode::Other(CREDENTIAL_REVOKED),
            "credential revoked".into(),
        );
    }
}

impl Handler<GoingAway> for WsSession {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        // Bounded by the outbox's capacity.
        while self.outbox.drain(DRAIN_CHUNK_MESSAGES, &mut self.drained) {}
        self.write_drained(ctx);
        self.abort(ctx, CloseCode::Away, "server shutting down".into());
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        if let Some(intake) = &self.intake {
            intake.handled_one();
        }
        match msg {
            Ok(ws::Message::Text(text)) => {
                if self.fragments.is_some() {
                    return self.abort(
                        ctx,
                        CloseCode::Protocol,
                        "text frame inside a fragmented message".into(),
                    );
                }
                self.on_text(&text, ctx)
            }
            Ok(ws::Message::Binary(_)) => self.refuse(ctx, &binary_refused()),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(e) if self.frame_too_large(&e) => {
                let limit = self.hub.settings().max_frame_bytes;
                self.abort(
                    ctx,
                    CloseCode::Size,
                    format!("frame larger than {limit} bytes"),
                )
            }
            // actix reports text that is not UTF-8 as an I/O error (its only word for it).
            Err(ws::ProtocolError::Io(e)) if e.to_string().contains("utf-8") => self.abort(
                ctx,
                CloseCode::Invalid,
                "text frame is not valid UTF-8".into(),
            ),
            Err(ws::ProtocolError::Io(_)) => {
                self.abort(ctx, CloseCode::Protocol, "unreadable frame".into())
            }
            Err(e) => self.abort(ctx, CloseCode::Protocol, e.to_string()),
        }
    }
}

/// Drains the next chunk on the *next* poll of the session rather than in this one, so each
/// poll of the response body carries one chunk and the connection's write buffer, not the
/// session, decides when more is taken from the outbox.
struct NextChunk {
    yielded: bool,
}

impl ActorFuture<WsSession> for NextChunk {
    type Output = ();

    fn poll(
        mut self: Pin<&mut Self>,
        act: &mut WsSession,
        ctx: &mut ws::WebsocketContext<WsSession>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        if !self.yielded {
            self.yielded = true;
            task.waker().wake_by_ref();
            return Poll::Pending;
        }
        act.chunk_scheduled = false;
        act.drain(ctx);
        Poll::Ready(())
    }
}
