//! What each producer appended over HTTP that the consumer group has not acknowledged yet, and
//! the window that bounds it.
//!
//! The fair shares of [`crate::http::api::events::fair_share`] act on rates, measured over seconds: the first
//! seconds of a flood (a key's burst, and its rate until the drained rate is known) would
//! queue several seconds of work ahead of everyone in the one stream. The window acts on what
//! is queued, at once: a producer with a window's worth of entries still waiting appends
//! nothing more until the group has taken some of them, so a post from anyone else waits
//! behind at most a window and one request of each producer. The window is what the group
//! drains in `ingest.fair_share_after_secs` (divided between its processes), never less than
//! [`WINDOW_FLOOR`] entries. It does not apply while the group is stalled (PostgreSQL away:
//! then Redis buffers, as `ingest.max_backlog_secs` allows) nor where Redis does not count
//! what it delivered.
//!
//! A request's entries are reserved as it is admitted (so requests of one producer sent side
//! by side cannot all pass on the same count) and released if it appends nothing. They count
//! as waiting until the group has acknowledged as many entries as there were ahead of them,
//! plus them: positions in the group's count of acknowledged entries (`entries-read` less
//! `pending`). Entries held by a process that died count ahead until they are claimed; a
//! reservation is forgotten after [`FORGET_AFTER`] whatever happens.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::locks::lock;
use crate::http::middleware::callers::{key_for, OVERFLOW};

/// Fewest entries a producer may keep waiting, whatever the drained rate says (unknown in the
/// first seconds, and low after a quiet while): 1 s of the default model's pipeline on 2 cores.
pub const WINDOW_FLOOR: f64 = 500.0;
/// Records kept per producer; past it, the two oldest are merged.
const MAX_RECORDS: usize = 64;
/// A record this old is forgotten: a bound for a count that stopped telling the truth (a
/// stream deleted and made again, entries held by a process that died).
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Most producers tracked; past it, producers with nothing waiting are forgotten, then new
/// ones share one lane.
const MAX_LANES: usize = crate::http::api::events::fair_share::MAX_LANES;

/// Where the group stood at one reading of the backlog.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// Entries the group had acknowledged.
    pub acknowledged: i64,
    /// Entries ahead of a request admitted then: the backlog.
    pub ahead: u64,
    /// The reading's order ([`crate::http::api::events::backlog::Reading::seq`]).
    pub seq: u64,
}

/// A request's entries, reserved as it is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    id: u64,
    entries: u64,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// The reservations merged into it: ids from `first_id` to `id`.
    first_id: u64,
    id: u64,
    /// The group's acknowledged count at which the record's entries are all taken.
    done_at: i64,
    entries: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Lane {
    records: VecDeque<Record>,
    /// The acknowledged count of the newest reading seen, and that reading's order.
    acknowledged: i64,
    seq: u64,
}

impl Lane {
    /// Forgets what the newest reading of `at` and the ones before say is taken. A newer
    /// reading with a lower count means the stream started again.
    fn settle(&mut self, at: Position, now: Instant) {
        if at.seq > self.seq {
            if at.acknowledged < self.acknowledged {
                self.records.clear();
            }
            self.acknowledged = at.acknowledged;
            self.seq = at.seq;
        }
        let acknowledged = self.acknowledged;
        self.records.retain(|r| {
            r.done_at > acknowledged && now.saturating_duration_since(r.at) < FORGET_AFTER
        });
    }

    /// Entries waiting once `acknowledged` entries are taken. A request's entries are
    /// appended together, so the last `done_at - acknowledged` of them are the ones waiting.
    fn waiting_at(&self, acknowledged: i64) -> u64 {
        self.records
            .iter()
            .map(|r| r.entries.min((r.done_at - acknowledged).max(0) as u64))
            .sum()
    }

