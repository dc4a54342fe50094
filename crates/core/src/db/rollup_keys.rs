//! Which keys of the producer-named dimensions get rollups of their own (see the migrations
//! `V14__rollup_key_budget.sql` and `V30__rollup_keys_at_once.sql`): at most
//! `metrics.max_keys_per_dimension` per dimension and day, the rest counted under [`OTHER`].
//! [`KeyAdmission`] decides, per post, which of its keys go to `(other)`, as bits stored with
//! the post (`posts.rollup_other`).
//!
//! The admitted keys of a day live in `rollup_keys`, shared by the group; each process keeps
//! the days it has seen in memory, so a batch whose keys are all known costs no query. Keys new
//! to this process are asked about in one statement for the whole batch, every dimension and
//! day at once, and once a day's keys are full no further key of that day ever asks: a flood
//! of new keys costs a fixed number of queries, then nothing.
//!
//! What one batch may cost is bounded whatever dates its posts carry: the statement asks about
//! at most [`ASKED_GROUPS`] dimensions and days, those the most posts of the batch name (the
//! newest days first among equals). The keys of the rest are counted under `(other)` for that
//! batch without asking, though their day may have had room: a batch spread over many days
//! (a producer dating each post a day apart, or a backfill of scattered dates) has only some of
//! its keys counted as their own. The answer holds the keys asked about, or, for a day that is
//! full, its admitted keys (at most the cap), once: the day is then known in memory.

use std::cmp::Reverse;
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

/// The most dimensions and days one batch asks PostgreSQL about. Each holds an advisory lock
/// to the end of the statement (PostgreSQL's lock table has room for some 64 locks per
/// connection, shared by all), and costs a count and an insert; a batch of one day's posts
/// asks about 5, of a few days' backfill a few tens. The keys of any further ones are counted
/// under [`OTHER`] for that batch.
pub const ASKED_GROUPS: usize = 32;

/// Admits the keys of every group asked about in one statement (see the migration
/// `V30__rollup_keys_at_once.sql`): group number (from 1), key, whether its day is full.
const ADMIT: &str = "SELECT group_no, admitted_key, day_full \
                     FROM admit_rollup_keys_at_once($1, $2, $3, $4, $5)";

/// One post's keys of the [`CAPPED`] dimensions, in that order, and the day it counts in.
pub struct PostKeys<'a> {
    pub created_at: DateTime<Utc>,
    pub keys: [Option<&'a str>; 5],
}

/// A dimension (its index in [`CAPPED`]) and a day: what one day's cap of keys is counted in.
type Group = (usize, NaiveDate);

/// The keys of a batch this process cannot judge from memory, by group, each with the number
/// of the batch's posts that name it.
type Unknown<'a> = HashMap<Group, HashMap<&'a str, usize>>;

#[derive(Debug, Default)]
struct Day {
    /// Keys known to be admitted: every one the day has once it is full, else those this
    /// process asked about (a key missing here is asked about, unless the day is full).
    admitted: HashSet<String>,
    /// Whether the day holds its cap of keys: no key not admitted yet ever will be.
    full: bool,
    /// For eviction: the batch that used the day last.
    used: u64,
}

/// What PostgreSQL answered for one group: the keys asked about that are admitted (every key
/// of the day once it is full), and whether the day is full.
#[derive(Debug, Default)]
struct Answer {
    admitted: HashSet<String>,
    full: bool,
}

