//! Connections open per client network. A connection costs the server whether or not it
//! carries requests, and actix times out only a connection's first request head: a client that
//! sends one byte of its next request now and then holds the connection for ever. Each accepted
//! connection takes a place ([`crate::models::places`]) of its network (the /24 or /64 budgets
//! use, see [`super::peer::network_of`]); past `http.max_connections_per_network` it is marked
//! [`OverConnectionCap`], and its first request is answered 429 and the connection closed (the
//! first request head is the one actix times out, so such a connection lasts seconds). The place
//! is given back when the connection's data is dropped, with it.
//!
//! As many connections of a network again as its cap may wait past it for a request to be told
//! why; the rest are shut as they are accepted. Each one waiting holds a descriptor for seconds,
//! and a client opening hundreds a second would otherwise hold thousands, until the process
//! could accept no connection from anyone. A burst of a few hundred requests at once (one
//! connection each) still gets clear 429s.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;

use super::peer::{network_of, TrustedProxies};
use crate::models::places::Places;

/// Marks a connection accepted past its network's cap.
#[derive(Debug, Clone, Copy)]
pub struct OverConnectionCap;

/// What `HttpServer::on_connect` decides for each accepted connection.
pub struct Admission {
    proxies: TrustedProxies,
    held: Arc<Places>,
    noticed: Arc<Places>,
}

impl Admission {
    /// Admission with at most `cap` connections a network (0: no cap), and as many again
    /// waiting for their 429.
    pub fn new(cap: usize, proxies: TrustedProxies) -> Admission {
        Admission {
            proxies,
            held: Places::new(cap),
            noticed: Places::new(cap),
        }
    }

    /// Records `tcp`'s descriptor and its place in `data`, marks it over the cap, or shuts it.
    pub fn admit(&self, tcp: &TcpStream, data: &mut Extensions) {
        data.insert(crate::ws::socket::ConnectionFd(tcp.as_raw_fd()));
        let Ok(peer) = tcp.peer_addr() else { return };
        if self.proxies.trusts(peer.ip()) {
            return;
        }
        let network = network_of(peer.ip());
        if let Some(place) = self.held.take(&network) {
            data.insert(place);
            return;
        }
        if let Some(notice) = self.noticed.take(&network) {
            metrics::counter!(crate::telemetry::names::CONNECTIONS_REFUSED, "outcome" => "answered")
                .increment(1);
            data.insert(notice);
            data.insert(OverConnectionCap);
            return;
        }
        metrics::counter!(crate::telemetry::names::CONNECTIONS_REFUSED, "outcome" => "shut")
            .increment(1);
        // SAFETY: shutdown on the descriptor of a connection the server has just accepted and
        // still owns; it closes nothing, so the descriptor stays the server's to close.
        unsafe {
            libc::shutdown(tcp.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}
