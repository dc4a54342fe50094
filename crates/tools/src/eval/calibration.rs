//! `pulse eval calibration`: sentiment calibrated to a domain from a few hundred labels, as a
//! deployment's reviewers would give them. For each of `--draws` random draws of `--labels`
//! `train` posts it runs what the live calibrator runs ([`crate::analysis::calibration`]: the
//! shipped models read the posts, an adapter is trained and kept only when it beats them out of
//! fold) and scores the domain's `test` posts and, with `--general`, a general set (TweetEval),
//! each beside the shipped models measured in the same run.
//!
//! `--data` is JSON lines: `text`, `label` (`negative`, `neutral`, `positive`), optional `id`,
//! `lang` and `split` (`train` or `test`; absent: `train`). `--general` is `label<TAB>text`
//! lines, as `pulse eval --task sentiment` reads. The last line printed reads
//! `overall shipped=S calibrated=C gain=G general_shipped=S2 general_calibrated=C2
//! general_change=D` (macro-recall in points, means over the draws; the general figures 0 without
//! `--general`).

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use super::AnalyzerArgs;
use crate::analysis::{
    self,
    calibration::{self, class_of, macro_recall, Calibration, Example, Reference},
};
use crate::models::{Analysis, SentimentLabel};
use crate::topics::relevance::key_of;

/// Options of `pulse eval calibration`.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrationEvalArgs {
    /// JSON lines of the domain's labelled posts (`text`, `label`, optional `id`, `lang`,
    /// `split`).
    #[arg(long, required_unless_present = "write_reference")]
    pub data: Option<PathBuf>,
    /// Writes the word reference of general tweets calibration judges a post's likeness to the
    /// labelled posts against, from the `label<TAB>text` lines of `--reference`, and exits.
    #[arg(long, requires = "reference")]
    pub write_reference: Option<PathBuf>,
    /// `label<TAB>text` lines of general tweets, for `--write-reference`.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// `label<TAB>text` lines of a general set, scored with and without the calibration.
    #[arg(long)]
    pub general: Option<PathBuf>,
    /// Labels drawn from the `train` posts (all of them when fewer).
    #[arg(long, default_value_t = 200)]
    pub labels: usize,
    /// Random draws of the labels; the figures are their means.
    #[arg(long, default_value_t = 5)]
    pub draws: usize,
    #[command(flatten)]
    pub analyzer: AnalyzerArgs,
}

#[derive(Debug, Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<String>,
    text: String,
    label: String,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    split: Option<String>,
}

/// A labelled text with what the shipped models made of it.
struct Read {
    id: String,
    text: String,
    lang: Option<String>,
    label: usize,
    analysis: Analysis,
}

const BATCH: usize = 256;

fn analyse(
    router: &mut analysis::routing::LanguageRouter,
    items: Vec<(String, String, Option<String>, usize)>,
) -> Vec<Read> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(BATCH) {
        let posts: Vec<(&str, Option<&str>)> = chunk
            .iter()
            .map(|(_, t, l, _)| (t.as_str(), l.as_deref()))
            .collect();
        let analyses = router.analyze_posts(&posts);
        for ((id, text, lang, label), analysis) in chunk.iter().cloned().zip(analyses) {
            out.push(Read {
                id,
                text,
                lang,
                label,
                analysis,
            });
        }
    }
    out
}

fn label_of(value: &str, line: usize) -> anyhow::Result<usize> {
    SentimentLabel::parse(value).map(class_of).with_context(|| {
        format!("line {line}: label `{value}` is not negative, neutral or positive")
    })
}

/// Macro-recall in points of `reads` as shipped, and with `calibration` applied, the share of
/// `reads` it adapted and the microseconds it took a post.
fn score(reads: &[Read], calibration: Option<&Calibration>) -> (f64, f64, f64, f64) {
    let shipped = macro_recall(
        reads
            .iter()
            .map(|r| (class_of(r.analysis.sentiment_label), r.label)),
    );
    let (mut adapted, mut took) = (0, std::time::Duration::ZERO);
    let calibrated = match calibration {
        None => shipped,
        Some(c) => {
            let mut analyses: Vec<Analysis> = reads.iter().map(|r| r.analysis.clone()).collect();
            let posts: Vec<(&str, Option<&str>)> = reads
                .iter()
                .map(|r| (r.text.as_str(), r.lang.as_deref()))
                .collect();
            let started = std::time::Instant::now();
            adapted = c.apply(&mut analyses, &posts);
            took = started.elapsed();
            macro_recall(
                analyses
                    .iter()
                    .zip(reads)
                    .map(|(a, r)| (class_of(a.sentiment_label), r.label)),
            )
        }
    };
    (
        f64::from(shipped) * 100.0,
        f64::from(calibrated) * 100.0,
        adapted as f64 / reads.len().max(1) as f64,
        took.as_secs_f64() * 1e6 / reads.len().max(1) as f64,
    )
}

