//! Sentiment calibrated per deployment: the shipped models were trained on general tweets, and a
//! deployment's posts (an airline's customers, a game's players) use words the models read
//! differently. Reviewers' sentiment labels train a small adaptation over what a model already
//! gives, for each model that has enough labels: its three log-probabilities, mixed by a learned
//! 3 x 3 map that starts as the identity, plus a correction from the post's hashed words (as
//! topic relevance reads them), both penalised towards no change.
//! Training weighs each sentiment alike (macro-recall is the measure, and a domain's skew, say
//! 63% negative, must not become a bias), and an adapter adapts only the posts that read like the
//! labelled ones: the words a post shares with them, against how common each is in general tweets
//! ([`Reference`]), must make it likelier to come from the labelled posts than from general
//! tweets, so posts unlike anything reviewed keep the shipped reading. It is versioned, used only
//! when it beats the shipped model out of fold, and every analysis it touched names its version in
//! `model`.

use std::sync::{Arc, LazyLock, RwLock};

use serde::{Deserialize, Serialize};

use crate::models::{Analysis, SentimentLabel, SentimentScore};
use crate::topics::relevance::{word_buckets, Features, BUCKETS};

/// Classes in [`SentimentLabel::ALL`] order: negative, neutral, positive.
const CLASSES: usize = 3;
/// Labels a model needs before it is adapted.
pub const MIN_LABELS: usize = 30;
/// Folds of the out-of-fold comparison, by post key.
pub const FOLDS: u64 = 5;
/// Passes over the labels while training.
const EPOCHS: usize = 30;
/// A post is adapted when the log-likelihood ratio of its words, labelled posts against general
/// tweets, is above this: a post of a few common words passes, one of unseen words does not.
const GATE: f32 = -2.0;
/// Pseudo-documents of general tweets mixed into the labelled posts' word shares, so a word seen
/// in none of them reads as somewhat less likely there, not impossible.
const PRIOR_DOCS: f32 = 20.0;
/// How `model` names a calibrated analysis: `<shipped model>+calibration-<version>`.
const SUFFIX: &str = "+calibration-";

/// The shipped model's name in an analysis's `model`, calibrated or not.
pub fn shipped_model(model: &str) -> &str {
    model.split_once(SUFFIX).map_or(model, |(m, _)| m)
}

/// The penalties of one training: towards the identity map, and towards no word correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Penalties {
    pub map: f32,
    pub words: f32,
}

/// The candidates the inner folds choose from, strongest first (ties go to the stronger): every
/// pair of a map penalty and a word penalty.
const CANDIDATES: [Penalties; 9] = {
    let strengths = [10.0, 1.0, 0.1];
    let words = [1.0, 0.1, 0.01];
    let mut out = [Penalties {
        map: 0.0,
        words: 0.0,
    }; 9];
    let mut i = 0;
    while i < 9 {
        out[i] = Penalties {
            map: strengths[i / 3],
            words: words[i % 3],
        };
        i += 1;
    }
    out
};

/// How many general tweets hold each word bucket ([`word_buckets`]): the yardstick of how
/// common a word is outside a deployment. Stored as a little-endian `u32` count of tweets, then
/// one byte a bucket, `round(16 ln(1 + df))`, so counts up to millions fit a byte within 3%.
#[derive(Debug)]
pub struct Reference {
    docs: f32,
    quantized: Vec<u8>,
}

/// The reference shipped with Pulse: 48,049 tweets of the SemEval Sentiment-in-Twitter training
/// sets of 2013 to 2016 (the training split the shipped English model learned from; none of the
/// TweetEval validation or test tweets), counted by
/// `pulse eval calibration --reference TRAIN.tsv --write-reference crates/core/src/analysis/general-words.bin`.
/// Only the counts are kept, hashed, never the texts.
static GENERAL: LazyLock<Reference> = LazyLock::new(|| {
    Reference::from_bytes(include_bytes!("general-words.bin"))
        .expect("the shipped word reference reads back")
});

