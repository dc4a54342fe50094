//! `pulse eval`: scores an analyzer backend on a labelled TSV file (`label<TAB>text` per line)
//! with the metric the literature uses for the task, so accuracy claims are reproducible.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::analysis::{self, DecisionThresholds};
use crate::eval::AnalyzerArgs;
use crate::models::Analysis;

/// Texts per analyzer call, as in the pipeline.
const BATCH: usize = 500;

/// The labelled tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    /// negative / neutral / positive; macro-averaged recall.
    Sentiment,
    /// anger / joy / optimism / sadness; macro-F1.
    Emotion,
    /// not-offensive / offensive; macro-F1.
    Offensive,
    /// not-hate / hate; macro-F1.
    Hate,
}

impl Task {
    fn labels(self) -> &'static [&'static str] {
        match self {
            Task::Sentiment => &["negative", "neutral", "positive"],
            Task::Emotion => &["anger", "joy", "optimism", "sadness"],
            Task::Offensive => &["not-offensive", "offensive"],
            Task::Hate => &["not-hate", "hate"],
        }
    }

    /// The label an analysis predicts with the backend's thresholds; `none` when the emotion
    /// distribution is empty.
    pub fn predict(self, a: &Analysis, thresholds: DecisionThresholds) -> &'static str {
        match self {
            Task::Sentiment => a.sentiment_label.as_str(),
            Task::Emotion => a.emotions.dominant().map_or("none", |e| e.as_str()),
            Task::Offensive => {
                if a.toxicity.get() >= thresholds.offensive {
                    "offensive"
                } else {
                    "not-offensive"
                }
            }
            Task::Hate => {
                if a.hate.get() >= thresholds.hate {
                    "hate"
                } else {
                    "not-hate"
                }
            }
        }
    }
}

/// Options of `pulse eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[arg(long, value_enum)]
    pub task: Task,
    /// A TSV file: `label<TAB>text` per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Analyzer backend to score: `onnx` (model bundles) or `lexicon`.
    #[arg(long, default_value = "onnx")]
    pub backend: String,
    /// Model bundle directory (repeatable); defaults to the bundled model.
    #[arg(long = "bundle")]
    pub bundles: Vec<PathBuf>,
    /// The language of every text (`de`, `es`, ...), routed as a post tagged so would be: the
    /// English model for `en`, the multilingual model for the others; `detect` lets the
    /// language detector decide per text. Without it every text goes to the English backend,
    /// as before languages were routed.
    #[arg(long)]
    pub lang: Option<String>,
    /// With `--lang detect`: the language the texts are written in, so the same run scores them
    /// tagged too; by default read from the data's folder (`umsab/german/test.tsv` is `de`).
    #[arg(long)]
    pub given_lang: Option<String>,
    /// Multilingual model bundle directory (repeatable); defaults to the bundled one.
    #[arg(long = "multilingual-bundle")]
    pub multilingual_bundles: Vec<PathBuf>,
    /// Path of libonnxruntime.so; defaults to ORT_DYLIB_PATH.
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
    /// Inference threads per session.
    #[arg(long, default_value_t = 2)]
    pub intra_threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Scores of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub task: String,
    pub model: String,
    pub examples: usize,
    /// Macro-recall for sentiment, macro-F1 otherwise, in percent.
    pub metric_name: String,
    pub metric: f64,
    /// Macro-F1 in percent (the multilingual sentiment literature's metric).
    pub macro_f1: f64,
    /// The language the texts were tagged with, if any.
    pub lang: Option<String>,
    /// With `--lang detect`: the languages the detector named, with their texts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub detected: BTreeMap<String, usize>,
    /// With `--lang detect` and a known language: the same texts scored tagged with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagged: Option<Box<EvalReport>>,
    pub accuracy: f64,
    /// confusion[gold][predicted]
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    pub texts_per_sec: f64,
}

