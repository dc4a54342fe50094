//! Connections open per client network. A connection costs the server whether or not it
//! carries requests, and actix times out only a connection's first request head: a client that
//! sends one byte of its next request now and then holds the connection for ever. Each accepted
//! connection takes a place of its network (the /24 or /64 budgets use, see
//! [`super::peer::network_of`]); past `http.max_connections_per_network` it is marked
//! [`OverConnectionCap`], and its first request is answered 429 and the connection closed (the
//! first request head is the one actix times out, so such a connection lasts seconds). The place
//! is given back when the connection's data is dropped, with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use super::peer::network_of;

/// The places taken, by network.
#[derive(Debug, Default)]
pub struct Connections {
    max_per_network: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// Marks a connection accepted past its network's cap.
#[derive(Debug, Clone, Copy)]
pub struct OverConnectionCap;

/// One connection's place; given back when dropped.
#[derive(Debug)]
pub struct ConnectionPlace {
    connections: Arc<Connections>,
    network: String,
}

impl Connections {
    /// Places for `max_per_network` connections a network; 0: no cap.
    pub fn new(max_per_network: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max_per_network,
            open: Mutex::default(),
        })
    }

    /// A place for a connection from `ip`, or `None` when its network holds its share.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPlace> {
        let network = network_of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(network.clone()).or_default();
        if self.max_per_network > 0 && *held >= self.max_per_network {
            return None;
        }
        *held += 1;
        Some(ConnectionPlace {
            connections: self.clone(),
            network,
        })
    }

    /// Connections `ip`'s network holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&network_of(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.network) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.network);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_holds_its_share_and_a_place_given_back_is_taken_again() {
        let connections = Connections::new(2);
        let (a, b, other) = (
            "10.1.2.3".parse().unwrap(),
            "10.1.2.200".parse().unwrap(),
            "10.1.3.3".parse().unwrap(),
        );
        let first = connections.take(a).expect("a place");
        let second = connections.take(b).expect("a place");
        assert!(connections.take(a).is_none(), "the /24 holds two");
        let elsewhere = connections
            .take(other)
            .expect("another network's own places");
        drop(first);
        assert_eq!(connections.held(a), 1);
        let again = connections.take(a).expect("a place given back");
        drop((second, again, elsewhere));
        assert_eq!(connections.held(a), 0);
        assert!(
            connections.open.lock().unwrap().is_empty(),
            "no empty entries kept"
        );
        let unlimited = Connections::new(0);
        let places: Vec<_> = (0..1000).filter_map(|_| unlimited.take(a)).collect();
        assert_eq!(places.len(), 1000);
    }
}
