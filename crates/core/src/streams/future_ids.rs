//! Entry ids ahead of the clock.
//!
//! An entry's id is its XADD time by Redis's clock, and the age of an entry (the backlog's,
//! a batch's on its way to the analyzer) is read off it. A producer may set ids itself,
//! though: from its own clock, or with microseconds taken for milliseconds. Once one such
//! entry is in a stream, Redis gives every later entry, Pulse's own intake and sources
//! included, an id just past it: read off its id, each would look appended in the future,
//! 0 s old however long it waited.
//!
//! So the age of an entry whose id is ahead of the clock is counted instead from when this
//! process first saw its stream hold it. A sighting notes that the stream held the entry of a
//! given id at a given instant, which holds for every entry before it too: the age it gives
//! is a lower bound, that of an entry appended before this process first looked starting
//! from that look, which grows while the entry waits. Entries read with such ids are counted
//! in `pulse_ingest_future_id_entries_total`, and a warning says so at most once a minute.
//!
//! "Ahead" is judged against Redis's clock, the one that made the ids, wherever it is judged:
//! the group monitor reads it (`TIME`) and this module keeps how far it is from this host's
//! ([`redis_clock`]), so an ingester judging the entries it reads ([`stamp`]) uses the same
//! clock. Judged against this host's clock, a host a few seconds behind Redis's took every
//! entry for one ahead: each was counted, the warning blamed a producer, and ages read 0.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::entry::RawEntry;
use crate::telemetry::names;
use crate::telemetry::repeated::Repeated;

/// How far an id may run ahead of the clock it is compared with and still be taken for its
/// entry's time: what two hosts' clocks may differ by, and what Redis's own may step back.
pub const MARGIN_MS: i64 = 5_000;

/// How often the warning about ids ahead of the clock is written at most.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Sightings kept per stream; past that, every other one is let go (the first kept), which
/// only makes the ages given younger.
const MAX_SIGHTINGS: usize = 256;
/// Sightings closer together than this are not kept: the later one adds little.
const MIN_GAP: Duration = Duration::from_millis(100);
/// Streams whose sightings are kept.
const MAX_STREAMS: usize = 64;

/// The time of an entry id (`<ms>-<seq>`), in Unix milliseconds.
pub fn id_ms(id: &str) -> Option<i64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

/// Whether the entry `id` claims a time more than [`MARGIN_MS`] after `now_ms` (Redis's
/// clock: see [`redis_now_ms`]).
pub fn is_ahead(id: &str, now_ms: i64) -> bool {
    id_ms(id).is_some_and(|ms| ms > now_ms.saturating_add(MARGIN_MS))
}

/// [`REDIS_OFFSET_MS`] before Redis's clock was first read.
const UNKNOWN: i64 = i64::MIN;
/// Redis's clock minus this host's, in milliseconds, as last read; [`UNKNOWN`] until then.
static REDIS_OFFSET_MS: AtomicI64 = AtomicI64::new(UNKNOWN);

/// Notes Redis's clock, `redis_ms` (its `TIME`, just read; the group monitor reads it every
/// 5 s): how far it is from this host's is what ids are judged against where Redis is not
/// asked ([`stamp`]). The reply's way back makes Redis's clock read a little behind, well
/// within [`MARGIN_MS`].
pub fn redis_clock(redis_ms: i64) {
    let offset = redis_ms.saturating_sub(chrono::Utc::now().timestamp_millis());
    REDIS_OFFSET_MS.store(offset.max(UNKNOWN + 1), Ordering::Relaxed);
}

/// Redis's clock minus this host's, in milliseconds, as last read; `None` before it was.
pub fn redis_offset_ms() -> Option<i64> {
    Some(REDIS_OFFSET_MS.load(Ordering::Relaxed)).filter(|&offset| offset != UNKNOWN)
}

/// Redis's clock at `local_ms` of this host's, by `offset_ms` ([`redis_offset_ms`]); this
/// host's own until Redis's was read (a process's first seconds).
fn redis_ms_at(local_ms: i64, offset_ms: Option<i64>) -> i64 {
    local_ms.saturating_add(offset_ms.unwrap_or(0))
}

/// Redis's clock now, as this process makes it out without asking ([`redis_clock`]).
pub fn redis_now_ms() -> i64 {
    redis_ms_at(chrono::Utc::now().timestamp_millis(), redis_offset_ms())
}

/// An id in the stream's order.
type Id = (u64, u64);

fn parse(id: &str) -> Option<Id> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Each stream's sightings, in the order they were made, which is also their ids' order.
#[derive(Debug, Default)]
struct Sightings {
    streams: HashMap<String, Vec<(Instant, Id)>>,
}

impl Sightings {
    /// Notes that `stream` held the entry `id` at `now`.
    fn sight(&mut self, stream: &str, id: Id, now: Instant) {
        if !self.streams.contains_key(stream) && self.streams.len() >= MAX_STREAMS {
            let stalest = self
                .streams
                .iter()
                .min_by_key(|(_, seen)| seen.last().map(|(at, _)| *at))
                .map(|(name, _)| name.clone());
            if let Some(name) = stalest {
                self.streams.remove(&name);
            }
        }
        let seen = self.streams.entry(stream.to_string()).or_default();
        if let Some(&(at, last)) = seen.last() {
            if last >= id || now.saturating_duration_since(at) < MIN_GAP {
                return;
            }
        }
        if seen.len() >= MAX_SIGHTINGS {
            let mut n = 0;
            seen.retain(|_| {
                n += 1;
                n % 2 == 1
            });
        }
        seen.push((now, id));
    }

