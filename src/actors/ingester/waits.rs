//! How long each producer's entries waited, from their append to the commit of what they
//! produced, over the last one to two minutes: what `GET /api/v1/pipeline` shows beside each
//! producer's share, so a flood's cost to the others can be read off directly.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::messages::RawEntry;

/// Milliseconds of one window; the figures cover the current window and the one before.
pub const WINDOW_MS: i64 = 60_000;
/// Most producers tracked; the others are counted together as [`OTHERS`].
pub const MAX_PRODUCERS: usize = 1_000;
const OTHERS: &str = "(others)";

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    entries: u64,
    sum_secs: f64,
    max_secs: f64,
}

impl Tally {
    fn add(&mut self, secs: f64) {
        self.entries += 1;
        self.sum_secs += secs;
        self.max_secs = self.max_secs.max(secs);
    }

    fn merge(self, other: Tally) -> Tally {
        Tally {
            entries: self.entries + other.entries,
            sum_secs: self.sum_secs + other.sum_secs,
            max_secs: self.max_secs.max(other.max_secs),
        }
    }
}

#[derive(Debug, Default)]
struct Windows {
    started_ms: i64,
    current: Tally,
    previous: Tally,
}

/// One producer's waits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProducerWait {
    /// The producer its entries name (`key:<key id>`, `source:<name>`, `import`, `http`,
    /// `stream`).
    pub producer: String,
    /// Entries of it this process committed over the window.
    pub entries: u64,
    /// Their mean wait from append to commit, in seconds.
    pub mean_wait_secs: f64,
    /// The longest, in seconds.
    pub max_wait_secs: f64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ProducerWaits {
    table: Mutex<HashMap<String, Windows>>,
}

impl ProducerWaits {
    /// Records the waits of `entries`, committed at `now_ms`.
    pub fn committed(&self, entries: &[RawEntry], now_ms: i64) {
        let mut batch: HashMap<String, Tally> = HashMap::new();
        for entry in entries {
            let Some(added) = entry.arrived_at_ms() else {
                continue;
            };
            let producer = entry.producer().unwrap_or_else(|_| OTHERS.to_string());
            batch
                .entry(producer)
                .or_default()
                .add((now_ms - added).max(0) as f64 / 1000.0);
        }
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for (producer, tally) in batch {
            let key = if table.len() >= MAX_PRODUCERS && !table.contains_key(&producer) {
                table.retain(|_, w| now_ms - w.started_ms < 2 * WINDOW_MS);
                if table.len() >= MAX_PRODUCERS {
                    OTHERS.to_string()
                } else {
                    producer
                }
            } else {
                producer
            };
            let windows = table.entry(key).or_default();
            roll(windows, now_ms);
            windows.current = windows.current.merge(tally);
        }
    }

    /// Every producer with entries committed over the window, longest mean wait first.
    pub fn snapshot(&self, now_ms: i64) -> Vec<ProducerWait> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let mut waits: Vec<ProducerWait> = table
            .iter_mut()
            .filter_map(|(producer, windows)| {
                roll(windows, now_ms);
                let tally = windows.current.merge(windows.previous);
                (tally.entries > 0).then(|| ProducerWait {
                    producer: producer.clone(),
                    entries: tally.entries,
                    mean_wait_secs: tally.sum_secs / tally.entries as f64,
                    max_wait_secs: tally.max_secs,
                })
            })
            .collect();
        waits.sort_by(|a, b| b.mean_wait_secs.total_cmp(&a.mean_wait_secs));
        waits
    }
}

/// Moves the windows on to the one holding `now_ms`.
fn roll(windows: &mut Windows, now_ms: i64) {
    let elapsed = now_ms - windows.started_ms;
    if elapsed >= 2 * WINDOW_MS {
        windows.previous = Tally::default();
        windows.current = Tally::default();
        windows.started_ms = now_ms;
    } else if elapsed >= WINDOW_MS {
        windows.previous = std::mem::take(&mut windows.current);
        windows.started_ms += WINDOW_MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id_ms: i64, producer: Option<&str>) -> RawEntry {
        let mut fields = vec![("event".to_string(), b"{}".to_vec())];
        if let Some(p) = producer {
            fields.push(("producer".to_string(), p.as_bytes().to_vec()));
        }
        RawEntry {
            id: format!("{id_ms}-0"),
            fields,
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        }
    }

    #[test]
    fn waits_are_told_per_producer_and_forgotten_after_two_windows() {
        let waits = ProducerWaits::default();
        let now = 1_000_000;
        waits.committed(
            &[
                entry(now - 10_000, Some("key:flood")),
                entry(now - 6_000, Some("key:flood")),
                entry(now - 500, Some("key:quiet")),
                entry(now - 100, None),
            ],
            now,
        );
        let snapshot = waits.snapshot(now);
        let by = |p: &str| snapshot.iter().find(|w| w.producer == p).unwrap().clone();
        assert_eq!(by("key:flood").entries, 2);
        assert_eq!(by("key:flood").mean_wait_secs, 8.0);
        assert_eq!(by("key:flood").max_wait_secs, 10.0);
        assert_eq!(by("key:quiet").mean_wait_secs, 0.5);
        assert_eq!(by("stream").entries, 1);
        assert_eq!(snapshot[0].producer, "key:flood");
        assert_eq!(
            waits.snapshot(now + WINDOW_MS).len(),
            3,
            "the window before"
        );
        assert!(waits.snapshot(now + 2 * WINDOW_MS + 1).is_empty());
    }
}
