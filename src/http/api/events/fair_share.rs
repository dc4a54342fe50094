//! Sharing what the consumer group drains between the producers that append over HTTP, once
//! the group has fallen behind (`ingest.fair_share_after_secs`).
//!
//! Each producer (an ingest key, or a network on an open server) has a lane that measures
//! what it asks for (events per second, refused ones included, decayed over [`DEMAND_SECS`]).
//! While the group is behind, the capacity (what the group drained lately, divided between the
//! processes of the group, and scaled by how far behind it is: see [`Controller`]) is shared
//! max-min fairly:
//! producers asking less than an equal share get all they ask, and the rest is split equally
//! between the others (the water level of [`fair_level`]). Every key has the same events
//! budget (`limits.per_key_events_per_sec`), so equal shares are shares in proportion to the
//! budgets. A lane refills at the level and may run into debt by one request, so a producer
//! sending batches larger than a second's share still gets one through, then waits.
//!
//! The lanes are per process, bounded like the rate limiter's buckets: past [`MAX_LANES`]
//! producers, idle lanes are dropped, and new producers share one overflow lane.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::locks::lock;
use crate::http::middleware::callers::key_for;

/// Seconds over which a producer's demand and admitted rate are averaged.
pub const DEMAND_SECS: f64 = 5.0;
/// Most lanes kept; producers beyond share one.
pub const MAX_LANES: usize = 10_000;
/// Share of the drained rate handed out while far behind.
pub const MIN_SHARE: f64 = 0.1;
/// Share of the drained rate handed out while sharing and under the set point.
pub const MAX_SHARE: f64 = 1.25;
/// A group draining less than this many entries a second is stalled (PostgreSQL away, say):
/// shares of nothing would refuse everyone, so Redis buffers instead, up to
/// `ingest.max_backlog_secs`.
pub const STALLED_PER_SEC: f64 = 1.0;

/// An exponentially decayed rate.
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    per_sec: f64,
    at: Option<Instant>,
}

impl Rate {
    fn at(&self, now: Instant) -> f64 {
        match self.at {
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                self.per_sec * (-dt / DEMAND_SECS).exp()
            }
            None => 0.0,
        }
    }

    fn add(&mut self, n: f64, now: Instant) {
        self.per_sec = self.at(now) + n / DEMAND_SECS;
        self.at = Some(now);
    }
}

#[derive(Debug, Default)]
struct Lane {
    asked: Rate,
    admitted: Rate,
    /// Events it may still append at the current level; below zero after a large request.
    tokens: f64,
    refilled: Option<Instant>,
    refused: u64,
    /// The wait it was last told (`Retry-After`), while behind.
    told_wait: Option<Duration>,
}

/// What one producer asks and gets, for `GET /api/v1/pipeline`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProducerShare {
    /// The producer (`key:<key id>`, or the client's network on an open server).
    pub producer: String,
    /// Events a second it asked to append, refused ones included, over the last seconds.
    pub asked_per_sec: f64,
    /// Events a second appended.
    pub admitted_per_sec: f64,
    /// Its share of what the group drains, events a second, while the group is behind
    /// (null when it is not: every producer appends within its own budget).
    pub share_per_sec: Option<f64>,
    /// Its share of everything this process appended over the last seconds, 0 to 1.
    pub share_of_admitted: f64,
    /// Events refused for being over its share or its window since this process started.
    pub refused: u64,
    /// The wait it was last asked to keep (`Retry-After`) while over its share or window, in
    /// seconds.
    pub told_wait_secs: Option<f64>,
    /// What the producer's key may send; null for a key that may send anything, and for a
    /// producer without a key.
    pub scope: Option<crate::models::key_scope::KeyScope>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FairShare {
    lanes: Mutex<HashMap<String, Lane>>,
}

