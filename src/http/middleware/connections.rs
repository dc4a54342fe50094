//! Connections open per client network. A connection costs the server whether or not it
//! carries requests, and actix times out only a connection's first request head: a client that
//! sends one byte of its next request now and then holds the connection for ever. Each accepted
//! connection takes a place ([`crate::models::places`]) of its network (the /24 or /64 budgets
//! use, see [`super::peer::network_of`]); past `http.max_connections_per_network` it is marked
//! [`OverConnectionCap`], and its first request is answered 429 and the connection closed (the
//! first request head is the one actix times out, so such a connection lasts seconds). The place
//! is given back when the connection's data is dropped, with it.

/// Marks a connection accepted past its network's cap.
#[derive(Debug, Clone, Copy)]
pub struct OverConnectionCap;