    /// How long, as of `now`, `stream` is known to have held the entry `id`: since the first
    /// sighting of it or of an entry after it; zero when there is none.
    fn held_for(&self, stream: &str, id: Id, now: Instant) -> Duration {
        let Some(seen) = self.streams.get(stream) else {
            return Duration::ZERO;
        };
        let first = seen.partition_point(|(_, sighted)| *sighted < id);
        seen.get(first)
            .map_or(Duration::ZERO, |(at, _)| now.saturating_duration_since(*at))
    }
}

fn sightings() -> std::sync::MutexGuard<'static, Sightings> {
    static SIGHTINGS: OnceLock<Mutex<Sightings>> = OnceLock::new();
    SIGHTINGS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Notes that `stream` holds the entry `newest` now (an id ahead of the clock).
pub fn sight(stream: &str, newest: &str) {
    if let Some(id) = parse(newest) {
        sightings().sight(stream, id, Instant::now());
    }
}

/// How long `stream` is known to have held the entry `id`, by what was sighted (zero when
/// nothing sighted covers it).
pub fn held_for(stream: &str, id: &str) -> Duration {
    parse(id).map_or(Duration::ZERO, |id| {
        sightings().held_for(stream, id, Instant::now())
    })
}

/// Lets `stream`'s sightings go: its newest entry is no longer ahead of the clock (the stream
/// was trimmed, or deleted and made again).
pub fn forget(stream: &str) {
    sightings().streams.remove(stream);
}

/// Says, at most once a minute for the whole process, that `stream` holds the entry `id`
/// ahead of Redis's clock (`now_ms`).
pub fn warn(stream: &str, id: &str, now_ms: i64) {
    static REPEATED: Repeated = Repeated::new();
    if let Some(left_out) = REPEATED.check_at(Instant::now(), WARN_EVERY) {
        let ahead_secs = id_ms(id).map_or(0, |ms| ms.saturating_sub(now_ms) / 1_000);
        // Redis's clock minus this host's: far from 0, the hosts' clocks are not in step.
        let redis_clock_ahead_ms = redis_offset_ms();
        tracing::warn!(
            left_out,
            stream,
            entry = id,
            ahead_secs,
            redis_clock_ahead_ms,
            "the stream holds entries whose ids are ahead of Redis's clock: a producer set \
             them, or a clock was stepped back (Redis's, or this host's before it first read \
             Redis's); Redis gives every later entry an id past them, so their ages are \
             counted from when this process first saw them; check the hosts' clocks before \
             trimming or renaming the stream (see the operations guide)"
        );
    }
}

/// Gives each of `entries`, just read from `stream`, whose id is ahead of Redis's clock
/// (this host's moved by [`redis_offset_ms`]) the time from which its age is counted
/// ([`RawEntry::seen_at_ms`], by this host's clock); counts them and warns.
pub fn stamp(stream: &str, entries: &mut [RawEntry]) {
    let local_ms = chrono::Utc::now().timestamp_millis();
    let redis_ms = redis_ms_at(local_ms, redis_offset_ms());
    if let Some((count, newest)) = stamp_at(stream, entries, local_ms, redis_ms, Instant::now()) {
        metrics::counter!(names::FUTURE_ID_ENTRIES).increment(count);
        warn(stream, &newest, redis_ms);
    }
}

