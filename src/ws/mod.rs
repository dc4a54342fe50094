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
//! - [`fanout`]: the cross-process fan-out over Redis pub/sub: what this process produced
//!   goes to the other processes of the group, what they produced comes to these sessions.
//!
//! [`Hub`] is what the rest of the application holds: the broadcaster's address and the
//! admission counter that caps concurrent sessions.

pub mod broadcaster;
pub mod fanout;
pub mod outbox;
pub mod protocol;
pub mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytestring::ByteString;

pub use self::broadcaster::{Broadcaster, MetricsUpdate, Publish};
pub use self::protocol::{FilterKeys, Topic};
pub use self::session::WsSession;
use crate::config::WsSettings;
use crate::http::error::ApiError;
use crate::http::state::State;
use crate::telemetry::names;

/// Default cap on concurrent sessions (`ws.max_sessions`).
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default messages queued per session before the oldest posts are dropped
/// (`ws.queue_capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1_024;
/// Default largest client frame or message, in bytes (`ws.max_frame_bytes`).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// The live-subscription service of one process: the broadcaster (on its own thread, so
/// fan-out to many sessions never delays the pipeline) and session admission.
#[derive(Clone)]
pub struct Hub {
    broadcaster: Addr<Broadcaster>,
    arbiter: ArbiterHandle,
    latest_metrics: Arc<RwLock<Option<ByteString>>>,
    sessions: Arc<AtomicUsize>,
    next_id: Arc<AtomicU64>,
    settings: Arc<WsSettings>,
}

impl Hub {
    /// Starts the broadcaster on a new arbiter. Must run inside an actix system.
    pub fn start(settings: WsSettings) -> Hub {
        Self::start_with(settings, None)
    }

    /// [`Hub::start`], offering every message this process produces to `fanout` for the other
    /// processes of the group.
    pub fn start_with(settings: WsSettings, fanout: Option<fanout::FanoutSender>) -> Hub {
        let arbiter = Arbiter::new().handle();
        let latest_metrics = Arc::new(RwLock::new(None));
        let cache = latest_metrics.clone();
        let broadcaster = Broadcaster::start_in_arbiter(&arbiter, move |_| {
            Broadcaster::new(cache).with_fanout(fanout)
        });
        Hub {
            broadcaster,
            arbiter,
            latest_metrics,
            sessions: Arc::new(AtomicUsize::new(0)),
            next_id: Arc::new(AtomicU64::new(1)),
            settings: Arc::new(settings),
        }
    }

    /// The broadcaster, for producers of live events ([`MetricsUpdate`], [`Publish`]).
    pub fn broadcaster(&self) -> Addr<Broadcaster> {
        self.broadcaster.clone()
    }

    /// The WebSocket settings in force.
    pub fn settings(&self) -> &WsSettings {
        &self.settings
    }

    /// Open sessions now.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// The latest metrics snapshot as a `metrics:initial` message, if one was published.
    pub fn latest_metrics(&self) -> Option<ByteString> {
        self.latest_metrics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes a session slot, or `None` at the cap.
    fn admit(&self) -> Option<SessionPermit> {
        let max = self.settings.max_sessions;
        self.sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|before| {
                metrics::gauge!(names::WS_SESSIONS).set((before + 1) as f64);
                metrics::counter!(names::WS_SESSIONS_OPENED).increment(1);
                SessionPermit {
                    sessions: self.sessions.clone(),
                }
            })
    }

    /// Sends every session what it has queued and closes it (server shutdown), then stops
    /// the broadcaster's thread.
    pub async fn shutdown(&self) {
        let _ = self.broadcaster.send(broadcaster::CloseAll).await;
        self.arbiter.stop();
    }
}

/// A session slot, given back when the session is dropped (whatever ends it).
pub struct SessionPermit {
    sessions: Arc<AtomicUsize>,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let now = self.sessions.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(names::WS_SESSIONS).set(now as f64);
    }
}

/// `GET /ws`: upgrades to a WebSocket session. 400 for a request that is not a WebSocket
/// handshake, 503 when the process holds `ws.max_sessions` sessions, both in the API's error
/// shape.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "live",
    operation_id = "websocket",
    summary = "Live updates over a WebSocket",
    description = "A WebSocket handshake (RFC 6455). Once upgraded, the client sends \
        `subscribe`/`unsubscribe` messages naming topics and filters, and receives `post:new`, \
        `metrics:update`, `virality:update` and `alert:*` messages as JSON text frames.",
    params(
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Connection" = String, Header, description = "`Upgrade`"),
        ("Sec-WebSocket-Key" = String, Header, description = "The handshake nonce (base64 of 16 bytes)"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket"),
        (status = 400, description = "Not a WebSocket handshake (`bad_handshake`)",
            body = crate::http::error::ErrorBody),
        (status = 503, description = "Live updates do not run in this process, or it serves \
            `ws.max_sessions` sessions already (`too_many_sessions`); retry later or elsewhere",
            body = crate::http::error::ErrorBody),
    )
)]
pub async fn connect(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> Result<HttpResponse, ApiError> {
    let Some(hub) = state.ws.as_ref() else {
        return Err(ApiError::unavailable(
            "live subscriptions are not running in this process",
        ));
    };
    let mut response = ws::handshake(&req).map_err(|e| {
        metrics::counter!(names::WS_REJECTED, "reason" => "bad_handshake").increment(1);
        ApiError::bad_request("bad_handshake", e.to_string())
    })?;
    let permit = hub.admit().ok_or_else(|| {
        metrics::counter!(names::WS_REJECTED, "reason" => "too_many_sessions").increment(1);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            format!(
                "this process serves at most {} live sessions; retry later or elsewhere",
                hub.settings.max_sessions
            ),
        )
    })?;
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let caller = state.caller();
    let mut session =
        WsSession::new(hub.clone(), id, permit).for_key(caller.and_then(|p| p.key_id.clone()));
    // A session lives no longer than the credential it was opened with: a token's own expiry,
    // or for an API key presented directly, one token lifetime, after which the client
    // reconnects and the key is checked again.
    let expires_at = caller.and_then(|p| {
        p.expires_at.or_else(|| {
            p.key_id.as_ref().map(|_| {
                chrono::Utc::now()
                    + chrono::TimeDelta::seconds(state.settings.auth.token_ttl_secs as i64)
            })
        })
    });
    if let Some(at) = expires_at {
        let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        session = session.expiring_after(left);
    }
    let codec = actix_http::ws::Codec::new().max_size(hub.settings.max_frame_bytes);
    Ok(response.streaming(ws::WebsocketContext::with_codec(session, payload, codec)))
}
