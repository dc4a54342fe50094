//! What each producer appended over HTTP that the consumer group has not acknowledged yet, and
//! the window that bounds it.
//!
//! The fair shares of [`super::fair_share`] act on rates, measured over seconds: the first
//! seconds of a flood (a key's burst, and its rate until the drained rate is known) would
//! queue several seconds of work ahead of everyone in the one stream. The window acts on what
//! is queued, at once: a producer with a window's worth of entries still waiting appends
//! nothing more until the group has taken some of them, so a post from anyone else waits
//! behind at most a window and one request of each producer. The window is what the group
//! drains in `ingest.fair_share_after_secs` (divided between its processes), never less than
//! [`WINDOW_FLOOR`] entries, and it does not apply while the group drains nothing (PostgreSQL
//! away): then Redis buffers, as `ingest.max_backlog_secs` allows.
//!
//! An entry counts as waiting until the group has acknowledged as many entries as there were
//! ahead of it, plus it: positions in the group's count of acknowledged entries
//! (`entries-read` less `pending`), so one entry held by a process that died delays the
//! reckoning by one entry, not until it is claimed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Fewest entries a producer may keep waiting, whatever the drained rate says (unknown in the
/// first seconds, and low after a quiet while): 1 s of the default model's pipeline on 2 cores.
pub const WINDOW_FLOOR: f64 = 500.0;
/// Records kept per producer; past it, new appends merge into the last record.
const MAX_RECORDS: usize = 64;
/// A record this old is forgotten: a bound for a group whose count stopped telling the truth
/// (a stream deleted and made again).
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Most producers tracked; past it, producers with nothing waiting are forgotten, then new
/// ones share one lane.
const MAX_LANES: usize = super::fair_share::MAX_LANES;
const OVERFLOW: &str = "(overflow)";

/// Where the group stood when a request was admitted.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    /// Entries the group had acknowledged.
    pub acknowledged: i64,
    /// Entries ahead of the request: the backlog.
    pub ahead: u64,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// The group's acknowledged count at which the record's entries are all taken.
    done_at: i64,
    entries: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Lane {
    records: VecDeque<Record>,
    /// The acknowledged count last seen; one lower means the stream started again.
    acknowledged: i64,
}

impl Lane {
    fn settle(&mut self, acknowledged: i64, now: Instant) {
        if acknowledged < self.acknowledged {
            self.records.clear();
        }
        self.acknowledged = acknowledged;
        self.records.retain(|r| {
            r.done_at > acknowledged && now.saturating_duration_since(r.at) < FORGET_AFTER
        });
    }