impl FairShare {
    /// Whether `who` may append `n` events at `now`; `capacity` is what the group may take a
    /// second from this process while behind (`None`: not behind, no sharing). `Err` holds
    /// how long until it may.
    pub fn admit(
        &self,
        who: &str,
        n: usize,
        capacity: Option<f64>,
        now: Instant,
    ) -> Result<(), Duration> {
        let n = n as f64;
        let mut lanes = lock(&self.lanes);
        let who = key_for(&mut lanes, who, MAX_LANES, MAX_LANES, |lanes| {
            lanes.retain(|_, lane| lane.asked.at(now) >= 0.01)
        });
        let level = capacity.map(|capacity| {
            let demands: Vec<f64> = lanes
                .iter()
                .map(|(name, lane)| {
                    let asked = lane.asked.at(now);
                    if name == who {
                        asked.max(n / DEMAND_SECS)
                    } else {
                        asked
                    }
                })
                .chain((!lanes.contains_key(who)).then_some(n / DEMAND_SECS))
                .collect();
            fair_level(capacity, &demands)
        });
        let lane = lanes.entry(who.to_string()).or_default();
        lane.asked.add(n, now);
        let Some(level) = level else {
            lane.tokens = 0.0;
            lane.refilled = None;
            lane.admitted.add(n, now);
            return Ok(());
        };
        // A lane starts full: a producer new to a busy server gets its second's share at once.
        let cap = level.max(1.0);
        lane.tokens = match lane.refilled {
            Some(at) => {
                (lane.tokens + now.saturating_duration_since(at).as_secs_f64() * level).min(cap)
            }
            None => cap,
        };
        lane.refilled = Some(now);
        if lane.tokens >= 0.0 {
            lane.tokens -= n;
            lane.admitted.add(n, now);
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((-lane.tokens / level.max(1e-3)).min(3_600.0));
            lane.refused += n as u64;
            lane.told_wait = Some(wait);
            Err(wait)
        }
    }

    /// Records `n` events of `who` refused elsewhere for the same cause (its window, see
    /// [`crate::http::api::events::outstanding`]), told to wait `wait`, so the pipeline API shows them with the
    /// rest.
    pub fn refused_elsewhere(&self, who: &str, n: usize, wait: Duration, now: Instant) {
        let mut lanes = lock(&self.lanes);
        let Some(lane) = lanes.get_mut(who) else {
            return;
        };
        lane.asked.add(n as f64, now);
        lane.refused += n as u64;
        lane.told_wait = Some(wait);
    }

    /// Every producer seen lately, busiest first; `capacity` as for [`FairShare::admit`].
    pub fn shares(&self, capacity: Option<f64>, now: Instant) -> Vec<ProducerShare> {
        let lanes = lock(&self.lanes);
        let demands: Vec<f64> = lanes.values().map(|lane| lane.asked.at(now)).collect();
        let level = capacity.map(|capacity| fair_level(capacity, &demands));
        let admitted_total: f64 = lanes.values().map(|lane| lane.admitted.at(now)).sum();
        let mut shares: Vec<ProducerShare> = lanes
            .iter()
            .filter(|(_, lane)| lane.asked.at(now) >= 0.01 || lane.refused > 0)
            .map(|(name, lane)| {
                let asked = lane.asked.at(now);
                let admitted = lane.admitted.at(now);
                ProducerShare {
                    producer: name.clone(),
                    asked_per_sec: asked,
                    admitted_per_sec: admitted,
                    share_per_sec: level.map(|level| level.min(asked)),
                    share_of_admitted: if admitted_total > 0.0 {
                        admitted / admitted_total
                    } else {
                        0.0
                    },
                    refused: lane.refused,
                    told_wait_secs: lane.told_wait.map(|w| w.as_secs_f64()),
                    scope: None,
                }
            })
            .collect();
        shares.sort_by(|a, b| b.asked_per_sec.total_cmp(&a.asked_per_sec));
        shares
    }
}

