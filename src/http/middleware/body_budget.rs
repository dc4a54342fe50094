//! What request bodies may hold while they arrive and while their handler runs: a few bodies
//! per client at once, a share of memory per client, and a total for the process. A body is
//! charged for the buffer it is read into before the buffer is taken, and the charge is given
//! back when the response is ready, so a client that sends slowly or never finishes holds at
//! most its share, for at most `limits.body_timeout_secs`.
//!
//! The client is the API key when the request has one, else the address's network (see
//! [`crate::http::middleware::peer::network_of`]): a host cannot multiply its share by using more addresses.
//! Bodies without a key together hold at most a quarter of the total ([`PUBLIC_SHARE`]):
//! networks are cheap to come by (an IPv6 allocation holds thousands), and 512 of them sending
//! slowly would otherwise fill the total and turn every key holder's body away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::LimitSettings;
use crate::http::locks::lock;
use crate::telemetry::names;

/// The part of `limits.body_memory_bytes` bodies sent without a key may hold together.
pub const PUBLIC_SHARE: usize = 4;

/// Why a body may not be read (further).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client has `bodies_per_client` bodies in flight already.
    ClientBodies,
    /// The client holds `body_memory_per_client_bytes` already.
    ClientMemory,
    /// Every client together holds `body_memory_bytes`.
    TotalMemory,
    /// Bodies without a key together hold their share of `body_memory_bytes`.
    PublicMemory,
}

impl Refusal {
    /// The `reason` label of the refusal metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ClientBodies => "client_bodies",
            Refusal::ClientMemory => "client_memory",
            Refusal::TotalMemory => "total_memory",
            Refusal::PublicMemory => "public_memory",
        }
    }
}

#[derive(Debug, Default)]
struct Usage {
    total: usize,
    /// Bytes held by bodies sent without a key.
    public: usize,
    /// Per client: bodies in flight and bytes held.
    clients: HashMap<String, (usize, usize)>,
}

/// The budget of one process.
#[derive(Debug)]
pub struct BodyBudget {
    bodies_per_client: usize,
    per_client: usize,
    total: usize,
    usage: Mutex<Usage>,
}

impl BodyBudget {
    /// The budget the settings describe.
    pub fn new(settings: &LimitSettings) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            bodies_per_client: settings.bodies_per_client.max(1),
            per_client: settings.body_memory_per_client_bytes.max(1),
            total: settings.body_memory_bytes.max(1),
            usage: Mutex::new(Usage::default()),
        })
    }

    /// Starts one body of `client` (`public` when the request has no key), or says why it may
    /// not be read.
    pub fn start(self: &Arc<Self>, client: &str, public: bool) -> Result<BodyCharge, Refusal> {
        let mut usage = lock(&self.usage);
        let entry = usage.clients.entry(client.to_string()).or_default();
        if entry.0 >= self.bodies_per_client {
            return Err(refused(Refusal::ClientBodies));
        }
        entry.0 += 1;
        Ok(BodyCharge {
            budget: self.clone(),
            client: client.to_string(),
            public,
            bytes: 0,
        })
    }

    /// Bytes held by every body now.
    pub fn held(&self) -> usize {
        lock(&self.usage).total
    }

    /// Clients with a body in flight now.
    pub fn clients(&self) -> usize {
        lock(&self.usage).clients.len()
    }
}

fn refused(refusal: Refusal) -> Refusal {
    metrics::counter!(names::BODIES_REFUSED, "reason" => refusal.as_str()).increment(1);
    refusal
}

/// One body's place in the budget: what it holds, given back when dropped.
#[derive(Debug)]
pub struct BodyCharge {
    budget: Arc<BodyBudget>,
    client: String,
    public: bool,
    bytes: usize,
}

impl BodyCharge {
    /// Charges `n` more bytes, all or nothing.
    pub fn grow(&mut self, n: usize) -> Result<(), Refusal> {
        let budget = &self.budget;
        let mut usage = lock(&budget.usage);
        if usage.total + n > budget.total {
            return Err(refused(Refusal::TotalMemory));
        }
        if self.public && usage.public + n > budget.total / PUBLIC_SHARE {
            return Err(refused(Refusal::PublicMemory));
        }
        let held = usage.clients.get(&self.client).map_or(0, |e| e.1);
        if held + n > budget.per_client {
            return Err(refused(Refusal::ClientMemory));
        }
        usage.total += n;
        if self.public {
            usage.public += n;
        }
        if let Some(entry) = usage.clients.get_mut(&self.client) {
            entry.1 += n;
        }
        self.bytes += n;
        metrics::gauge!(names::BODY_BYTES_HELD).set(usage.total as f64);
        Ok(())
    }

    /// Bytes this body holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BodyCharge {
    fn drop(&mut self) {
        let mut usage = lock(&self.budget.usage);
        usage.total -= self.bytes;
        if self.public {
            usage.public -= self.bytes;
        }
        let total = usage.total;
        if let Some(entry) = usage.clients.get_mut(&self.client) {
            entry.0 -= 1;
            entry.1 -= self.bytes;
            if entry.0 == 0 {
                usage.clients.remove(&self.client);
            }
        }
        metrics::gauge!(names::BODY_BYTES_HELD).set(total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bodies: usize, per_client: usize, total: usize) -> Arc<BodyBudget> {
        BodyBudget::new(&LimitSettings {
            bodies_per_client: bodies,
            body_memory_per_client_bytes: per_client,
            body_memory_bytes: total,
            ..LimitSettings::default()
        })
    }

    #[test]
    fn each_client_has_its_bodies_and_bytes_and_all_share_the_total() {
        let b = budget(2, 100, 150);
        let mut a1 = b.start("a", false).unwrap();
        let mut a2 = b.start("a", false).unwrap();
        assert_eq!(b.start("a", false).unwrap_err(), Refusal::ClientBodies);
        a1.grow(60).unwrap();
        assert_eq!(a2.grow(50).unwrap_err(), Refusal::ClientMemory);
        a2.grow(40).unwrap();
        let mut c = b.start("c", false).unwrap();
        assert_eq!(c.grow(60).unwrap_err(), Refusal::TotalMemory);
        c.grow(50).unwrap();
        assert_eq!(b.held(), 150);
        drop(a1);
        assert_eq!(b.held(), 90);
        let mut a3 = b.start("a", false).unwrap();
        a3.grow(60).unwrap();
        drop((a2, a3, c));
        assert_eq!((b.held(), b.clients()), (0, 0));
    }

    #[test]
    fn bodies_without_a_key_share_a_quarter_and_leave_the_rest_to_keys() {
        let b = budget(4, 100, 400);
        let mut net1 = b.start("net:1", true).unwrap();
        let mut net2 = b.start("net:2", true).unwrap();
        net1.grow(60).unwrap();
        assert_eq!(net2.grow(50).unwrap_err(), Refusal::PublicMemory);
        net2.grow(40).unwrap();
        let mut key = b.start("key:k", false).unwrap();
        key.grow(100).unwrap();
        let mut other = b.start("key:l", false).unwrap();
        other.grow(100).unwrap();
        drop(net1);
        let mut net3 = b.start("net:3", true).unwrap();
        net3.grow(60).unwrap();
        drop((net2, net3, key, other));
        assert_eq!((b.held(), b.clients()), (0, 0));
    }
}