impl Reference {
    /// The reference shipped with Pulse.
    pub fn general() -> &'static Reference {
        &GENERAL
    }

    /// Counts the word buckets of `texts`.
    pub fn build<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
        let mut df = vec![0u32; BUCKETS];
        let mut docs = 0u32;
        for t in texts {
            docs += 1;
            for b in word_buckets(t) {
                df[b as usize] += 1;
            }
        }
        let mut out = docs.to_le_bytes().to_vec();
        out.extend(
            df.iter()
                .map(|&d| (16.0 * (1.0 + d as f32).ln()).round().min(255.0) as u8),
        );
        out
    }

    /// A reference written by [`Reference::build`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Reference> {
        if bytes.len() != 4 + BUCKETS {
            return None;
        }
        let docs = u32::from_le_bytes(bytes[..4].try_into().ok()?);
        (docs > 0).then(|| Reference {
            docs: docs as f32,
            quantized: bytes[4..].to_vec(),
        })
    }

    /// The share of general tweets holding bucket `b` (never 0).
    fn share(&self, b: u32) -> f32 {
        let df = (f32::from(self.quantized[b as usize]) / 16.0).exp() - 1.0;
        (df + 0.5) / (self.docs + 1.0)
    }
}

/// A labelled post as training reads it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The shipped model that analysed it.
    pub model: String,
    pub features: Features,
    /// Its word buckets ([`word_buckets`]).
    pub words: Vec<u32>,
    /// The shipped model's probabilities.
    pub probs: [f32; CLASSES],
    /// The shipped model's label (its argmax, with the bundle's own biases).
    pub shipped: usize,
    /// The reviewer's label.
    pub label: usize,
    /// A stable key of the post: its fold.
    pub key: u64,
}

impl Example {
    /// Post `id` with `text`, as a shipped model analysed it, labelled `label` by a reviewer;
    /// `None` when no model's own sentiment is in the analysis (the lexicon's).
    pub fn read(
        id: &str,
        text: &str,
        analysis: &Analysis,
        label: SentimentLabel,
    ) -> Option<Example> {
        let shipped = analysis.shipped_sentiment?;
        Some(Example {
            model: shipped_model(&analysis.model).to_string(),
            features: features(text),
            words: words(text),
            probs: shipped.probs,
            shipped: class_of(shipped.label),
            label: class_of(label),
            key: crate::topics::relevance::key_of(id),
        })
    }
}

/// The index of `label` in [`SentimentLabel::ALL`].
pub fn class_of(label: SentimentLabel) -> usize {
    SentimentLabel::ALL
        .iter()
        .position(|l| *l == label)
        .unwrap_or(1)
}

/// The features of a post's text: its words, as topic relevance reads them, of its opening
/// only ([`crate::topics::relevance::opening`]): a training reads each labelled post hundreds of
/// times, and 2,000 posts of 20 KB read whole outlasted its lease. The language is not among
/// them: each model's adapter is its own, and a constant feature would only repeat the bias with
/// a weaker penalty.
fn features(text: &str) -> Features {
    Features::words(text)
}

/// The word buckets a post's likeness to the labelled posts is judged on, of its opening as
/// [`features`].
fn words(text: &str) -> Vec<u32> {
    word_buckets(text)
}

/// The adaptation of one shipped model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    pub model: String,
    pub labels: usize,
    pub penalties: Penalties,
    map: [[f32; CLASSES]; CLASSES],
    bias: [f32; CLASSES],
    /// Word corrections by feature index, sorted.
    words: Vec<(u32, [f32; CLASSES])>,
    /// The labelled posts it was trained on, and how many of them held each word bucket
    /// (sorted): what a post must read like to be adapted.
    domain_docs: u32,
    domain: Vec<(u32, u32)>,
}

fn log_probs(p: &[f32; CLASSES]) -> [f32; CLASSES] {
    p.map(|x| x.max(1e-6).ln())
}

