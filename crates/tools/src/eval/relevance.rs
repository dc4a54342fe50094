//! `pulse eval relevance`: the learned relevance of posts to a topic, on posts people labelled
//! as about an entity or not. For each entity it asks for `--labels` of its `train` posts as the
//! review queue would ask (a few at random, then where the model is least sure), trains the
//! model the live filter uses ([`crate::topics::relevance`]), and scores its `test` posts beside
//! two baselines measured in the same run: the query alone (everything it matches is related)
//! and the majority label of as many `train` posts taken at random.
//!
//! `--data` is JSON lines: `id`, `text`, `entity` (a topic's name), `query` (its query in the
//! topics language), `label` (`related` or `unrelated`), optional `lang`, `author`,
//! `created_at`, `split` (`train` or `test`; absent: `train`). The last line printed reads
//! `overall accuracy=A macro_f1=F kept_related=R removed_unrelated=U` (fractions 0-1, pooled over
//! every entity's test posts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::topics::relevance::{choose, key_of, Features, Model, Post};
use crate::topics::set::{query_matches, PostFields};

/// Options of `pulse eval relevance`.
#[derive(Debug, Clone, clap::Args)]
pub struct RelevanceEvalArgs {
    /// JSON lines of labelled posts (`id`, `text`, `entity`, `query`, `label`, optional
    /// `lang`, `author`, `created_at`, `split`).
    #[arg(long)]
    pub data: PathBuf,
    /// Labels asked for per entity, from its `train` posts (all of them when fewer).
    #[arg(long, default_value_t = 50)]
    pub labels: usize,
}

#[derive(Debug, Deserialize)]
struct Line {
    id: String,
    text: String,
    entity: String,
    query: String,
    label: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    split: Option<String>,
}

/// A labelled post, read.
struct Labelled {
    key: u64,
    features: Features,
    related: bool,
    matched: bool,
}

/// Counts of decisions against labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Confusion {
    /// Related kept, related removed, unrelated kept, unrelated removed.
    pub kept_related: u64,
    pub removed_related: u64,
    pub kept_unrelated: u64,
    pub removed_unrelated: u64,
}

impl Confusion {
    fn add(&mut self, related: bool, kept: bool) {
        match (related, kept) {
            (true, true) => self.kept_related += 1,
            (true, false) => self.removed_related += 1,
            (false, true) => self.kept_unrelated += 1,
            (false, false) => self.removed_unrelated += 1,
        }
    }

    fn merge(&mut self, o: &Confusion) {
        self.kept_related += o.kept_related;
        self.removed_related += o.removed_related;
        self.kept_unrelated += o.kept_unrelated;
        self.removed_unrelated += o.removed_unrelated;
    }