    /// A request's entries are appended together, so the last `done_at - acknowledged` of
    /// them are the ones still waiting.
    fn waiting(&self) -> u64 {
        self.records
            .iter()
            .map(|r| r.entries.min((r.done_at - self.acknowledged).max(0) as u64))
            .sum()
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outstanding {
    lanes: Mutex<HashMap<String, Lane>>,
}

impl Outstanding {
    /// Whether `who` may append now: `Err` holds how long until its waiting entries should be
    /// under `window`. `drained_per_sec` is this process's part of what the group drains.
    pub fn admit(
        &self,
        who: &str,
        acknowledged: i64,
        window: f64,
        drained_per_sec: Option<f64>,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(who) else {
            return Ok(());
        };
        lane.settle(acknowledged, now);
        let waiting = lane.waiting() as f64;
        if waiting < window {
            return Ok(());
        }
        let secs = match drained_per_sec {
            Some(rate) if rate > 0.0 => (waiting - window + 1.0) / rate,
            _ => 1.0,
        };
        Err(Duration::from_secs_f64(secs.clamp(0.001, 60.0)))
    }

    /// Records `entries` just appended by `who`, admitted at `at`.
    pub fn appended(&self, who: &str, entries: u64, at: Position, now: Instant) {
        let mut lanes = self.lock();
        let who = if lanes.len() >= MAX_LANES && !lanes.contains_key(who) {
            lanes.retain(|_, lane| !lane.records.is_empty());
            if lanes.len() >= MAX_LANES {
                OVERFLOW
            } else {
                who
            }
        } else {
            who
        };
        let lane = lanes.entry(who.to_string()).or_default();
        lane.settle(at.acknowledged, now);
        let done_at = at
            .acknowledged
            .saturating_add(i64::try_from(at.ahead.saturating_add(entries)).unwrap_or(i64::MAX));
        let full = lane.records.len() >= MAX_RECORDS;
        match lane.records.back_mut() {
            Some(last) if full => {
                last.done_at = last.done_at.max(done_at);
                last.entries += entries;
                last.at = now;
            }
            _ => lane.records.push_back(Record {
                done_at,
                entries,
                at: now,
            }),
        }
    }

    /// Entries `who` appended that the group had not acknowledged when last reckoned.
    pub fn waiting(&self, who: &str) -> u64 {
        self.lock().get(who).map_or(0, Lane::waiting)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lane>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn at(acknowledged: i64, ahead: u64) -> Position {
        Position {
            acknowledged,
            ahead,
        }
    }

    #[test]
    fn a_producer_waits_once_a_window_is_queued_and_goes_on_as_the_group_takes_it() {
        let o = Outstanding::default();
        let now = Instant::now();
        assert_eq!(o.admit("flood", 0, 500.0, None, now), Ok(()), "nothing yet");
        o.appended("flood", 1_000, at(0, 0), now);
        let wait = o.admit("flood", 0, 500.0, Some(250.0), now).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 501.0 / 250.0).abs() < 1e-9,
            "{wait:?}"
        );
        assert_eq!(o.admit("quiet", 0, 500.0, None, now), Ok(()));
        // 900 acknowledged: only 100 of the flood's are left.
        assert_eq!(o.admit("flood", 900, 500.0, None, now), Ok(()));
        assert_eq!(o.waiting("flood"), 100);
        // Entries ahead of a request are taken before any of it.
        o.appended("flood", 1_000, at(900, 3_000), now);
        assert!(o.admit("flood", 1_000, 500.0, None, now).is_err());
        assert_eq!(o.waiting("flood"), 1_000);
        assert!(o.admit("flood", 4_300, 500.0, None, now).is_err());
        assert_eq!(o.admit("flood", 4_500, 500.0, None, now), Ok(()));
        assert_eq!(o.waiting("flood"), 400);
        o.admit("flood", 4_900, 500.0, None, now).unwrap();
        assert_eq!(o.waiting("flood"), 0);
    }

    #[test]
    fn a_count_that_starts_again_or_stops_moving_does_not_hold_a_producer_for_good() {
        let o = Outstanding::default();
        let now = Instant::now();
        o.appended("a", 1_000, at(50_000, 0), now);
        assert!(o.admit("a", 50_000, 500.0, None, now).is_err());
        assert_eq!(
            o.admit("a", 0, 500.0, None, now),
            Ok(()),
            "the stream started again"
        );
        o.appended("a", 1_000, at(0, 0), now);
        assert!(o
            .admit("a", 0, 500.0, None, now + Duration::from_secs(30))
            .is_err());
        assert_eq!(
            o.admit("a", 0, 500.0, None, now + FORGET_AFTER),
            Ok(()),
            "forgotten"
        );
    }

    #[test]
    fn records_and_lanes_are_bounded() {
        let o = Outstanding::default();
        let now = Instant::now();
        for i in 0..1_000 {
            o.appended("a", 1, at(0, i), now);
        }
        assert!(o.lock()["a"].records.len() <= MAX_RECORDS);
        assert!(o.admit("a", 998, 1.0, None, now).is_err());
        assert_eq!(o.admit("a", 1_000, 1.0, None, now), Ok(()));
        for i in 0..MAX_LANES + 10 {
            o.appended(&format!("net-{i}"), 1, at(0, 0), now);
        }
        assert!(o.lock().len() <= MAX_LANES + 1);
    }

    #[test]
    fn the_window_follows_the_drained_rate_above_its_floor() {
        assert_eq!(window(None, 1, 1.0), WINDOW_FLOOR);
        assert_eq!(window(Some(100.0), 1, 1.0), WINDOW_FLOOR);
        assert_eq!(window(Some(5_000.0), 2, 1.0), 2_500.0);
        assert_eq!(window(Some(5_000.0), 1, 2.0), 10_000.0);
    }
}