/// The adapted logits: the map of the shipped log-probabilities `l`, the bias, and each word's
/// correction times its value.
fn logits<'a>(
    map: &[[f32; CLASSES]; CLASSES],
    bias: &[f32; CLASSES],
    l: &[f32; CLASSES],
    corrections: impl Iterator<Item = (&'a [f32; CLASSES], f32)>,
) -> [f32; CLASSES] {
    let mut z = *bias;
    for (zc, row) in z.iter_mut().zip(map) {
        *zc += row.iter().zip(l).map(|(m, x)| m * x).sum::<f32>();
    }
    for (w, v) in corrections {
        for (zc, wc) in z.iter_mut().zip(w) {
            *zc += wc * v;
        }
    }
    z
}

fn softmax(z: [f32; CLASSES]) -> [f32; CLASSES] {
    let max = z.iter().copied().fold(f32::MIN, f32::max);
    let e = z.map(|x| (x - max).exp());
    let sum: f32 = e.iter().sum();
    e.map(|x| x / sum)
}

fn argmax(p: &[f32; CLASSES]) -> usize {
    (0..CLASSES).fold(0, |best, c| if p[c] > p[best] { c } else { best })
}

impl Adapter {
    /// Trains on `examples` (all of one model); deterministic for the same examples in the same
    /// order.
    pub fn train(model: &str, examples: &[&Example], penalties: Penalties) -> Adapter {
        let mut map = [[0f32; CLASSES]; CLASSES];
        for (c, row) in map.iter_mut().enumerate() {
            row[c] = 1.0;
        }
        let mut bias = [0f32; CLASSES];
        // The features seen, numbered densely once, so the passes index arrays.
        let mut index: rustc_hash::FxHashMap<u32, usize> = Default::default();
        let mut ids: Vec<u32> = Vec::new();
        let rows: Vec<Vec<(usize, f32)>> = examples
            .iter()
            .map(|e| {
                e.features
                    .iter()
                    .map(|(i, v)| {
                        let k = *index.entry(i).or_insert_with(|| {
                            ids.push(i);
                            ids.len() - 1
                        });
                        (k, v)
                    })
                    .collect()
            })
            .collect();
        let mut words = vec![[0f32; CLASSES]; ids.len()];
        // AdaGrad: a step per example, scaled by the gradients seen at each weight.
        let mut seen_map = [[0f32; CLASSES]; CLASSES];
        let mut seen_bias = [0f32; CLASSES];
        let mut seen_words = vec![[0f32; CLASSES]; ids.len()];
        let rate = 0.1;
        let n = examples.len().max(1) as f32;
        // The penalties are per training, spread over its examples.
        let (pm, pw) = (penalties.map / n, penalties.words / n);
        // Each sentiment weighs alike, whatever its share: weights averaging 1.
        let mut per_class = [0usize; CLASSES];
        for e in examples {
            per_class[e.label] += 1;
        }
        let present = per_class.iter().filter(|&&c| c > 0).count().max(1) as f32;
        let weight = per_class.map(|c| n / (present * c.max(1) as f32));
        for _ in 0..EPOCHS {
            for (e, row) in examples.iter().zip(&rows) {
                let weight = weight[e.label];
                let l = log_probs(&e.probs);
                let p = softmax(logits(
                    &map,
                    &bias,
                    &l,
                    row.iter().map(|&(k, v)| (&words[k], v)),
                ));
                for c in 0..CLASSES {
                    let g = weight * (p[c] - f32::from(u8::from(c == e.label)));
                    for j in 0..CLASSES {
                        let identity = f32::from(u8::from(c == j));
                        let gj = g * l[j] + pm * (map[c][j] - identity);
                        seen_map[c][j] += gj * gj;
                        map[c][j] -= rate * gj / (seen_map[c][j].sqrt() + 1e-6);
                    }
                    let gb = g + pm * bias[c];
                    seen_bias[c] += gb * gb;
                    bias[c] -= rate * gb / (seen_bias[c].sqrt() + 1e-6);
                    for &(k, v) in row {
                        let gi = g * v + pw * words[k][c];
                        seen_words[k][c] += gi * gi;
                        words[k][c] -= rate * gi / (seen_words[k][c].sqrt() + 1e-6);
                    }
                }
            }
        }
        let mut words: Vec<(u32, [f32; CLASSES])> = ids
            .into_iter()
            .zip(words)
            .filter(|(_, w)| w.iter().any(|x| *x != 0.0))
            .collect();
        words.sort_unstable_by_key(|(i, _)| *i);
        let mut domain: rustc_hash::FxHashMap<u32, u32> = Default::default();
        for e in examples {
            for &b in &e.words {
                *domain.entry(b).or_default() += 1;
            }
        }
        let mut domain: Vec<(u32, u32)> = domain.into_iter().collect();
        domain.sort_unstable();
        Adapter {
            model: model.to_string(),
            labels: examples.len(),
            penalties,
            map,
            bias,
            words,
            domain_docs: examples.len() as u32,
            domain,
        }
    }

