//! Which keys of the producer-named dimensions get rollups of their own (see the migration
//! `V14__rollup_key_budget.sql`): at most `metrics.max_keys_per_dimension` per dimension and
//! day, the rest counted under [`OTHER`]. [`KeyAdmission`] decides, per post, which of its keys
//! go to `(other)`, as bits stored with the post (`posts.rollup_other`).
//!
//! The admitted keys of a day live in `rollup_keys`, shared by the group; each process keeps
//! the days it has seen in memory, so a batch whose keys are all known costs no query. Only a
//! key new to this process asks PostgreSQL (one call per dimension and day of the batch), and
//! once a day's keys are full no further key of that day ever does: a flood of new keys costs
//! a fixed number of queries, then nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::GenericClient;

use crate::models::metrics::Dimension;
use crate::telemetry::names;

/// The key posts are counted under once their dimension's keys of the day are full.
pub const OTHER: &str = "(other)";

/// The dimensions whose keys producers name, each with its bit in `posts.rollup_other` (the
/// same bits as the SQL function `rollup_key`).
pub const CAPPED: [(Dimension, i16); 5] = [
    (Dimension::City, 1),
    (Dimension::Country, 2),
    (Dimension::Product, 4),
    (Dimension::Channel, 8),
    (Dimension::Language, 16),
];

/// Days per dimension kept in memory (the most recently used): today, yesterday, and a few
/// days of backfill.
const CACHED_DAYS: usize = 8;

/// One post's keys of the [`CAPPED`] dimensions, in that order, and the day it counts in.
pub struct PostKeys<'a> {
    pub created_at: DateTime<Utc>,
    pub keys: [Option<&'a str>; 5],
}

#[derive(Debug, Default)]
struct Day {
    admitted: HashSet<String>,
    /// Whether the day holds its cap of keys: no key not admitted yet ever will be.
    full: bool,
    /// For eviction: the batch that used the day last.
    used: u64,
}

/// The days known in memory, by dimension (its index in [`CAPPED`]) and day, and a count of
/// batches for eviction.
type Days = (u64, HashMap<(usize, NaiveDate), Day>);

/// See the module documentation.
#[derive(Debug)]
pub struct KeyAdmission {
    cap: usize,
    days: Mutex<Days>,
}

impl KeyAdmission {
    /// Admission with `cap` keys per dimension and day.
    pub fn new(cap: usize) -> KeyAdmission {
        KeyAdmission {
            cap: cap.max(1),
            days: Mutex::new((0, HashMap::new())),
        }
    }

    /// The `rollup_other` bits of each post, admitting the keys that may still be admitted.
    pub async fn other_bits(
        &self,
        client: &impl GenericClient,
        posts: &[PostKeys<'_>],
    ) -> Result<Vec<i16>, tokio_postgres::Error> {
        let mut bits = vec![0i16; posts.len()];
        // Keys this process cannot judge from memory, per dimension and day, most used first.
        let mut unknown: HashMap<(usize, NaiveDate), HashMap<&str, usize>> = HashMap::new();
        {
            let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
            days.0 += 1;
            let batch = days.0;
            for (post, bit) in posts.iter().zip(bits.iter_mut()) {
                let day = post.created_at.date_naive();
                for (d, key) in post.keys.iter().enumerate() {
                    let Some(key) = key else { continue };
                    match days.1.get_mut(&(d, day)) {
                        Some(known) if known.admitted.contains(*key) => known.used = batch,
                        Some(known) if known.full => {
                            known.used = batch;
                            *bit |= CAPPED[d].1;
                        }
                        _ => *unknown.entry((d, day)).or_default().entry(key).or_default() += 1,
                    }
                }
            }
        }
        if unknown.is_empty() {
            count_other(&bits);
            return Ok(bits);
        }
        let cap = i32::try_from(self.cap).unwrap_or(i32::MAX);
        let mut answers = Vec::with_capacity(unknown.len());
        for (&(d, day), counts) in &unknown {
            let mut wanted: Vec<(&str, usize)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
            wanted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let wanted: Vec<&str> = wanted.into_iter().map(|(k, _)| k).collect();
            let rows = client
                .query(
                    "SELECT admit_rollup_keys($1, $2, $3, $4)",
                    &[&CAPPED[d].0.as_str(), &day, &wanted, &cap],
                )
                .await?;
            let admitted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
            answers.push(((d, day), admitted));
        }
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = days.0;
        for ((d, day), admitted) in answers {
            let full = admitted.len() >= self.cap;
            days.1.insert(
                (d, day),
                Day {
                    admitted,
                    full,
                    used: batch,
                },
            );
        }
        for (post, bit) in posts.iter().zip(bits.iter_mut()) {
            let day = post.created_at.date_naive();
            for (d, key) in post.keys.iter().enumerate() {
                let Some(key) = key else { continue };
                if !unknown.get(&(d, day)).is_some_and(|u| u.contains_key(*key)) {
                    continue;
                }
                let admitted = days
                    .1
                    .get(&(d, day))
                    .is_some_and(|known| known.admitted.contains(*key));
                if !admitted {
                    *bit |= CAPPED[d].1;
                }
            }
        }
        evict(&mut days.1);
        drop(days);
        count_other(&bits);
        Ok(bits)
    }
}

/// Counts the keys sent to `(other)`, per dimension, once per batch.
fn count_other(bits: &[i16]) {
    for (dimension, bit) in CAPPED {
        let n = bits.iter().filter(|b| *b & bit != 0).count();
        if n > 0 {
            metrics::counter!(names::ROLLUP_KEYS_OTHER, "dimension" => dimension.as_str())
                .increment(n as u64);
        }
    }
}

/// Forgets the least recently used days beyond [`CACHED_DAYS`] per dimension.
fn evict(days: &mut HashMap<(usize, NaiveDate), Day>) {
    for d in 0..CAPPED.len() {
        let mut held: Vec<(u64, NaiveDate)> = days
            .iter()
            .filter(|((dim, _), _)| *dim == d)
            .map(|((_, day), known)| (known.used, *day))
            .collect();
        if held.len() <= CACHED_DAYS {
            continue;
        }
        held.sort_unstable();
        for (_, day) in &held[..held.len() - CACHED_DAYS] {
            days.remove(&(d, *day));
        }
    }
}
