//! [`Hub`]: what the rest of the process holds of the live service: the broadcaster's
//! address and the admission counter that caps concurrent sessions.

use crate::config::WsSettings;
use crate::models::places::{Place, Places};
use crate::telemetry::names;
use actix::{Actor, Addr, Arbiter, ArbiterHandle};
use bytestring::ByteString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use super::broadcaster::{Backlog, Broadcaster, LiveIntake};
use super::fanout;
use super::messages::CloseAll;
use super::protocol::MessageClass;

/// The live-subscription service of one process: the broadcaster (on its own thread, so
/// fan-out to many sessions never delays the pipeline) and session admission.
#[derive(Clone)]
pub struct Hub {
    broadcaster: Addr<Broadcaster>,
    /// The pipeline's bounded hand-off of committed batches to the broadcaster.
    intake: Arc<LiveIntake>,
    arbiter: ArbiterHandle,
    latest_metrics: Arc<RwLock<Option<ByteString>>>,
    sessions: Arc<AtomicUsize>,
    /// Sessions per client (a key, or a network without one).
    per_client: Arc<Places>,
    next_id: Arc<AtomicU64>,
    settings: Arc<WsSettings>,
    /// Set once the broadcaster is told to close every session (shutdown): a session admitted
    /// later would never be told, and the broadcaster's thread stops right after.
    closing: Arc<AtomicBool>,
}

/// Why a session was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The process holds `ws.max_sessions`.
    Full,
    /// The client holds `ws.max_sessions_per_client`.
    ClientFull,
    /// The process is shutting down.
    Closing,
}

/// Zero series for the live connections' metrics, so a dashboard reads 0 before the first
/// session, message or refusal rather than no data.
fn seed_series() {
    metrics::gauge!(names::WS_SESSIONS).increment(0.0);
    metrics::counter!(names::WS_MESSAGES_DROPPED).increment(0);
    for class in MessageClass::ALL {
        metrics::counter!(names::WS_MESSAGES_SENT, "type" => class.label()).increment(0);
    }
    for reason in [
        "origin",
        "bad_handshake",
        "too_many_sessions",
        "too_many_client_sessions",
        "shutting_down",
    ] {
        metrics::counter!(names::WS_REJECTED, "reason" => reason).increment(0);
    }
}

impl Hub {
    /// Starts the broadcaster on a new arbiter. Must run inside an actix system.
    pub fn start(settings: WsSettings) -> Hub {
        let token_ttl = crate::config::AuthSettings::default().token_ttl_secs;
        Self::start_with(settings, None, Duration::from_secs(token_ttl))
    }

    /// [`Hub::start`], offering every message this process produces to `fanout` for the other
    /// processes of the group, for sessions that live at most `session_lifetime` (one token
    /// lifetime).
    pub fn start_with(
        settings: WsSettings,
        fanout: Option<fanout::FanoutSender>,
        session_lifetime: Duration,
    ) -> Hub {
        seed_series();
        let arbiter = Arbiter::new().handle();
        let latest_metrics = Arc::new(RwLock::new(None));
        let cache = latest_metrics.clone();
        let write_timeout = Duration::from_secs(settings.write_timeout_secs.max(1));
        let heartbeat = Duration::from_secs(settings.heartbeat_secs.max(1));
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let (their_backlog, their_fanout) = (backlog.clone(), fanout.clone());
        let broadcaster = Broadcaster::start_in_arbiter(&arbiter, move |_| {
            Broadcaster::new(cache)
                .with_backlog(their_backlog)
                .with_fanout(their_fanout)
                .with_write_timeout(write_timeout, heartbeat)
                .with_session_lifetime(session_lifetime)
        });
        let intake = Arc::new(LiveIntake::new(
            backlog,
            settings.max_pending_posts,
            broadcaster.clone().recipient(),
            fanout,
        ));
        Hub {
            broadcaster,
            intake,
            arbiter,
            latest_metrics,
            sessions: Arc::new(AtomicUsize::new(0)),
            per_client: Places::new(settings.max_sessions_per_client.max(1)),
            next_id: Arc::new(AtomicU64::new(1)),
            settings: Arc::new(settings),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The broadcaster, for producers of live events ([`MetricsUpdate`], [`Publish`]).
    pub fn broadcaster(&self) -> Addr<Broadcaster> {
        self.broadcaster.clone()
    }

    /// Where the pipeline hands committed batches for live delivery.
    pub fn live_intake(&self) -> Arc<LiveIntake> {
        self.intake.clone()
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

    /// A new session's id, unique in this process.
    pub fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a session slot for `client` (a key, or a network without one), or says which
    /// cap refused it.
    pub fn admit(&self, client: &str) -> Result<SessionPermit, Refused> {
        if self.closing() {
            return Err(Refused::Closing);
        }
        let client_slot = self.per_client.take(client).ok_or(Refused::ClientFull)?;
        let max = self.settings.max_sessions;
        let before = self
            .sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Refused::Full)?;
        metrics::gauge!(names::WS_SESSIONS).set((before + 1) as f64);
        metrics::counter!(names::WS_SESSIONS_OPENED).increment(1);
        Ok(SessionPermit {
            sessions: self.sessions.clone(),
            _client: client_slot,
        })
    }

    /// Whether the hub has begun closing every session: a session starting now closes too.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Sends every session what it has queued and closes it (server shutdown), then stops
    /// the broadcaster's thread. From the start, no session is admitted, and one admitted
    /// before but starting after closes itself (see [`Hub::closing`]).
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.broadcaster.send(CloseAll).await;
        self.arbiter.stop();
    }
}

/// A session slot, given back when the session is dropped (whatever ends it).
pub struct SessionPermit {
    sessions: Arc<AtomicUsize>,
    _client: Place,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let now = self.sessions.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(names::WS_SESSIONS).set(now as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP server serves on while the rest of the process stops: an upgrade after the
    /// broadcaster closed every session was admitted, registered with a broadcaster whose
    /// thread had stopped, never told to go away and cut off when the server stopped.
    #[actix_rt::test]
    async fn a_hub_that_has_closed_its_sessions_admits_no_more() {
        let hub = Hub::start(WsSettings::default());
        let client = "net:192.0.2.0/24";
        let open = hub.admit(client).expect("admitted while running");
        assert!(!hub.closing());
        hub.shutdown().await;
        assert!(hub.closing());
        assert_eq!(hub.admit(client).err(), Some(Refused::Closing));
        assert_eq!(hub.sessions(), 1);
        drop(open);
        assert_eq!(hub.sessions(), 0);
    }
}
