//! Cascades with their source texts and authors, the track record each author had in the
//! store when each was posted, and folds that keep an author's and a story's cascades together.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use crate::eval::virality::data::{read_authored_json_lines, read_authored_trees};
use crate::virality::forecast::AuthorRecord;

/// Shares counted towards a cascade's final size, within 7 days of the post, and how long
/// before a post a cascade must be to be in its author's record.
pub use crate::virality::forecast_fit::HORIZON_S;

/// One cascade of the evaluation set.
#[derive(Debug, Clone)]
pub struct Row {
    /// The source post's id.
    pub id: String,
    pub author: String,
    /// Unix seconds.
    pub at: f64,
    pub text: String,
    pub final_shares: u64,
    /// ln(1 + final shares).
    pub y: f64,
    /// The author's earlier cascades as the store had them when this one was posted: final
    /// sizes for those posted at least [`HORIZON_S`] before, the shares seen so far for those
    /// still growing.
    pub record: AuthorRecord,
    /// The same cascades' ln(1 + shares), each as the record counts it (for the baseline that
    /// reads their median).
    pub earlier: Vec<f64>,
    pub followers: Option<u64>,
    /// Unix seconds of each share (a share of weight w repeated w times), in time order.
    pub share_times: Vec<f64>,
}

impl Row {
    /// Shares this cascade had gathered by `at` (Unix seconds), within its horizon.
    pub fn shares_by(&self, at: f64) -> u64 {
        self.share_times.partition_point(|&t| t <= at) as u64
    }
}

/// Reads `path`: a folder of propagation trees, or a file of cascades as JSON lines. Cascades
/// without a text are left out and counted.
pub fn read(path: &Path) -> anyhow::Result<(Vec<Row>, usize)> {
    let (mut rows, without_text) = if path.is_dir() {
        read_trees_with_texts(path)?
    } else {
        read_lines(path)?
    };
    rows.sort_by(|a, b| a.at.total_cmp(&b.at));
    set_records(&mut rows);
    Ok((rows, without_text))
}

/// A file of cascades as JSON lines, each with its `author`, `text` and `created_at`, and its
/// author's followers where known; shares after the horizon do not count.
fn read_lines(path: &Path) -> anyhow::Result<(Vec<Row>, usize)> {
    let mut rows = Vec::new();
    let mut without_text = 0;
    for (n, line) in read_authored_json_lines(path)?.into_iter().enumerate() {
        let Some(text) = line.text.filter(|t| !t.trim().is_empty()) else {
            without_text += 1;
            continue;
        };
        let author = line
            .author
            .filter(|a| !a.is_empty())
            .with_context(|| format!("{}: cascade {} has no `author`", path.display(), n + 1))?;
        let c = line.cascade;
        let share_times: Vec<f64> = share_times(&c.shares)
            .into_iter()
            .filter(|&t| t >= c.created_at && t - c.created_at <= HORIZON_S)
            .collect();
        let final_shares = share_times.len() as u64;
        rows.push(Row {
            id: c.id,
            author,
            at: c.created_at,
            text,
            final_shares,
            y: (final_shares as f64).ln_1p(),
            record: AuthorRecord::default(),
            earlier: Vec::new(),
            followers: line.followers,
            share_times,
        });
    }
    Ok((rows, without_text))
}

/// `dir`: the propagation trees (`tree/<id>.txt`) and `source_tweets.tsv` (`id<TAB>text`).
fn read_trees_with_texts(dir: &Path) -> anyhow::Result<(Vec<Row>, usize)> {
    let tsv = dir.join("source_tweets.tsv");
    let raw =
        std::fs::read_to_string(&tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let texts: HashMap<&str, &str> = raw
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, text)| (id.trim(), text))
        .collect();
    let (trees, _) = read_authored_trees(dir, HORIZON_S, usize::MAX)?;
    let mut rows = Vec::with_capacity(trees.len());
    let mut without_text = 0;
    for tree in trees {
        let Some(text) = texts.get(tree.cascade.id.as_str()) else {
            without_text += 1;
            continue;
        };
        let final_shares = tree.cascade.size();
        rows.push(Row {
            id: tree.cascade.id.clone(),
            author: tree.author,
            at: tree.cascade.created_at,
            text: text.to_string(),
            final_shares,
            y: (final_shares as f64).ln_1p(),
            record: AuthorRecord::default(),
            earlier: Vec::new(),
            followers: (tree.cascade.author_followers > 0).then_some(tree.cascade.author_followers),
            share_times: share_times(&tree.cascade.shares),
        });
    }
    Ok((rows, without_text))
}