/// [`stamp`] at `local_ms` of this host's clock, `redis_ms` of Redis's and `now`: how many
/// were ahead and the newest of them, `None` when none was.
fn stamp_at(
    stream: &str,
    entries: &mut [RawEntry],
    local_ms: i64,
    redis_ms: i64,
    now: Instant,
) -> Option<(u64, String)> {
    let newest = entries
        .iter()
        .filter(|e| is_ahead(&e.id, redis_ms))
        .filter_map(|e| parse(&e.id).map(|id| (id, e.id.as_str())))
        .max()?;
    let newest_text = newest.1.to_string();
    let mut count = 0u64;
    let mut sightings = sightings();
    sightings.sight(stream, newest.0, now);
    for entry in entries.iter_mut().filter(|e| is_ahead(&e.id, redis_ms)) {
        let Some(id) = parse(&entry.id) else { continue };
        let held = sightings.held_for(stream, id, now).as_millis() as i64;
        entry.seen_at_ms = Some(local_ms - held);
        count += 1;
    }
    Some((count, newest_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_as_old_as_the_first_sighting_of_it_or_of_a_later_one() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut s = Sightings::default();
        assert_eq!(
            s.held_for("s", (9, 0), at(0)),
            Duration::ZERO,
            "nothing seen"
        );
        s.sight("s", (9, 5), at(0));
        s.sight("s", (9, 9), at(1_000));
        // An entry before the first sighting was there at least as long, one between the two
        // since the second, one after both not known to be there at all.
        assert_eq!(s.held_for("s", (9, 1), at(3_000)), Duration::from_secs(3));
        assert_eq!(s.held_for("s", (9, 5), at(3_000)), Duration::from_secs(3));
        assert_eq!(s.held_for("s", (9, 7), at(3_000)), Duration::from_secs(2));
        assert_eq!(s.held_for("s", (9, 10), at(3_000)), Duration::ZERO);
        assert_eq!(s.held_for("other", (9, 1), at(3_000)), Duration::ZERO);
        // A sighting of an earlier id, or one too soon after the last, adds nothing.
        s.sight("s", (9, 2), at(2_000));
        s.sight("s", (9, 12), at(1_050));
        assert_eq!(s.held_for("s", (9, 12), at(3_000)), Duration::ZERO);
    }

    #[test]
    fn many_sightings_are_thinned_keeping_the_first() {
        let start = Instant::now();
        let mut s = Sightings::default();
        for i in 0..(MAX_SIGHTINGS as u64 * 4) {
            s.sight("s", (1, i), start + MIN_GAP * i as u32);
        }
        let seen = &s.streams["s"];
        assert!(seen.len() <= MAX_SIGHTINGS, "{}", seen.len());
        assert_eq!(seen[0].1, (1, 0));
        let now = start + MIN_GAP * (MAX_SIGHTINGS as u32 * 4);
        assert_eq!(s.held_for("s", (1, 0), now), now - start);
        for pair in seen.windows(2) {
            assert!(pair[0].0 < pair[1].0 && pair[0].1 < pair[1].1);
        }
    }

    fn entry(id: String) -> RawEntry {
        RawEntry {
            id,
            fields: Vec::new(),
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        }
    }

    /// A host whose clock was more than the margin behind Redis's took every entry for one
    /// ahead of the clock: each was counted, the warning blamed a producer (and the runbook
    /// said to delete the stream), and its age read 0.
    #[test]
    fn ids_are_judged_against_redis_clock_not_this_hosts() {
        let local_ms = 1_700_000_000_000_i64;
        // This host's clock is 10 s behind Redis's.
        let offset = Some(10_000);
        let redis_ms = redis_ms_at(local_ms, offset);
        assert_eq!(redis_ms, local_ms + 10_000);
        let now = Instant::now();

        // Entries Redis just gave ids, by its own clock.
        let normal = || {
            vec![
                entry(format!("{redis_ms}-0")),
                entry(format!("{redis_ms}-1")),
            ]
        };
        let mut entries = normal();
        let stamped = stamp_at("skewed-normal", &mut entries, local_ms, redis_ms, now);
        assert_eq!(stamped, None, "a normal id is not ahead of Redis's clock");
        assert!(entries.iter().all(|e| e.seen_at_ms.is_none()));
        // Judged against this host's clock alone, as before, both were counted.
        let mut entries = normal();
        let misjudged = stamp_at("skewed-local", &mut entries, local_ms, local_ms, now);
        assert_eq!(misjudged.map(|(n, _)| n), Some(2));

        // An id far ahead of Redis's clock still is, and so is one just past the margin.
        let past_margin = format!("{}-0", redis_ms + MARGIN_MS + 1);
        let mut entries = vec![
            entry(format!("{redis_ms}-2")),
            entry(past_margin),
            entry("99999999999999-0".into()),
        ];
        let stamped = stamp_at("skewed-ahead", &mut entries, local_ms, redis_ms, now);
        assert_eq!(stamped, Some((2, "99999999999999-0".to_string())));
        assert_eq!(entries[0].seen_at_ms, None);
        // Its age is counted from now by this host's clock, the one it is read against.
        assert_eq!(entries[2].seen_at_ms, Some(local_ms));
    }

    #[test]
    fn redis_clock_is_this_hosts_until_read_then_moved_by_the_offset() {
        assert_eq!(redis_ms_at(1_000, None), 1_000);
        assert_eq!(redis_ms_at(1_000, Some(-400)), 600);
        let redis_ms = chrono::Utc::now().timestamp_millis() + 10_000;
        redis_clock(redis_ms);
        let offset = redis_offset_ms().expect("read");
        // The local clock was read just after the value given: at most a little less.
        assert!((9_000..=10_000).contains(&offset), "{offset}");
        assert!(!is_ahead(&format!("{redis_ms}-0"), redis_now_ms()));
        REDIS_OFFSET_MS.store(UNKNOWN, Ordering::Relaxed);
        assert_eq!(redis_offset_ms(), None);
    }

    #[test]
    fn an_id_is_ahead_only_past_the_margin() {
        assert!(!is_ahead("1000-0", 1_000));
        assert!(!is_ahead(&format!("{}-0", 1_000 + MARGIN_MS), 1_000));
        assert!(is_ahead(&format!("{}-3", 1_001 + MARGIN_MS), 1_000));
        assert!(is_ahead(
            "99999999999999-0",
            chrono::Utc::now().timestamp_millis()
        ));
        assert!(!is_ahead("garbage", 0));
    }
}