/// Runs the evaluation and prints the report.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    // Its own fields rather than a flattened `AnalyzerArgs`: clap does not see the arguments
    // of this optional struct (`pulse eval --task ...`) through a nested flatten.
    let analyzer = AnalyzerArgs {
        backend: args.backend.clone(),
        bundles: args.bundles.clone(),
        onnxruntime: args.onnxruntime.clone(),
    };
    let (backend, mut settings) = analyzer.settings(args.intra_threads)?;
    let raw = std::fs::read_to_string(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let mut gold = Vec::new();
    let mut texts = Vec::new();
    for (n, line) in raw
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (label, text) = line
            .split_once('\t')
            .with_context(|| format!("line {}: expected `label<TAB>text`", n + 1))?;
        anyhow::ensure!(
            args.task.labels().contains(&label),
            "line {}: label `{label}` is not one of {:?}",
            n + 1,
            args.task.labels()
        );
        gold.push(label.to_string());
        texts.push(text.to_string());
    }
    anyhow::ensure!(!texts.is_empty(), "no examples in {}", args.data.display());
    if !args.multilingual_bundles.is_empty() {
        settings.multilingual_bundles = args.multilingual_bundles.clone();
    }
    let started = Instant::now();
    let mut predicted = Vec::with_capacity(texts.len());
    let mut detected = BTreeMap::new();
    let mut tagged_report = None;
    let model = match args.lang.as_deref() {
        None => {
            let mut analyzer = analysis::build(backend, &settings)?;
            let thresholds = analyzer.decision_thresholds();
            for chunk in texts.chunks(BATCH) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                for a in analyzer.analyze_batch(&refs) {
                    predicted.push(args.task.predict(&a, thresholds));
                }
            }
            analyzer.model().to_string()
        }
        Some(lang) => {
            let mut router = analysis::build_router(backend, &settings)?;
            let given = (lang != "detect").then_some(lang);
            let routed = route(&mut router, args.task, &texts, given);
            predicted = routed.predicted;
            if given.is_none() {
                detected = routed.languages;
                if let Some(tag) = args
                    .given_lang
                    .clone()
                    .or_else(|| language_of_folder(&args.data))
                {
                    let started = Instant::now();
                    let tagged = route(&mut router, args.task, &texts, Some(&tag));
                    let per_sec = texts.len() as f64 / started.elapsed().as_secs_f64();
                    let mut report =
                        score(args.task, &tagged.models, &gold, &tagged.predicted, per_sec);
                    report.lang = Some(tag);
                    tagged_report = Some(Box::new(report));
                }
            }
            routed.models
        }
    };
    let texts_per_sec = texts.len() as f64 / started.elapsed().as_secs_f64();
    let mut report = score(args.task, &model, &gold, &predicted, texts_per_sec);
    report.lang = args.lang.clone();
    report.detected = detected;
    report.tagged = tagged_report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, args.task);
    }
    Ok(())
}

/// Predictions of the routed analyzers, as posts tagged `given` (or untagged) would get them.
struct Routed {
    predicted: Vec<&'static str>,
    /// The models that made them, joined.
    models: String,
    /// The languages the texts were analysed as, with their counts.
    languages: BTreeMap<String, usize>,
}

fn route(
    router: &mut analysis::routing::LanguageRouter,
    task: Task,
    texts: &[String],
    given: Option<&str>,
) -> Routed {
    let mut predicted = Vec::with_capacity(texts.len());
    let mut models = std::collections::BTreeSet::new();
    let mut languages = BTreeMap::new();
    for chunk in texts.chunks(BATCH) {
        let posts: Vec<(&str, Option<&str>)> = chunk.iter().map(|t| (t.as_str(), given)).collect();
        for a in router.analyze_posts(&posts) {
            predicted.push(task.predict(&a, router.decision_thresholds_of(&a)));
            models.insert(a.model.clone());
            *languages
                .entry(a.lang.clone().unwrap_or_else(|| "none".into()))
                .or_default() += 1;
        }
    }
    Routed {
        predicted,
        models: models.into_iter().collect::<Vec<_>>().join(", "),
        languages,
    }
}

/// The language of a shared data folder's texts (`umsab/german/test.tsv` is `de`,
/// `sentiment/test.tsv` `en`).
fn language_of_folder(path: &std::path::Path) -> Option<String> {
    let folder = path.parent()?.file_name()?.to_str()?;
    super::language::SETS
        .iter()
        .find(|(dir, _)| dir.rsplit('/').next() == Some(folder))
        .map(|(_, lang)| lang.to_string())
}