/// The max-min fair level of `capacity` between `demands`: producers asking less get what
/// they ask, the others this much each. Infinite when every demand fits.
pub fn fair_level(capacity: f64, demands: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = demands.iter().map(|d| d.max(0.0)).collect();
    sorted.sort_by(f64::total_cmp);
    let mut left = capacity.max(0.0);
    for (i, demand) in sorted.iter().enumerate() {
        let level = left / (sorted.len() - i) as f64;
        if *demand > level {
            return level;
        }
        left -= demand;
    }
    f64::INFINITY
}

/// When the HTTP intake shares, and how much: a proportional controller on the delay a new
/// entry faces (the backlog over what the group drained lately), whose set point is
/// `ingest.fair_share_after_secs`.
///
/// Sharing starts when the oldest unacknowledged entry waited past the set point and the delay
/// is past it too, and stops when the delay is under half of it. An old entry alone (one held
/// by a process that died, until it is claimed) leaves the rest flowing and the delay short,
/// so it starts nothing: sharing what was drained then would shrink every share to what was
/// last admitted. While sharing, the capacity is what the group drained, divided between its
/// processes, times a share that is 1 at the set point, falls to [`MIN_SHARE`] as the delay
/// grows (a backlog that built up before sharing began drains again within seconds) and rises
/// to [`MAX_SHARE`] under it. A group draining nothing is stalled (PostgreSQL away): nothing
/// is shared, and Redis buffers up to `ingest.max_backlog_secs`.
#[derive(Debug, Default)]
pub struct Controller {
    state: Mutex<ControllerState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ControllerState {
    engaged: bool,
    capacity: Option<f64>,
}

/// What the controller reads: one reading of the backlog.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub oldest_age_secs: Option<f64>,
    pub backlog: u64,
    pub drained_per_sec: Option<f64>,
    pub processes: i64,
}

impl Controller {
    /// What the group may take a second from this process now (`None`: no sharing), under
    /// the set point `target_secs` (0: never share).
    pub fn capacity(&self, load: Load, target_secs: f64) -> Option<f64> {
        let mut state = lock(&self.state);
        let capacity = next_capacity(&mut state.engaged, load, target_secs);
        state.capacity = capacity;
        capacity
    }

    /// The capacity last decided.
    pub fn last(&self) -> Option<f64> {
        lock(&self.state).capacity
    }
}