fn share_times(shares: &[crate::virality::cascade::ShareNode]) -> Vec<f64> {
    let mut times: Vec<f64> = shares
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.at, s.weight as usize))
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Fills each row's track record as the store had it when the row was posted: the author's
/// cascades posted at least a horizon before at their final size, and those posted since at the
/// shares they had gathered by then (what Pulse records of a cascade still growing).
fn set_records(rows: &mut [Row]) {
    let mut by_author: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        by_author.entry(r.author.clone()).or_default().push(i);
    }
    for indices in by_author.values() {
        for &i in indices {
            let mut record = AuthorRecord::default();
            let mut earlier = Vec::new();
            for &j in indices {
                if j == i || rows[j].at >= rows[i].at {
                    continue;
                }
                let shares = if rows[j].at + HORIZON_S <= rows[i].at {
                    rows[j].final_shares
                } else {
                    rows[j].shares_by(rows[i].at)
                };
                record.add_aged(shares, rows[i].at - rows[j].at);
                earlier.push((shares as f64).ln_1p());
            }
            rows[i].record = record;
            rows[i].earlier = earlier;
        }
    }
}

/// Words of a text for finding near-duplicates: links, mentions and punctuation dropped.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| *w != "URL" && !w.starts_with('@') && !w.starts_with("http"))
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.0[a] = b;
    }
}

/// Group ids joining cascades that tell one story (tf-idf over words and word pairs, cosine
/// at least 0.5, or the same words) or share an author, so that no fold learns a story or an
/// author another is tested on.
pub fn groups(rows: &[Row]) -> Vec<usize> {
    let n = rows.len();
    let docs: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let w = words(&r.text);
            let pairs: Vec<String> = w.windows(2).map(|p| format!("{} {}", p[0], p[1])).collect();
            w.into_iter().chain(pairs).collect()
        })
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for d in &docs {
        let mut seen: Vec<&str> = d.iter().map(String::as_str).collect();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            *df.entry(t).or_default() += 1;
        }
    }
    // Sparse unit vectors, sublinear tf, smooth idf.
    let vectors: Vec<HashMap<&str, f64>> = docs
        .iter()
        .map(|d| {
            let mut tf: HashMap<&str, f64> = HashMap::new();
            for t in d {
                *tf.entry(t.as_str()).or_default() += 1.0;
            }
            let mut v: HashMap<&str, f64> = tf
                .into_iter()
                .map(|(t, c)| {
                    let idf = ((1.0 + n as f64) / (1.0 + df[t] as f64)).ln() + 1.0;
                    (t, (1.0 + c.ln()) * idf)
                })
                .collect();
            let norm = v.values().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.values_mut().for_each(|x| *x /= norm);
            }
            v
        })
        .collect();
    let mut postings: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, v) in vectors.iter().enumerate() {
        for t in v.keys() {
            postings.entry(t).or_default().push(i);
        }
    }
    let mut uf = UnionFind((0..n).collect());
    for (i, v) in vectors.iter().enumerate() {
        let mut dot: HashMap<usize, f64> = HashMap::new();
        for (t, x) in v {
            for &j in &postings[t] {
                if j > i {
                    *dot.entry(j).or_default() += x * vectors[j][t];
                }
            }
        }
        for (j, d) in dot {
            if d >= 0.5 {
                uf.union(i, j);
            }
        }
    }
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        let key = d.join(" ");
        match first.get(&key) {
            Some(&j) => uf.union(i, j),
            None => {
                first.insert(key, i);
            }
        }
    }
    let mut by_author: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        match by_author.get(r.author.as_str()) {
            Some(&j) => uf.union(i, j),
            None => {
                by_author.insert(&r.author, i);
            }
        }
    }
    // Named by their first row, so the folds do not depend on the order unions happened in.
    let mut first_row: HashMap<usize, usize> = HashMap::new();
    (0..n)
        .map(|i| *first_row.entry(uf.find(i)).or_insert(i))
        .collect()
}

