//! `pulse eval language`: how often the language detector names the right language, and how
//! often it says it is unsure, on labelled texts whose language is known.
//!
//! `--data` is the shared data directory: `umsab/<language>/test.tsv` for the seven UMSAB
//! languages and `sentiment/test.tsv` for English (`label<TAB>text` per line; the label is
//! ignored here).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::analysis::language::{detect, ngrams, LanguageSource};

/// The data directory's folders and the ISO 639-1 code of their language.
pub const SETS: [(&str, &str); 8] = [
    ("sentiment", "en"),
    ("umsab/arabic", "ar"),
    ("umsab/french", "fr"),
    ("umsab/german", "de"),
    ("umsab/hindi", "hi"),
    ("umsab/italian", "it"),
    ("umsab/portuguese", "pt"),
    ("umsab/spanish", "es"),
];

/// Options of `pulse eval language`.
#[derive(Debug, Clone, clap::Args)]
pub struct LanguageEvalArgs {
    /// The data directory (with `sentiment/` and `umsab/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Which split to read.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Learn the tweet n-gram model from the `train` splits and write it here (Pulse ships it
    /// as `crates/core/src/analysis/language/ngrams.bin`) instead of scoring.
    #[arg(long)]
    pub write_model: Option<PathBuf>,
    /// The model's hashed buckets, as a power of two.
    #[arg(long, default_value_t = ngrams::DEFAULT_BITS)]
    pub bits: u8,
}

/// Detection figures for one language.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LanguageScore {
    pub lang: String,
    pub texts: usize,
    /// Share named correctly, unsure guesses included, in percent.
    pub accuracy: f64,
    /// Share named correctly with confidence, in percent.
    pub confident_correct: f64,
    /// Share the detector was unsure about (or found no letters in), in percent.
    pub unsure: f64,
    /// Share named wrongly with confidence, in percent: what routes a post to the wrong model.
    pub confident_wrong: f64,
    /// The most frequent wrong answers.
    pub confused_with: Vec<(String, usize)>,
}

/// Runs the evaluation and prints the report.
pub fn run(args: LanguageEvalArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.write_model {
        return write_model(&args.data, args.bits, out);
    }
    let started = Instant::now();
    let mut scores = Vec::new();
    let mut total = 0;
    for (dir, lang) in SETS {
        let path = args.data.join(dir).join(format!("{}.tsv", args.split));
        let texts = read_texts(&path)?;
        total += texts.len();
        scores.push(score(lang, &texts));
    }
    let per_sec = total as f64 / started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"languages": scores, "texts_per_sec": per_sec})
            )?
        );
        return Ok(());
    }
    println!(
        "{:<5} {:>6} {:>9} {:>11} {:>8} {:>11}  confused with",
        "lang", "texts", "accuracy", "confident", "unsure", "conf. wrong"
    );
    for s in &scores {
        let confused: Vec<String> = s
            .confused_with
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        println!(
            "{:<5} {:>6} {:>8.1}% {:>10.1}% {:>7.1}% {:>10.1}%  {}",
            s.lang,
            s.texts,
            s.accuracy,
            s.confident_correct,
            s.unsure,
            s.confident_wrong,
            confused.join(", ")
        );
    }
    println!("{total} texts, {per_sec:.0} texts/s on one thread");
    Ok(())
}

/// Learns the tweet n-gram model from every set's `train` split.
fn write_model(data: &Path, bits: u8, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!((8..=20).contains(&bits), "--bits must be 8 to 20");
    let mut sets = Vec::new();
    for (dir, lang) in SETS {
        let texts = read_texts(&data.join(dir).join("train.tsv"))?;
        let texts = texts.iter().map(|t| unescape(t)).collect();
        sets.push((lang, texts));
    }
    let model = ngrams::NgramModel::train(&sets, bits);
    std::fs::write(out, model.to_bytes()).with_context(|| format!("writing {}", out.display()))?;
    let counts: Vec<String> = sets
        .iter()
        .map(|(l, t)| format!("{l} {}", t.len()))
        .collect();
    println!("wrote {} from {}", out.display(), counts.join(", "));
    Ok(())
}

/// Some sets write characters as `\u2019` escapes; a post never does.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 2..at + 6)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 6..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The texts of a `label<TAB>text` file, labels left out.
pub fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(raw
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
        .collect())
}

/// Scores the detector on `texts`, all written in `lang`.
pub fn score(lang: &str, texts: &[String]) -> LanguageScore {
    let mut correct = 0;
    let mut confident_correct = 0;
    let mut unsure = 0;
    let mut confident_wrong = 0;
    let mut wrong: std::collections::BTreeMap<String, usize> = Default::default();
    for text in texts {
        let got = detect(text);
        let sure = got.source == LanguageSource::Detected;
        let right = got.code.as_deref() == Some(lang);
        correct += usize::from(right);
        confident_correct += usize::from(right && sure);
        unsure += usize::from(!sure);
        confident_wrong += usize::from(!right && sure);
        if !right {
            *wrong
                .entry(got.code.unwrap_or_else(|| "none".into()))
                .or_default() += 1;
        }
    }
    let mut confused_with: Vec<(String, usize)> = wrong.into_iter().collect();
    confused_with.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    confused_with.truncate(3);
    let pct = |n: usize| 100.0 * n as f64 / texts.len().max(1) as f64;
    LanguageScore {
        lang: lang.to_string(),
        texts: texts.len(),
        accuracy: pct(correct),
        confident_correct: pct(confident_correct),
        unsure: pct(unsure),
        confident_wrong: pct(confident_wrong),
        confused_with,
    }
}