fn next_capacity(engaged: &mut bool, load: Load, target_secs: f64) -> Option<f64> {
    let drained = load.drained_per_sec.unwrap_or(0.0);
    if target_secs <= 0.0 || drained < STALLED_PER_SEC {
        *engaged = false;
        return None;
    }
    let delay = load.backlog as f64 / drained;
    *engaged = if *engaged {
        delay > target_secs / 2.0
    } else {
        load.oldest_age_secs.is_some_and(|age| age > target_secs) && delay > target_secs
    };
    if !*engaged {
        return None;
    }
    let share = (1.0 - (delay - target_secs) / (2.0 * target_secs)).clamp(MIN_SHARE, MAX_SHARE);
    Some(drained * share / load.processes.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::callers::OVERFLOW;

    #[test]
    fn the_level_gives_small_producers_what_they_ask_and_splits_the_rest() {
        assert_eq!(fair_level(100.0, &[10.0, 1_000.0]), 90.0);
        assert_eq!(fair_level(100.0, &[1_000.0, 1_000.0]), 50.0);
        assert_eq!(fair_level(100.0, &[10.0, 20.0]), f64::INFINITY);
        assert_eq!(fair_level(90.0, &[10.0, 50.0, 1_000.0]), 40.0);
        assert_eq!(fair_level(0.0, &[1.0]), 0.0);
    }

    #[test]
    fn sharing_starts_when_behind_holds_the_delay_near_the_set_point_and_stops_under_half() {
        let load = |age: f64, backlog: u64, drained: f64| Load {
            oldest_age_secs: Some(age),
            backlog,
            drained_per_sec: Some(drained),
            processes: 1,
        };
        let c = Controller::default();
        assert_eq!(c.capacity(load(1.0, 1_500, 700.0), 2.0), None, "young");
        assert_eq!(
            c.capacity(load(3.0, 700, 700.0), 2.0),
            None,
            "an old entry, little work"
        );
        assert_eq!(c.capacity(load(3.0, 1_500, 0.5), 2.0), None, "stalled");
        assert_eq!(c.capacity(load(3.0, 1_500, 700.0), 0.0), None, "off");
        // 8 s behind: a tenth; at the set point: what is drained; under it: more.
        let far = c.capacity(load(3.0, 5_600, 700.0), 2.0).unwrap();
        assert!((far - 70.0).abs() < 1e-6, "{far}");
        assert_eq!(c.last(), Some(far));
        let at = c.capacity(load(3.0, 1_400, 700.0), 2.0).unwrap();
        assert!((at - 700.0).abs() < 1e-6, "{at}");
        let under = c.capacity(load(0.5, 1_000, 700.0), 2.0).unwrap();
        assert!(under > 700.0, "{under}");
        // Under half the set point it stops, and starts again only when behind.
        assert_eq!(c.capacity(load(0.5, 600, 700.0), 2.0), None);
        assert_eq!(c.capacity(load(0.5, 1_500, 700.0), 2.0), None);
        assert!(c.capacity(load(3.0, 5_600, 700.0), 2.0).is_some());
        let two = Load {
            processes: 2,
            ..load(3.0, 1_400, 700.0)
        };
        let shared = c.capacity(two, 2.0).unwrap();
        assert!((shared - 350.0).abs() < 1e-6, "{shared}");
    }

    /// A flooding producer asking 1,000-event batches twenty times a second and a quiet one
    /// sending one event a second, with 630 events a second to share: the quiet one is never
    /// refused, the flooding one gets about the rest and is told to wait.
    #[test]
    fn a_flood_waits_and_a_quiet_producer_does_not() {
        let fair = FairShare::default();
        let start = Instant::now();
        let (mut flood_admitted, mut flood_refused) = (0usize, 0usize);
        for tick in 0..400u64 {
            let now = start + Duration::from_millis(tick * 50);
            match fair.admit("key:flood", 1_000, Some(630.0), now) {
                Ok(()) => flood_admitted += 1_000,
                Err(wait) => {
                    assert!(wait > Duration::ZERO);
                    flood_refused += 1;
                }
            }
            if tick % 20 == 0 {
                assert_eq!(fair.admit("key:quiet", 1, Some(630.0), now), Ok(()));
            }
        }
        assert!(flood_refused > 0);
        // 20 s at about 629 a second, a full lane and a request of debt, and what it got in
        // its first moments, while what it had asked so far still fitted (about 4,000):
        // against 400,000 asked.
        assert!(
            (12_000..=20_000).contains(&flood_admitted),
            "{flood_admitted}"
        );
        let shares = fair.shares(Some(630.0), start + Duration::from_secs(20));
        assert_eq!(shares[0].producer, "key:flood");
        assert!(shares[0].refused > 0);
        assert!(shares[0].told_wait_secs.is_some());
        assert_eq!(shares[1].producer, "key:quiet");
        assert_eq!(shares[1].refused, 0);
    }

    #[test]
    fn not_behind_nobody_is_held_and_debt_is_forgiven() {
        let fair = FairShare::default();
        let now = Instant::now();
        assert_eq!(fair.admit("a", 1_000, Some(10.0), now), Ok(()));
        assert!(fair.admit("a", 1, Some(10.0), now).is_err());
        assert_eq!(fair.admit("a", 1_000, None, now), Ok(()));
        assert_eq!(fair.admit("a", 1, Some(10.0), now), Ok(()), "a fresh lane");
    }

    #[test]
    fn lanes_are_bounded() {
        let fair = FairShare::default();
        let now = Instant::now();
        for i in 0..MAX_LANES + 10 {
            let _ = fair.admit(&format!("net-{i}"), 1, None, now);
        }
        assert!(fair.lanes.lock().unwrap().len() <= MAX_LANES + 1);
        assert!(fair.lanes.lock().unwrap().contains_key(OVERFLOW));
    }
}