    fn total(&self) -> u64 {
        self.kept_related + self.removed_related + self.kept_unrelated + self.removed_unrelated
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.kept_related + self.removed_unrelated, self.total())
    }

    /// Share of related posts kept (1 when there are none).
    pub fn kept_related_share(&self) -> f64 {
        ratio_or_one(self.kept_related, self.kept_related + self.removed_related)
    }

    /// Share of unrelated posts removed (1 when there are none).
    pub fn removed_unrelated_share(&self) -> f64 {
        ratio_or_one(
            self.removed_unrelated,
            self.removed_unrelated + self.kept_unrelated,
        )
    }

    /// Mean of the F1 of both classes (a class absent from labels and decisions counts 1).
    pub fn macro_f1(&self) -> f64 {
        let f1 = |tp: u64, fp: u64, fn_: u64| {
            if tp + fp + fn_ == 0 {
                1.0
            } else {
                2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
            }
        };
        (f1(self.kept_related, self.kept_unrelated, self.removed_related)
            + f1(
                self.removed_unrelated,
                self.removed_related,
                self.kept_unrelated,
            ))
            / 2.0
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn ratio_or_one(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// One entity's scores.
struct EntityScores {
    train: usize,
    asked: usize,
    learned: Confusion,
    query: Confusion,
    majority: Confusion,
}

/// Each entity's `train` and `test` posts, by name.
type Entities = BTreeMap<String, (Vec<Labelled>, Vec<Labelled>)>;

fn read(path: &Path) -> anyhow::Result<Entities> {
    let mut entities = Entities::new();
    for line in super::json_lines(path, |n| format!("{} line {n}", path.display()))? {
        let (n, l): (usize, Line) = line?;
        let related = match l.label.as_str() {
            "related" => true,
            "unrelated" => false,
            other => anyhow::bail!(
                "{} line {}: label must be `related` or `unrelated`, not `{other}`",
                path.display(),
                n
            ),
        };
        let fields = PostFields {
            text: &l.text,
            author: l.author.as_deref().unwrap_or(""),
            lang: l.lang.as_deref(),
            ..PostFields::default()
        };
        let matched = query_matches(&l.query, &fields).map_err(|e| {
            anyhow::anyhow!(
                "{} line {}: the query of `{}` does not parse: {e}",
                path.display(),
                n,
                l.entity
            )
        })?;
        let labelled = Labelled {
            key: key_of(&l.id),
            features: Features::of(&Post {
                text: &l.text,
                author: l.author.as_deref(),
                lang: l.lang.as_deref(),
                matched,
            }),
            related,
            matched,
        };
        let entry = entities.entry(l.entity).or_default();
        match l.split.as_deref() {
            None | Some("train") => entry.0.push(labelled),
            Some("test") => entry.1.push(labelled),
            Some(other) => anyhow::bail!(
                "{} line {}: split must be `train` or `test`, not `{other}`",
                path.display(),
                n
            ),
        }
    }
    Ok(entities)
}

fn score(train: &[Labelled], test: &[Labelled], labels: usize) -> EntityScores {
    let pool: Vec<Features> = train.iter().map(|l| l.features.clone()).collect();
    let keys: Vec<u64> = train.iter().map(|l| l.key).collect();
    let asked = choose(&pool, &keys, labels, |i| train[i].related);
    let labelled: Vec<(&Features, bool)> = asked
        .iter()
        .map(|&i| (&train[i].features, train[i].related))
        .collect();
    let model = Model::train(&labelled);
    // The baseline's labels are as many taken at random (by key), as a team labelling without
    // a queue would: the queue's own choice leans to the rarer, harder posts. A tie keeps.
    let mut random: Vec<&Labelled> = train.iter().collect();
    random.sort_by_key(|l| l.key);
    random.truncate(labels);
    let related = random.iter().filter(|l| l.related).count();
    let majority = related * 2 >= random.len();
    let mut s = EntityScores {
        train: train.len(),
        asked: asked.len(),
        learned: Confusion::default(),
        query: Confusion::default(),
        majority: Confusion::default(),
    };
    for t in test {
        s.learned.add(t.related, model.keeps(&t.features));
        s.query.add(t.related, t.matched);
        s.majority.add(t.related, majority);
    }
    s
}

fn line(name: &str, c: &Confusion) -> String {
    format!(
        "{name} accuracy={:.4} macro_f1={:.4} kept_related={:.4} removed_unrelated={:.4}",
        c.accuracy(),
        c.macro_f1(),
        c.kept_related_share(),
        c.removed_unrelated_share()
    )
}

/// Runs the evaluation and prints its report.
pub fn run(args: RelevanceEvalArgs) -> anyhow::Result<()> {
    let entities = read(&args.data)?;
    anyhow::ensure!(
        !entities.is_empty(),
        "{} holds no posts",
        args.data.display()
    );
    let started = std::time::Instant::now();
    let (mut learned, mut query, mut majority) = (
        Confusion::default(),
        Confusion::default(),
        Confusion::default(),
    );
    println!(
        "{} entities; {} labels asked for per entity from its train posts",
        entities.len(),
        args.labels
    );
    for (name, (train, test)) in &entities {
        if test.is_empty() {
            println!("{name}: no test posts, skipped");
            continue;
        }
        let s = score(train, test, args.labels);
        println!(
            "{name}: {} train posts, {} labelled, {} test posts",
            s.train,
            s.asked,
            test.len()
        );
        println!("  {}", line("learned", &s.learned));
        println!("  {}", line("query", &s.query));
        println!("  {}", line("majority", &s.majority));
        learned.merge(&s.learned);
        query.merge(&s.query);
        majority.merge(&s.majority);
    }
    println!(
        "baselines over every test post, same run: {}; {}",
        line("query_alone", &query),
        line("majority", &majority)
    );
    println!(
        "trained and scored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{}", line("overall", &learned));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scores_count_what_is_kept_and_removed() {
        let mut c = Confusion::default();
        for (related, kept) in [(true, true), (true, true), (true, false), (false, false)] {
            c.add(related, kept);
        }
        assert!((c.accuracy() - 0.75).abs() < 1e-9);
        assert!((c.kept_related_share() - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.removed_unrelated_share() - 1.0).abs() < 1e-9);
        // F1 related 0.8, unrelated 2/3.
        assert!((c.macro_f1() - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
    }
}