/// The days known in memory, by group, and a count of batches for eviction.
type Days = (u64, HashMap<Group, Day>);

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
        let unknown = self.judge_from_memory(posts, &mut bits);
        if !unknown.is_empty() {
            let asked = most_wanted(&unknown);
            let answers = self.ask(client, &asked).await?;
            mark_not_admitted(posts, &unknown, &answers, &mut bits);
            self.remember(answers);
        }
        count_other(&bits);
        Ok(bits)
    }

    /// Sets the bits of the keys the days in memory know to be refused, and returns the keys
    /// they cannot judge.
    fn judge_from_memory<'a>(&self, posts: &[PostKeys<'a>], bits: &mut [i16]) -> Unknown<'a> {
        let mut unknown: Unknown<'a> = HashMap::new();
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        days.0 += 1;
        let batch = days.0;
        for (post, bit) in posts.iter().zip(bits.iter_mut()) {
            let day = post.created_at.date_naive();
            for (d, key) in post.keys.iter().enumerate() {
                let Some(key) = *key else { continue };
                match days.1.get_mut(&(d, day)) {
                    Some(known) if known.admitted.contains(key) => known.used = batch,
                    Some(known) if known.full => {
                        known.used = batch;
                        *bit |= CAPPED[d].1;
                    }
                    _ => *unknown.entry((d, day)).or_default().entry(key).or_default() += 1,
                }
            }
        }
        unknown
    }

    /// Admits what may still be admitted of the keys of `asked`, in one statement, and returns
    /// the answer for each of its groups.
    async fn ask(
        &self,
        client: &impl GenericClient,
        asked: &[(Group, Vec<&str>)],
    ) -> Result<HashMap<Group, Answer>, tokio_postgres::Error> {
        let dimensions: Vec<&str> = asked
            .iter()
            .map(|((d, _), _)| CAPPED[*d].0.as_str())
            .collect();
        let days: Vec<NaiveDate> = asked.iter().map(|((_, day), _)| *day).collect();
        let mut groups: Vec<i32> = Vec::new();
        let mut keys: Vec<&str> = Vec::new();
        for (n, (_, wanted)) in (1i32..).zip(asked) {
            groups.extend(std::iter::repeat_n(n, wanted.len()));
            keys.extend(wanted.iter().copied());
        }
        let cap = i32::try_from(self.cap).unwrap_or(i32::MAX);
        let rows = client
            .query(ADMIT, &[&dimensions, &days, &groups, &keys, &cap])
            .await?;
        let mut answers: HashMap<Group, Answer> = asked
            .iter()
            .map(|(group, _)| (*group, Answer::default()))
            .collect();
        for row in rows {
            let n: i32 = row.get(0);
            let Some((group, _)) = usize::try_from(n - 1).ok().and_then(|i| asked.get(i)) else {
                continue;
            };
            let answer = answers.entry(*group).or_default();
            answer.admitted.insert(row.get(1));
            answer.full |= row.get::<_, bool>(2);
        }
        Ok(answers)
    }

    /// Adds `answers` to the days in memory, then forgets the least recently used days. A
    /// day's admitted keys only grow, so what is known of it and what was answered add up.
    fn remember(&self, answers: HashMap<Group, Answer>) {
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = days.0;
        for (group, answer) in answers {
            let day = days.1.entry(group).or_default();
            day.admitted.extend(answer.admitted);
            day.full |= answer.full;
            day.used = batch;
        }
        evict(&mut days.1);
    }
}

/// The groups to ask about, at most [`ASKED_GROUPS`]: those whose keys the most posts of the
/// batch name, the newest days first among equals (a batch spread over days is mostly
/// backfill; today's keys are the ones read live). Each comes with its keys, the most named
/// first, as the cap admits them in that order.
fn most_wanted<'a>(unknown: &Unknown<'a>) -> Vec<(Group, Vec<&'a str>)> {
    let mut groups: Vec<(&Group, &HashMap<&'a str, usize>)> = unknown.iter().collect();
    groups.sort_by_key(|(group, counts)| {
        let named: usize = counts.values().sum();
        (Reverse(named), Reverse(group.1), group.0)
    });
    groups.truncate(ASKED_GROUPS);
    groups
        .into_iter()
        .map(|(group, counts)| (*group, by_use(counts)))
        .collect()
}

/// The keys of `counts`, the most named first (then by key, so two runs ask alike).
fn by_use<'a>(counts: &HashMap<&'a str, usize>) -> Vec<&'a str> {
    let mut keys: Vec<(&'a str, usize)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    keys.into_iter().map(|(k, _)| k).collect()
}

/// Sets the bit of each key memory could not judge and PostgreSQL did not admit, whether it
/// was refused or its group was not asked about.
fn mark_not_admitted(
    posts: &[PostKeys<'_>],
    unknown: &Unknown<'_>,
    answers: &HashMap<Group, Answer>,
    bits: &mut [i16],
) {
    for (post, bit) in posts.iter().zip(bits.iter_mut()) {
        let day = post.created_at.date_naive();
        for (d, key) in post.keys.iter().enumerate() {
            let Some(key) = *key else { continue };
            let group = (d, day);
            let unjudged = unknown.get(&group).is_some_and(|u| u.contains_key(key));
            let admitted = answers
                .get(&group)
                .is_some_and(|answer| answer.admitted.contains(key));
            if unjudged && !admitted {
                *bit |= CAPPED[d].1;
            }
        }
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
fn evict(days: &mut HashMap<Group, Day>) {
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