    /// The acknowledged count at which fewer than `window` entries are left waiting.
    fn under_window_at(&self, window: f64) -> i64 {
        let (mut low, mut high) = (
            self.acknowledged,
            self.records
                .iter()
                .map(|r| r.done_at)
                .max()
                .unwrap_or(self.acknowledged),
        );
        while low < high {
            let mid = low + (high - low) / 2;
            if (self.waiting_at(mid) as f64) < window {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outstanding {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    lanes: HashMap<String, Lane>,
    next_id: u64,
}

impl Outstanding {
    /// Reserves `entries` for `who` when fewer than `window` of its entries are waiting at
    /// `at`; else `Err` holds how long until they should be, at `drained_per_sec` (the group's
    /// rate).
    pub fn reserve(
        &self,
        who: &str,
        entries: u64,
        at: Position,
        window: f64,
        drained_per_sec: Option<f64>,
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let mut state = self.lock();
        let State { lanes, next_id } = &mut *state;
        let who = key_for(lanes, who, MAX_LANES, MAX_LANES, |lanes| {
            lanes.retain(|_, lane| {
                lane.settle(at, now);
                !lane.records.is_empty()
            })
        });
        let lane = lanes.entry(who.to_string()).or_default();
        lane.settle(at, now);
        if lane.waiting_at(lane.acknowledged) as f64 >= window {
            let secs = match drained_per_sec {
                Some(rate) if rate > 0.0 => {
                    (lane.under_window_at(window) - lane.acknowledged) as f64 / rate
                }
                _ => 1.0,
            };
            return Err(Duration::from_secs_f64(secs.clamp(0.001, 60.0)));
        }
        *next_id += 1;
        let record = Record {
            first_id: *next_id,
            id: *next_id,
            done_at: at.acknowledged.saturating_add(
                i64::try_from(at.ahead.saturating_add(entries)).unwrap_or(i64::MAX),
            ),
            entries,
            at: now,
        };
        if lane.records.len() >= MAX_RECORDS {
            // The two oldest become one: only the entries taken soonest are overstated.
            if let (Some(first), Some(second)) =
                (lane.records.pop_front(), lane.records.front_mut())
            {
                second.entries += first.entries;
                second.done_at = second.done_at.max(first.done_at);
                second.first_id = first.first_id;
            }
        }
        lane.records.push_back(record);
        Ok(Reservation {
            id: record.id,
            entries,
        })
    }

    /// Gives back a reservation whose request appended nothing: its entries leave the record
    /// that holds them (its own, or the one it was merged into), unless the group took them.
    pub fn release(&self, who: &str, reservation: Reservation) {
        let mut state = self.lock();
        for name in [who, OVERFLOW] {
            let Some(lane) = state.lanes.get_mut(name) else {
                continue;
            };
            let holds = |r: &Record| (r.first_id..=r.id).contains(&reservation.id);
            if let Some(at) = lane.records.iter().position(holds) {
                let record = &mut lane.records[at];
                record.entries = record.entries.saturating_sub(reservation.entries);
                if record.entries == 0 {
                    lane.records.remove(at);
                }
                return;
            }
        }
    }

    /// Entries `who` reserved that the group had not acknowledged when last reckoned (those of
    /// the shared lane, for a producer past the bound on lanes).
    pub fn waiting(&self, who: &str) -> u64 {
        let state = self.lock();
        let lane = state.lanes.get(who).or_else(|| {
            (state.lanes.len() >= MAX_LANES)
                .then(|| state.lanes.get(OVERFLOW))
                .flatten()
        });
        lane.map_or(0, |lane| lane.waiting_at(lane.acknowledged))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// The window for one process: what it may let each producer keep waiting.
pub fn window(drained_per_sec: Option<f64>, processes: i64, target_secs: f64) -> f64 {
    let per_process = drained_per_sec.unwrap_or(0.0) / processes.max(1) as f64;
    (per_process * target_secs).max(WINDOW_FLOOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(acknowledged: i64, ahead: u64, seq: u64) -> Position {
        Position {
            acknowledged,
            ahead,
            seq,
        }
    }

    #[test]
    fn a_producer_waits_once_a_window_is_queued_and_goes_on_as_the_group_takes_it() {
        let o = Outstanding::default();
        let now = Instant::now();
        o.reserve("flood", 1_000, at(0, 0, 1), 500.0, None, now)
            .unwrap();
        // Side by side with the first, on the same reading: refused.
        let wait = o
            .reserve("flood", 1_000, at(0, 0, 1), 500.0, Some(250.0), now)
            .unwrap_err();
        // 501 more entries must be taken before fewer than 500 of its 1,000 are left.
        assert!(
            (wait.as_secs_f64() - 501.0 / 250.0).abs() < 1e-9,
            "{wait:?}"
        );
        o.reserve("quiet", 1, at(0, 0, 1), 500.0, None, now)
            .unwrap();
        // 900 acknowledged: only 100 of the flood's are left.
        o.reserve("flood", 1_000, at(900, 3_000, 2), 500.0, None, now)
            .unwrap();
        assert_eq!(o.waiting("flood"), 1_100);
        // Entries ahead of a request are taken before any of it.
        assert!(o
            .reserve("flood", 1, at(1_000, 3_000, 3), 500.0, None, now)
            .is_err());
        assert_eq!(o.waiting("flood"), 1_000);
        assert!(o
            .reserve("flood", 1, at(4_300, 0, 4), 500.0, None, now)
            .is_err());
        let r = o
            .reserve("flood", 1, at(4_500, 0, 5), 500.0, None, now)
            .unwrap();
        assert_eq!(o.waiting("flood"), 401);
        o.release("flood", r);
        assert_eq!(o.waiting("flood"), 400);
    }

    #[test]
    fn an_older_reading_changes_nothing_and_a_count_that_starts_again_frees_the_lane() {
        let o = Outstanding::default();
        let now = Instant::now();
        o.reserve("a", 1_000, at(50_000, 0, 5), 500.0, None, now)
            .unwrap();
        // A read asked before: its lower count is not a new stream.
        assert!(o
            .reserve("a", 1, at(49_000, 0, 4), 500.0, None, now)
            .is_err());
        assert_eq!(o.waiting("a"), 1_000);
        // A newer reading with a lower count is.
        o.reserve("a", 1_000, at(0, 0, 6), 500.0, None, now)
            .unwrap();
        assert!(o.reserve("a", 1, at(0, 0, 7), 500.0, None, now).is_err());
        assert!(o
            .reserve(
                "a",
                1,
                at(0, 0, 8),
                500.0,
                None,
                now + Duration::from_secs(30)
            )
            .is_err());
        o.reserve("a", 1, at(0, 0, 9), 500.0, None, now + FORGET_AFTER)
            .expect("forgotten");
    }

    #[test]
    fn records_and_lanes_are_bounded() {
        let o = Outstanding::default();
        let now = Instant::now();
        for i in 0..1_000 {
            o.reserve("a", 1, at(0, i, 1), f64::INFINITY, None, now)
                .unwrap();
        }
        assert!(o.lock().lanes["a"].records.len() <= MAX_RECORDS);
        assert_eq!(o.waiting("a"), 1_000);
        // The newest records are kept as they were.
        assert!(o.reserve("a", 1, at(998, 0, 2), 2.0, None, now).is_err());
        o.reserve("a", 1, at(999, 0, 3), 2.0, None, now).unwrap();
        // Releasing what was merged takes out its own entries only.
        let m = Outstanding::default();
        let first = m
            .reserve("m", 10, at(0, 0, 1), f64::INFINITY, None, now)
            .unwrap();
        for _ in 0..MAX_RECORDS {
            m.reserve("m", 1, at(0, 1_000, 1), f64::INFINITY, None, now)
                .unwrap();
        }
        assert_eq!(m.waiting("m"), 10 + MAX_RECORDS as u64);
        m.release("m", first);
        assert_eq!(m.waiting("m"), MAX_RECORDS as u64);
        for i in 0..MAX_LANES + 10 {
            let _ = o.reserve(&format!("net-{i}"), 1_000, at(0, 0, 1), 500.0, None, now);
        }
        assert!(o.lock().lanes.len() <= MAX_LANES + 1);
        // Newcomers past the bound share a lane, window included.
        assert!(o
            .reserve("late", 1_000, at(0, 0, 1), 500.0, None, now)
            .is_err());
        // Lanes whose entries were all taken make room.
        o.reserve("later", 1, at(2_000_000_000, 0, 4), 500.0, None, now)
            .unwrap();
        assert!(o.lock().lanes.contains_key("later"));
    }

    #[test]
    fn the_window_follows_the_drained_rate_above_its_floor() {
        assert_eq!(window(None, 1, 1.0), WINDOW_FLOOR);
        assert_eq!(window(Some(100.0), 1, 1.0), WINDOW_FLOOR);
        assert_eq!(window(Some(5_000.0), 2, 1.0), 2_500.0);
        assert_eq!(window(Some(5_000.0), 1, 2.0), 10_000.0);
    }
}