    /// The adapted probabilities of a post the shipped model gave `probs`.
    pub fn probabilities(&self, probs: &[f32; CLASSES], f: &Features) -> [f32; CLASSES] {
        let corrections = f.iter().filter_map(|(i, v)| {
            self.words
                .binary_search_by_key(&i, |(j, _)| *j)
                .ok()
                .map(|k| (&self.words[k].1, v))
        });
        softmax(logits(
            &self.map,
            &self.bias,
            &log_probs(probs),
            corrections,
        ))
    }

    /// Whether a post of word buckets `words` reads like the labelled posts: the log-likelihood
    /// ratio of its words, the labelled posts' shares (smoothed towards general tweets') against
    /// general tweets', is above [`GATE`].
    pub fn in_domain(&self, words: &[u32]) -> bool {
        let general = Reference::general();
        let docs = self.domain_docs as f32 + PRIOR_DOCS;
        let ratio: f32 = words
            .iter()
            .map(|&b| {
                let pg = general.share(b);
                let df = self
                    .domain
                    .binary_search_by_key(&b, |(k, _)| *k)
                    .map_or(0, |i| self.domain[i].1);
                ((df as f32 + PRIOR_DOCS * pg) / docs / pg).ln()
            })
            .sum();
        ratio > GATE
    }

    /// The label of a post: adapted where it reads like the labelled posts, the shipped one
    /// elsewhere.
    fn predict(&self, e: &Example) -> usize {
        if self.in_domain(&e.words) {
            argmax(&self.probabilities(&e.probs, &e.features))
        } else {
            e.shipped
        }
    }

    fn is_sound(&self) -> bool {
        self.map.iter().flatten().all(|x| x.is_finite())
            && self.bias.iter().all(|x| x.is_finite())
            && self
                .words
                .iter()
                .all(|(_, w)| w.iter().all(|x| x.is_finite()))
            && self.words.windows(2).all(|p| p[0].0 < p[1].0)
            && self.domain.windows(2).all(|p| p[0].0 < p[1].0)
            && self.domain.iter().all(|(b, _)| (*b as usize) < BUCKETS)
    }
}

/// Mean recall over the classes that occur in `pairs` (predicted, true).
pub fn macro_recall(pairs: impl IntoIterator<Item = (usize, usize)>) -> f32 {
    let (mut right, mut total) = ([0usize; CLASSES], [0usize; CLASSES]);
    for (predicted, truth) in pairs {
        total[truth] += 1;
        right[truth] += usize::from(predicted == truth);
    }
    let present: Vec<usize> = (0..CLASSES).filter(|&c| total[c] > 0).collect();
    if present.is_empty() {
        return 0.0;
    }
    present
        .iter()
        .map(|&c| right[c] as f32 / total[c] as f32)
        .sum::<f32>()
        / present.len() as f32
}

/// Out-of-fold predictions of `examples`, in order: each fold by an adapter trained on the
/// others with the penalties `choose` gives for them.
fn out_of_fold(
    model: &str,
    examples: &[&Example],
    choose: impl Fn(&[&Example]) -> Penalties,
) -> Vec<usize> {
    // A fold with no others to learn from keeps the shipped labels.
    let mut out: Vec<usize> = examples.iter().map(|e| e.shipped).collect();
    for fold in 0..FOLDS {
        let train: Vec<&Example> = examples
            .iter()
            .filter(|e| e.key % FOLDS != fold)
            .copied()
            .collect();
        if train.is_empty() {
            continue;
        }
        let adapter = Adapter::train(model, &train, choose(&train));
        for (i, e) in examples.iter().enumerate() {
            if e.key % FOLDS == fold {
                out[i] = adapter.predict(e);
            }
        }
    }
    out
}