fn write_reference(from: &PathBuf, to: &PathBuf) -> anyhow::Result<()> {
    let raw =
        std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
    let texts: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t))
        .collect();
    anyhow::ensure!(
        !texts.is_empty(),
        "no `label<TAB>text` lines in {}",
        from.display()
    );
    std::fs::write(to, Reference::build(texts.iter().copied()))
        .with_context(|| format!("writing {}", to.display()))?;
    println!("{} tweets counted into {}", texts.len(), to.display());
    Ok(())
}

pub fn run(args: CalibrationEvalArgs) -> anyhow::Result<()> {
    if let (Some(to), Some(from)) = (&args.write_reference, &args.reference) {
        return write_reference(from, to);
    }
    let data = args.data.as_ref().context("--data is needed")?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for line in super::json_lines(data, |n| format!("line {n}"))? {
        let (n, l): (usize, Line) = line?;
        let label = label_of(&l.label, n)?;
        // Without an id, a post is named by its line's index from 0.
        let item = (
            l.id.unwrap_or_else(|| (n - 1).to_string()),
            l.text,
            l.lang,
            label,
        );
        match l.split.as_deref() {
            None | Some("train") => train.push(item),
            Some("test") => test.push(item),
            Some(other) => anyhow::bail!("line {n}: split `{other}` is not train or test"),
        }
    }
    anyhow::ensure!(
        !train.is_empty() && !test.is_empty(),
        "{} needs train and test posts",
        data.display()
    );
    let mut general = Vec::new();
    if let Some(path) = &args.general {
        let raw =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in raw
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let (label, text) = line.split_once('\t').with_context(|| {
                format!(
                    "{}: line {}: expected `label<TAB>text`",
                    path.display(),
                    n + 1
                )
            })?;
            general.push((
                format!("g{n}"),
                text.to_string(),
                None,
                label_of(label, n + 1)?,
            ));
        }
    }
    let (backend, settings) = args.analyzer.settings(1)?;
    let mut router = analysis::build_router(backend, &settings)?;
    let train = analyse(&mut router, train);
    let started = std::time::Instant::now();
    let test = analyse(&mut router, test);
    let model_us = started.elapsed().as_secs_f64() * 1e6 / test.len().max(1) as f64;
    let general = analyse(&mut router, general);
    println!("machine: {}", crate::machine::machine_description());
    println!(
        "{} train posts, {} test posts, {} general posts; {} labels a draw, {} draws",
        train.len(),
        test.len(),
        general.len(),
        args.labels.min(train.len()),
        args.draws
    );

    let draws = args.draws.max(1);
    let mut sums = [0f64; 4];
    let mut apply_us = Vec::new();
    for draw in 0..draws {
        let mut order: Vec<&Read> = train.iter().collect();
        order.sort_by_key(|r| key_of(&format!("{draw}:{}", r.id)));
        let examples: Vec<Example> = order
            .into_iter()
            .take(args.labels)
            .filter_map(|r| {
                Example::read(&r.id, &r.text, &r.analysis, SentimentLabel::ALL[r.label])
            })
            .collect();
        let assessed = calibration::assess(&examples);
        let adapters: Vec<_> = assessed.iter().filter_map(|a| a.adapter.clone()).collect();
        for a in &assessed {
            println!(
                "draw {draw}: {} ({} labels): {}",
                a.model, a.labels, a.reason
            );
        }
        let calibration = (!adapters.is_empty()).then(|| Calibration::new(draw as i64, adapters));
        let (shipped, calibrated, adapted, took) = score(&test, calibration.as_ref());
        if calibration.is_some() {
            apply_us.push(took);
        }
        let (g_shipped, g_calibrated, g_adapted, _) = if general.is_empty() {
            (0.0, 0.0, 0.0, 0.0)
        } else {
            score(&general, calibration.as_ref())
        };
        println!(
            "draw {draw}: domain {shipped:.1} -> {calibrated:.1} ({:+.1}), {:.0}% adapted; general {g_shipped:.1} -> {g_calibrated:.1} ({:+.1}), {:.0}% adapted",
            calibrated - shipped,
            adapted * 100.0,
            g_calibrated - g_shipped,
            g_adapted * 100.0
        );
        for (s, v) in sums
            .iter_mut()
            .zip([shipped, calibrated, g_shipped, g_calibrated])
        {
            *s += v;
        }
    }
    if !apply_us.is_empty() {
        println!(
            "cost per post, one thread: the shipped model {model_us:.0} µs (tokenizing and inference), the calibration {:.2} µs (mean of {} draws)",
            apply_us.iter().sum::<f64>() / apply_us.len() as f64,
            apply_us.len()
        );
    }
    let [s, c, gs, gc] = sums.map(|v| v / draws as f64);
    println!(
        "overall shipped={s:.2} calibrated={c:.2} gain={:.2} general_shipped={gs:.2} general_calibrated={gc:.2} general_change={:.2}",
        c - s,
        gc - gs
    );
    Ok(())
}