/// Assigns whole groups to `k` folds, largest first, each to the fold with fewest rows so far
/// (ties between groups of one size broken by `seed`).
pub fn folds(groups: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut size: HashMap<usize, usize> = HashMap::new();
    for &g in groups {
        *size.entry(g).or_default() += 1;
    }
    let mut keys: Vec<usize> = size.keys().copied().collect();
    keys.sort_by_key(|&g| {
        (
            std::cmp::Reverse(size[&g]),
            (g as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    });
    let mut load = vec![0usize; k];
    let mut fold_of: HashMap<usize, usize> = HashMap::new();
    for g in keys {
        let f = (0..k).min_by_key(|&f| load[f]).unwrap_or(0);
        fold_of.insert(g, f);
        load[f] += size[&g];
    }
    groups.iter().map(|g| fold_of[g]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(author: &str, at: f64, text: &str, shares: u64) -> Row {
        Row {
            id: format!("{author}-{at}"),
            author: author.into(),
            at,
            text: text.into(),
            final_shares: shares,
            y: (shares as f64).ln_1p(),
            record: AuthorRecord::default(),
            earlier: Vec::new(),
            share_times: Vec::new(),
            followers: None,
        }
    }

    #[test]
    fn a_record_holds_earlier_cascades_final_once_finished_and_as_far_as_seen_before() {
        let day = 86_400.0;
        let mut rows = vec![
            row("a", 0.0, "one", 10),
            row("a", 3.0 * day, "two", 100),
            row("a", 8.0 * day, "three", 1),
            row("b", 9.0 * day, "four", 5),
        ];
        // "two" had 30 of its 100 shares an hour in, the rest over the next two days.
        rows[1].share_times = (0..100)
            .map(|k| 3.0 * day + if k < 30 { 600.0 } else { day + k as f64 })
            .collect();
        rows[1].share_times.sort_by(f64::total_cmp);
        let mut later = rows[1].clone();
        later.at = 3.0 * day + 3_600.0;
        later.id = "a-later".into();
        later.share_times.clear();
        rows.insert(2, later);
        set_records(&mut rows);
        assert_eq!(rows[0].record.cascades, 0);
        // "one" is three days old and gathered its shares beyond what a test tree holds.
        assert_eq!(rows[1].record.cascades, 1);
        assert_eq!(rows[1].record.sum_log, 0.0);
        // An hour after "two": "one" as seen (none in its tree) and "two"'s first 30.
        assert_eq!(rows[2].record.cascades, 2);
        assert!((rows[2].record.sum_log - 31f64.ln()).abs() < 1e-12);
        // Eight days in: "one" is final (10), "two" has its 100, the later post none yet.
        assert_eq!(rows[3].record.cascades, 3);
        assert!((rows[3].record.sum_log - (11f64.ln() + 101f64.ln())).abs() < 1e-12);
        assert_eq!(rows[4].record.cascades, 0);
        // The median baseline reads the same sizes.
        assert_eq!(rows[3].earlier, vec![11f64.ln(), 101f64.ln(), 0.0]);
        assert!(rows[4].earlier.is_empty());
    }

    #[test]
    fn a_file_of_cascades_counts_shares_within_the_horizon_and_names_a_line_without_author() {
        let path = std::env::temp_dir().join(format!("pulse-lines-{}.jsonl", std::process::id()));
        let lines = [
            r#"{"id": "a", "author": "u", "text": "first", "created_at": 1000, "author_followers": 0, "shares": [[10, null, -1], [20, 5, 0], [700000, null, -1]]}"#,
            r#"{"id": "b", "author": "u", "text": "second", "created_at": 90000, "shares": [[5, null, -1]]}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let (rows, without_text) = read(&path).unwrap();
        assert_eq!(without_text, 0);
        assert_eq!(rows.len(), 2);
        // The share 8 days in is past the horizon; 0 followers is a count, absent is unknown.
        assert_eq!((rows[0].final_shares, rows[0].followers), (2, Some(0)));
        assert_eq!(rows[1].followers, None);
        // "b" went out a day after "a", which had both its shares by then.
        assert_eq!(rows[1].record.cascades, 1);
        assert!((rows[1].record.sum_log - 3f64.ln()).abs() < 1e-12);

        std::fs::write(&path, r#"{"id": "c", "text": "no author", "shares": []}"#).unwrap();
        let err = read(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).ok();
        assert!(err.contains("cascade 1 has no `author`"), "{err}");
    }

    #[test]
    fn retellings_and_authors_share_a_group_and_a_fold() {
        let rows = vec![
            row("a", 0.0, "earthquake hits the city centre tonight URL", 1),
            row("b", 1.0, "Earthquake hits the city centre tonight! @x", 1),
            row("c", 2.0, "a cat wins the election", 1),
            row("c", 3.0, "stock markets fall on rate fears", 1),
            row("d", 4.0, "new phone launched today", 1),
        ];
        let g = groups(&rows);
        assert_eq!(g[0], g[1]);
        assert_eq!(g[2], g[3]);
        assert_ne!(g[0], g[2]);
        assert_ne!(g[4], g[0]);
        let f = folds(&g, 2, 0);
        assert_eq!(f[0], f[1]);
        assert_eq!(f[2], f[3]);
    }
}
