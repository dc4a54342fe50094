//! `GET /ws`: the WebSocket upgrade. The sessions themselves live in [`crate::ws`]; this is the
//! HTTP side of the handshake, with the caller's credential and the API's error shape.

use crate::models::errors::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{get, web, HttpRequest};
use actix_web_actors::ws;

use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::State;
use crate::telemetry::names;
use crate::ws::frame_guard::{FrameGuard, Intake};
use crate::ws::hub::Refused;
use crate::ws::socket::{ConnectionFd, SocketHandle};
use crate::ws::WsSession;

/// `GET /ws`: upgrades to a WebSocket session. 400 for a request that is not a WebSocket
/// handshake, 503 when the process holds `ws.max_sessions` sessions or is shutting down, all in
/// the API's error shape.
#[utoipa::path(
    tag = "live", operation_id = "websocket", summary = "Live updates over a WebSocket",
    description = "A WebSocket handshake (RFC 6455). Once upgraded, the client sends \
            `subscribe`/`unsubscribe` messages naming topics and filters, and receives `post:new`, \
            `metrics:update`, `virality:update` and `alert:*` messages as JSON text frames.",
    params(("Upgrade" = String, Header, description = "`websocket`"), ("Connection" = String, Header, description = "`Upgrade`"), ("Sec-WebSocket-Key" = String, Header, description = "The handshake nonce (base64 of 16 bytes)"), ("Sec-WebSocket-Version" = String, Header, description = "`13`")),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket"),
        (status = 400, description = "Not a WebSocket handshake (`bad_handshake`)", body = ErrorBody),
        (status = 429, description = "The caller (its key, or its network without one) holds \
            `ws.max_sessions_per_client` sessions already (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "Live updates do not run in this process or it is shutting \
            down (`unavailable`), or it serves `ws.max_sessions` sessions already \
            (`too_many_sessions`); retry later or elsewhere", body = ErrorBody),
    )
)]
#[get("/ws")]
pub async fn connect(req: HttpRequest, payload: web::Payload, state: State) -> Answer {
    let Some(hub) = state.ws.as_ref() else {
        return Err(ApiError::unavailable(
            "live subscriptions are not running in this process",
        ));
    };
    let mut response = ws::handshake(&req).map_err(|e| {
        metrics::counter!(names::WS_REJECTED, "reason" => "bad_handshake").increment(1);
        ApiError::bad_request(ErrorCode::BadHandshake, e.to_string())
    })?;
    let caller = state.caller();
    let client = state.client_id();
    let permit = hub.admit(&client).map_err(|refused| match refused {
        Refused::Full => {
            metrics::counter!(names::WS_REJECTED, "reason" => "too_many_sessions").increment(1);
            ApiError::new(
                ErrorCode::TooManySessions,
                format!(
                    "this process serves at most {} live sessions; retry later or elsewhere",
                    hub.settings().max_sessions
                ),
            )
        }
        Refused::ClientFull => {
            metrics::counter!(names::WS_REJECTED, "reason" => "too_many_client_sessions")
                .increment(1);
            ApiError::rate_limited(
                "sessions",
                format!(
                    "this client holds {} live sessions already (ws.max_sessions_per_client); \
                     close one first",
                    hub.settings().max_sessions_per_client
                ),
                std::time::Duration::from_secs(5),
            )
        }
        Refused::Closing => {
            metrics::counter!(names::WS_REJECTED, "reason" => "shutting_down").increment(1);
            ApiError::unavailable("this process is shutting down; connect to another")
        }
    })?;
    let id = hub.next_session_id();
    let socket = req
        .conn_data::<ConnectionFd>()
        .and_then(|fd| SocketHandle::duplicate(*fd).ok());
    if let Some(socket) = &socket {
        socket.limit_send_buffer(hub.settings().send_buffer_bytes);
    }
    let mut session = WsSession::new(hub.clone(), id, permit)
        .for_key(caller.and_then(|p| p.key_id.clone()))
        .with_socket(socket);
    // A session lives no longer than the credential it was opened with: a token's own expiry,
    // or for an API key presented directly, about one token lifetime, after which the client
    // reconnects and the key is checked again.
    let left = caller.and_then(|p| match p.expires_at {
        Some(at) => Some((at - chrono::Utc::now()).to_std().unwrap_or_default()),
        None => p.key_id.as_ref().map(|_| {
            key_session_lifetime(
                Duration::from_secs(state.settings.auth.token_ttl_secs),
                &mut rand::rng(),
            )
        }),
    });
    if let Some(left) = left {
        session = session.expiring_after(left);
    }
    let max_frame = hub.settings().max_frame_bytes;
    let intake = Arc::new(Intake::default());
    let session = session.reading_through(intake.clone());
    let payload = FrameGuard::new(payload, max_frame, intake);
    let codec = actix_http::ws::Codec::new().max_size(max_frame);
    Ok(response.streaming(ws::WebsocketContext::with_codec(session, payload, codec)))
}

/// How long a session opened with an API key lives: drawn for each session between 90% and
/// all of one token lifetime (`ttl`). Never more, as it bounds how long the session of a key
/// revoked or expired meanwhile lasts; not always all of it, or the clients that connected
/// together (all of them, after a deploy) would be closed together every `ttl` and reconnect
/// in one storm.
fn key_session_lifetime(ttl: Duration, rng: &mut impl rand::Rng) -> Duration {
    let most = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(most - most / 10..=most))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_session_lives_between_nine_tenths_and_all_of_a_token_lifetime() {
        let mut rng = rand::rng();
        for ttl in [
            Duration::from_secs(3_600),
            Duration::from_secs(60),
            Duration::from_secs(1),
        ] {
            let lifetimes: Vec<Duration> = (0..1_000)
                .map(|_| key_session_lifetime(ttl, &mut rng))
                .collect();
            for lifetime in &lifetimes {
                assert!(*lifetime <= ttl, "{lifetime:?} past {ttl:?}");
                assert!(
                    lifetime.as_secs_f64() >= 0.9 * ttl.as_secs_f64() - 1e-9,
                    "{lifetime:?} short of {ttl:?}"
                );
            }
            assert!(
                lifetimes.iter().any(|l| *l != lifetimes[0]),
                "every draw was {:?} for {ttl:?}",
                lifetimes[0]
            );
        }
        assert_eq!(
            key_session_lifetime(Duration::ZERO, &mut rng),
            Duration::ZERO
        );
    }
}