/// The penalties whose out-of-fold macro-recall on `examples` is best (the strongest on ties).
fn choose_penalties(model: &str, examples: &[&Example]) -> Penalties {
    let mut best = (CANDIDATES[0], f32::MIN);
    for p in CANDIDATES {
        let predicted = out_of_fold(model, examples, |_| p);
        let score = macro_recall(predicted.into_iter().zip(examples.iter().map(|e| e.label)));
        if score > best.1 {
            best = (p, score);
        }
    }
    best.0
}

/// How a model's adaptation compares with the model as shipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub model: String,
    pub labels: usize,
    /// Out-of-fold macro-recall of the adaptation: each fold predicted by an adapter whose
    /// penalties were chosen and which was trained on the other folds only.
    pub macro_recall: f32,
    /// The shipped model's on the same labels.
    pub shipped: f32,
    /// Trained on every label, when it beat the shipped model.
    pub adapter: Option<Adapter>,
    /// Why there is no adapter, or how it beat the shipped model.
    pub reason: String,
}

/// Assesses and trains an adapter for every model among `examples`.
pub fn assess(examples: &[Example]) -> Vec<Assessment> {
    let mut models: Vec<&str> = examples.iter().map(|e| e.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    models
        .into_iter()
        .map(|model| {
            let mine: Vec<&Example> = examples.iter().filter(|e| e.model == model).collect();
            assess_model(model, &mine)
        })
        .collect()
}

fn assess_model(model: &str, examples: &[&Example]) -> Assessment {
    let truth: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let shipped = macro_recall(examples.iter().map(|e| (e.shipped, e.label)));
    let classes = {
        let mut c: Vec<usize> = truth.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    let not_trained = |reason: String| Assessment {
        model: model.to_string(),
        labels: examples.len(),
        macro_recall: shipped,
        shipped,
        adapter: None,
        reason,
    };
    if examples.len() < MIN_LABELS {
        return not_trained(format!(
            "{} labels: an adaptation needs at least {MIN_LABELS}",
            examples.len()
        ));
    }
    if classes < 2 {
        return not_trained("labels of one sentiment only".to_string());
    }
    // Nested: each outer fold chooses its penalties on its own training folds.
    let predicted = out_of_fold(model, examples, |train| choose_penalties(model, train));
    let calibrated = macro_recall(predicted.into_iter().zip(truth));
    if calibrated <= shipped {
        return Assessment {
            macro_recall: calibrated,
            reason: format!(
                "not better than the shipped model: {calibrated:.3} macro-recall out of fold, \
                 shipped {shipped:.3}"
            ),
            ..not_trained(String::new())
        };
    }
    let adapter = Adapter::train(model, examples, choose_penalties(model, examples));
    Assessment {
        model: model.to_string(),
        labels: examples.len(),
        macro_recall: calibrated,
        shipped,
        reason: format!(
            "better than the shipped model: {calibrated:.3} macro-recall out of fold, shipped \
             {shipped:.3}"
        ),
        adapter: adapter.is_sound().then_some(adapter),
    }
}

/// A calibration in use: its version and an adapter per shipped model it adapts.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub id: i64,
    adapters: Vec<Adapter>,
}

impl Calibration {
    pub fn new(id: i64, adapters: Vec<Adapter>) -> Calibration {
        Calibration { id, adapters }
    }

    /// The adapters as stored.
    pub fn to_stored(adapters: &[Adapter]) -> Vec<u8> {
        serde_json::to_vec(adapters).unwrap_or_default()
    }

    /// Adapters stored by [`Calibration::to_stored`]; `None` when the bytes are not such.
    pub fn from_stored(id: i64, bytes: &[u8]) -> Option<Calibration> {
        let adapters: Vec<Adapter> = serde_json::from_slice(bytes).ok()?;
        adapters
            .iter()
            .all(Adapter::is_sound)
            .then_some(Calibration { id, adapters })
    }

    /// The models it adapts.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.adapters.iter().map(|a| a.model.as_str())
    }

    /// Adapts each analysis a shipped model it has an adapter for made, from the model's own
    /// probabilities; `posts` are the analysed (text, language) in order. Returns how many it
    /// adapted.
    pub fn apply(&self, analyses: &mut [Analysis], posts: &[(&str, Option<&str>)]) -> usize {
        let mut adapted = 0;
        for (a, (text, _)) in analyses.iter_mut().zip(posts) {
            let Some(shipped) = a.shipped_sentiment else {
                continue;
            };
            let Some(adapter) = self.adapters.iter().find(|x| x.model == a.model) else {
                continue;
            };
            if !adapter.in_domain(&words(text)) {
                continue;
            }
            let p = adapter.probabilities(&shipped.probs, &features(text));
            a.sentiment_label = SentimentLabel::ALL[argmax(&p)];
            a.sentiment_score = SentimentScore::new(p[2] - p[0]);
            a.model = format!("{}{SUFFIX}{}", a.model, self.id);
            adapted += 1;
        }
        adapted
    }
}