/// Computes the task metric, accuracy and confusion matrix.
pub fn score(
    task: Task,
    model: &str,
    gold: &[String],
    predicted: &[&str],
    texts_per_sec: f64,
) -> EvalReport {
    let labels = task.labels();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (g, p) in gold.iter().zip(predicted) {
        *confusion
            .entry(g.clone())
            .or_default()
            .entry(p.to_string())
            .or_default() += 1;
    }
    let correct = gold
        .iter()
        .zip(predicted)
        .filter(|(g, p)| g.as_str() == **p)
        .count();
    let count = |g: &str, p: &str| {
        confusion
            .get(g)
            .and_then(|r| r.get(p))
            .copied()
            .unwrap_or(0)
    };
    // A set labelled in fewer classes than the task has (a binary sentiment set) is scored on
    // its own classes; an answer of another class counts as wrong.
    let present: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|l| gold.iter().any(|g| g == l))
        .collect();
    let labels: &[&str] = if present.is_empty() { labels } else { &present };
    let per_label: Vec<(f64, f64)> = labels
        .iter()
        .map(|l| {
            let tp = count(l, l) as f64;
            let gold_n = gold.iter().filter(|g| g.as_str() == *l).count() as f64;
            let pred_n = predicted.iter().filter(|p| **p == *l).count() as f64;
            let recall = if gold_n > 0.0 { tp / gold_n } else { 0.0 };
            let precision = if pred_n > 0.0 { tp / pred_n } else { 0.0 };
            (recall, precision)
        })
        .collect();
    let f1 = per_label
        .iter()
        .map(|(r, p)| {
            if r + p > 0.0 {
                2.0 * r * p / (r + p)
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / labels.len() as f64;
    let (metric_name, metric) = if task == Task::Sentiment {
        let r = per_label.iter().map(|(r, _)| r).sum::<f64>() / labels.len() as f64;
        ("macro-recall", r)
    } else {
        ("macro-F1", f1)
    };
    EvalReport {
        task: format!("{task:?}").to_lowercase(),
        model: model.to_string(),
        examples: gold.len(),
        metric_name: metric_name.to_string(),
        metric: metric * 100.0,
        macro_f1: f1 * 100.0,
        lang: None,
        detected: BTreeMap::new(),
        tagged: None,
        accuracy: correct as f64 / gold.len().max(1) as f64 * 100.0,
        confusion,
        texts_per_sec,
    }
}

fn print_report(r: &EvalReport, task: Task) {
    println!(
        "task {}  model {}  examples {}  lang {}",
        r.task,
        r.model,
        r.examples,
        r.lang.as_deref().unwrap_or("(English backend)")
    );
    println!(
        "{} {:.2}  macro-F1 {:.2}  accuracy {:.1}  {:.0} texts/s",
        r.metric_name, r.metric, r.macro_f1, r.accuracy, r.texts_per_sec
    );
    if !r.detected.is_empty() {
        let langs: Vec<String> = r.detected.iter().map(|(l, n)| format!("{l} {n}")).collect();
        println!("analysed as: {}", langs.join(", "));
    }
    if let Some(t) = &r.tagged {
        println!(
            "tagged {}: {} {:.2}  macro-F1 {:.2}  accuracy {:.1}",
            t.lang.as_deref().unwrap_or(""),
            t.metric_name,
            t.metric,
            t.macro_f1,
            t.accuracy
        );
        println!(
            "untagged - tagged: {} {:+.2}  macro-F1 {:+.2}",
            t.metric_name,
            r.metric - t.metric,
            r.macro_f1 - t.macro_f1
        );
    }
    let mut columns: Vec<String> = task.labels().iter().map(|s| s.to_string()).collect();
    if task == Task::Emotion {
        columns.push("none".into());
    }
    println!("confusion (rows gold, columns predicted):");
    println!(
        "{:>14} {}",
        "",
        columns
            .iter()
            .map(|c| format!("{c:>14}"))
            .collect::<String>()
    );
    for g in task.labels() {
        let row = r.confusion.get(*g);
        let cells: String = columns
            .iter()
            .map(|c| format!("{:>14}", row.and_then(|r| r.get(c)).copied().unwrap_or(0)))
            .collect();
        println!("{g:>14} {cells}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_recall_and_f1_match_hand_computation() {
        let gold: Vec<String> = ["negative", "negative", "neutral", "positive"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pred = ["negative", "neutral", "neutral", "neutral"];
        let r = score(Task::Sentiment, "m", &gold, &pred, 1.0);
        // recalls: negative 1/2, neutral 1/1, positive 0/1
        assert!((r.metric - 50.0).abs() < 1e-9);
        assert!((r.accuracy - 50.0).abs() < 1e-9);

        // A binary set: averaged over its two classes, the neutral answer wrong.
        let gold: Vec<String> = ["negative", "positive", "positive"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = score(
            Task::Sentiment,
            "m",
            &gold,
            &["negative", "neutral", "positive"],
            1.0,
        );
        // recalls: negative 1/1, positive 1/2
        assert!((r.metric - 75.0).abs() < 1e-9);
        // F1: negative 1, positive 2/3
        assert!((r.macro_f1 - 250.0 / 3.0).abs() < 1e-9);

        let gold: Vec<String> = ["hate", "not-hate", "not-hate"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pred = ["hate", "hate", "not-hate"];
        let r = score(Task::Hate, "m", &gold, &pred, 1.0);
        // hate: p 1/2 r 1 f1 2/3; not-hate: p 1 r 1/2 f1 2/3
        assert!((r.metric - 200.0 / 3.0).abs() < 1e-9);
    }
}