/// The calibration a process uses, swapped whole when another is put in use.
#[derive(Debug, Default)]
pub struct LiveCalibration {
    current: RwLock<(i64, Option<Arc<Calibration>>)>,
}

impl LiveCalibration {
    pub fn new() -> Arc<LiveCalibration> {
        Arc::new(LiveCalibration::default())
    }

    /// The calibration in use, if any.
    pub fn get(&self) -> Option<Arc<Calibration>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// The revision of the state it was loaded from.
    pub fn revision(&self) -> i64 {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }

    pub fn replace(&self, revision: i64, calibration: Option<Calibration>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (revision, calibration.map(Arc::new));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::relevance::key_of;

    /// Posts of a domain where the shipped model calls "delayed" and "cancelled" neutral and
    /// reviewers call them negative.
    fn domain(n: usize) -> Vec<Example> {
        (0..n)
            .map(|i| {
                let (text, probs, label) = match i % 4 {
                    0 => (
                        format!("flight {i} delayed again at the gate"),
                        [0.2, 0.7, 0.1],
                        0,
                    ),
                    1 => (
                        format!("flight {i} cancelled, rebooked tomorrow"),
                        [0.25, 0.65, 0.1],
                        0,
                    ),
                    2 => (
                        format!("thanks for the upgrade on flight {i}"),
                        [0.05, 0.15, 0.8],
                        2,
                    ),
                    _ => (
                        format!("flight {i} boards at gate five"),
                        [0.1, 0.8, 0.1],
                        1,
                    ),
                };
                Example {
                    model: "m".into(),
                    features: features(&text),
                    words: words(&text),
                    probs,
                    shipped: argmax(&probs),
                    label,
                    key: key_of(&i.to_string()),
                }
            })
            .collect()
    }

    #[test]
    fn it_learns_what_the_domain_means_and_beats_the_shipped_model_out_of_fold() {
        let a = assess(&domain(120));
        assert_eq!(a.len(), 1);
        let a = &a[0];
        assert!(a.macro_recall > a.shipped, "{a:?}");
        let adapter = a.adapter.as_ref().expect("adopted");
        let p = adapter.probabilities(
            &[0.2, 0.7, 0.1],
            &features("my flight was delayed for hours"),
        );
        assert_eq!(argmax(&p), 0, "{p:?}");
        // Only posts that read like the labelled ones are adapted: one about something else
        // keeps the shipped model's reading.
        assert!(adapter.in_domain(&words("my flight was delayed for hours")));
        assert!(!adapter.in_domain(&words("the weather is mild and the garden is in bloom")));
        let c = Calibration::new(1, vec![adapter.clone()]);
        let mut analyses: Vec<Analysis> = ["flight 7 delayed again", "the garden is in bloom"]
            .iter()
            .map(|_| Analysis {
                model: "m".into(),
                shipped_sentiment: Some(crate::models::ShippedSentiment {
                    label: SentimentLabel::Neutral,
                    probs: [0.2, 0.7, 0.1],
                }),
                ..crate::analysis::lexicon::LexiconAnalyzer::new().analyze("ok")
            })
            .collect();
        let posts = [
            ("flight 7 delayed again", None),
            ("the garden is in bloom", None),
        ];
        assert_eq!(c.apply(&mut analyses, &posts), 1);
        assert_eq!(analyses[0].sentiment_label, SentimentLabel::Negative);
        assert_eq!(analyses[0].model, "m+calibration-1");
        assert_eq!(analyses[1].model, "m");
    }

    #[test]
    fn the_shipped_reference_knows_common_words_from_rare_ones() {
        let r = Reference::general();
        let common = words("the")[0];
        let rare = words("zorkedly")[0];
        assert!(r.share(common) > 0.1, "{}", r.share(common));
        assert!(r.share(rare) < 0.001, "{}", r.share(rare));
        let built = Reference::build(["the cat", "the dog"]);
        let back = Reference::from_bytes(&built).unwrap();
        assert!((back.share(common) - 2.5 / 3.0).abs() < 0.05);
        assert!(Reference::from_bytes(&built[..100]).is_none());
    }

    #[test]
    fn too_few_or_one_sided_labels_train_nothing() {
        assert!(assess(&domain(20))[0].adapter.is_none());
        let one_sided: Vec<Example> = domain(90).into_iter().filter(|e| e.label == 0).collect();
        let a = &assess(&one_sided)[0];
        assert!(a.adapter.is_none());
        assert!(a.reason.contains("one sentiment"), "{}", a.reason);
    }

    #[test]
    fn labels_that_agree_with_the_shipped_model_are_no_reason_to_change_it() {
        let agreeing: Vec<Example> = domain(90)
            .into_iter()
            .map(|mut e| {
                e.label = e.shipped;
                e
            })
            .collect();
        let a = &assess(&agreeing)[0];
        assert!(a.adapter.is_none(), "{a:?}");
        assert!(a.reason.contains("not better"), "{}", a.reason);
    }

    #[test]
    fn a_stored_calibration_reads_back_and_names_its_version() {
        let adapter = assess(&domain(90)).remove(0).adapter.unwrap();
        let bytes = Calibration::to_stored(std::slice::from_ref(&adapter));
        let c = Calibration::from_stored(7, &bytes).expect("reads back");
        assert_eq!(c.models().collect::<Vec<_>>(), ["m"]);
        assert!(Calibration::from_stored(7, b"[{\"model\":1}]").is_none());
        assert_eq!(shipped_model("m+calibration-7"), "m");
        assert_eq!(shipped_model("m"), "m");
    }

    /// Training read every labelled post whole, hundreds of times over: 2,000 posts of 20 KB
    /// outlasted the training's lease. A post's words past the opening relevance reads are not
    /// read, in training or in use.
    #[test]
    fn a_long_post_is_read_to_the_opening_relevance_reads() {
        use crate::models::text::prefix_bytes;
        use crate::topics::relevance::{opening, TEXT_BYTES};
        let long: String = (0..4_000).map(|i| format!("w{i} ")).collect();
        assert!(long.len() > 20_000);
        let head = prefix_bytes(&long, TEXT_BYTES);
        assert_eq!(opening(&long), head);
        assert_eq!(features(&long), features(head));
        assert_eq!(words(&long), words(head));
        let tail = &long[TEXT_BYTES..];
        assert_ne!(features(&long), features(tail));
        let analysis = Analysis {
            model: "m".into(),
            shipped_sentiment: Some(crate::models::ShippedSentiment {
                label: SentimentLabel::Neutral,
                probs: [0.2, 0.7, 0.1],
            }),
            ..crate::analysis::lexicon::LexiconAnalyzer::new().analyze("ok")
        };
        let example = Example::read("p", &long, &analysis, SentimentLabel::Negative)
            .expect("a model's analysis");
        assert_eq!(example.features, features(head));
        assert_eq!(example.words, words(head));
    }
}
