//! The transformer backend: one or more model bundles run in process with ONNX Runtime, one
//! session per worker thread. A batch is tokenised (each text first cut to the bytes its token
//! limit can use, [`MAX_BYTES_PER_TOKEN`]), sorted by length and cut into sub-batches
//! of at most `batch_size` texts, each padded only to its own longest text, so short posts do
//! not pay for long ones. Every head's logits become Pulse fields as the bundle's manifest
//! says; a field no bundle provides comes from the lexicon, and churn risk always combines the
//! model's negativity and anger with the lexicon's churn-intent cues.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef, ValueType};
use regex::Regex;

use super::bundle::{Activation, Bundle, Field, Head, Preprocess, MODEL_FILE, TOKENIZER_FILE};
use super::lexicon::{churn_risk, LexiconAnalyzer};
use super::{runtime, Analyzer, DecisionThresholds};
use crate::config::AnalyzerSettings;
use crate::models::text::{prefix_bytes, truncate_bytes};
use crate::models::{
    Analysis, Emotion, EmotionScores, LanguageSource, LanguageSupport, Probability, SentimentLabel,
    SentimentScore, ShippedSentiment,
};

/// Inference options shared by every worker.
#[derive(Debug, Clone)]
pub struct InferenceOptions {
    /// Bundle directories; the first bundle providing a field wins.
    pub bundles: Vec<PathBuf>,
    /// The ONNX Runtime library; `None` reads `ORT_DYLIB_PATH`.
    pub onnxruntime: Option<PathBuf>,
    /// Threads one session uses for one operator.
    pub intra_threads: usize,
    /// Most texts per `session.run`.
    pub batch_size: usize,
    /// Token limit overriding the bundles' own `max_length` when smaller; 0 keeps theirs.
    pub max_length: usize,
    /// Keep ONNX Runtime's CPU arena, which holds on to its high-water mark for good.
    pub memory_arena: bool,
}

impl InferenceOptions {
    /// What the transformer backend needs to load its sessions under `settings`.
    pub fn from_settings(settings: &AnalyzerSettings) -> InferenceOptions {
        InferenceOptions {
            bundles: settings
                .bundles
                .iter()
                .map(|b| resolve_bundle_dir(b))
                .collect(),
            onnxruntime: settings.onnxruntime.clone(),
            intra_threads: settings.intra_threads,
            batch_size: settings.batch_size,
            max_length: settings.max_length,
            memory_arena: settings.memory_arena,
        }
    }
}

/// One loaded bundle: its session, tokenizer and heads.
struct LoadedBundle {
    bundle: Bundle,
    session: Session,
    tokenizer: std::sync::Arc<super::shared_tokenizers::TextTokenizer>,
    pad_id: i64,
    max_length: usize,
    /// Per head: (output index in the session, head).
    heads: Vec<Head>,
}

/// Raw per-text head outputs of one bundle, as probabilities, before mapping.
type HeadProbs = Vec<Vec<f32>>;

/// The transformer analyzer of one worker thread.
pub struct TransformerAnalyzer {
    name: String,
    bundles: Vec<LoadedBundle>,
    lexicon: LexiconAnalyzer,
    batch_size: usize,
    thresholds: DecisionThresholds,
}

/// One padded sub-batch, ready for `session.run`.
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    /// Which input text each row is.
    pub texts: Vec<usize>,
    /// Tokens per row after padding.
    pub width: usize,
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
}

impl TransformerAnalyzer {
    /// Loads every bundle, checking its graph against its manifest with one trial run.
    pub fn load(options: &InferenceOptions) -> anyhow::Result<Self> {
        ensure!(
            !options.bundles.is_empty(),
            "analyzer.backend is \"onnx\" but analyzer.bundles is empty"
        );
        let env = runtime::environment(options.onnxruntime.as_deref())?;
        let mut bundles = Vec::new();
        for dir in &options.bundles {
            let bundle = Bundle::open(dir)?;
            let loaded = load_bundle(env, bundle, options)
                .with_context(|| format!("model bundle `{}` refused", dir.display()))?;
            bundles.push(loaded);
        }
        let name = bundles
            .iter()
            .map(|b| b.bundle.model_name())
            .collect::<Vec<_>>()
            .join("+");
        let mut thresholds = DecisionThresholds::default();
        for head in bundles.iter().flat_map(|b| &b.heads).rev() {
            match head.field {
                Field::Toxicity => thresholds.offensive = head.threshold.unwrap_or(0.5),
                Field::Hate => thresholds.hate = head.threshold.unwrap_or(0.5),
                _ => {}
            }
        }
        let mut analyzer = TransformerAnalyzer {
            name,
            bundles,
            lexicon: LexiconAnalyzer::new(),
            batch_size: options.batch_size.max(1),
            thresholds,
        };
        analyzer.trial_run()?;
        Ok(analyzer)
    }

    /// Runs two texts of different lengths through every bundle and checks output shapes.
    fn trial_run(&mut self) -> anyhow::Result<()> {
        let texts = [
            "ok",
            "this is a slightly longer text to check padding works",
        ];
        for b in 0..self.bundles.len() {
            let probs = self.run_bundle(b, &texts).with_context(|| {
                format!(
                    "model bundle `{}` failed its trial run",
                    self.bundles[b].bundle.dir.display()
                )
            })?;
            ensure!(
                probs.len() == texts.len(),
                "trial run returned {} rows",
                probs.len()
            );
        }
        Ok(())
    }

    /// Tokenises `texts` for bundle `b` and cuts them into padded sub-batches, shortest texts
    /// first, exactly as inference does.
    pub fn prepare(&mut self, b: usize, texts: &[&str]) -> anyhow::Result<Vec<PreparedBatch>> {
        let bundle = &self.bundles[b];
        let mut encoded: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        let prefix = bundle.bundle.manifest.text_prefix.as_deref();
        for text in texts {
            let text = tokenizer_input(
                bundle.bundle.manifest.preprocess,
                prefix,
                text,
                bundle.max_length,
            );
            let enc = bundle
                .tokenizer
                .encode_fast(text.as_ref(), true)
                .map_err(|e| anyhow::anyhow!("tokenizing failed: {e}"))?;
            let mut ids = enc.get_ids().to_vec();
            ids.truncate(bundle.max_length);
            if ids.is_empty() {
                ids.push(bundle.pad_id as u32);
            }
            encoded.push(ids);
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut batches = Vec::with_capacity(order.len().div_ceil(self.batch_size));
        for chunk in order.chunks(self.batch_size) {
            let width = chunk.iter().map(|&i| encoded[i].len()).max().unwrap_or(1);
            let mut ids = Vec::with_capacity(chunk.len() * width);
            let mut mask = Vec::with_capacity(chunk.len() * width);
            for &i in chunk {
                let row = &encoded[i];
                ids.extend(row.iter().map(|&t| t as i64));
                ids.extend(std::iter::repeat_n(bundle.pad_id, width - row.len()));
                mask.extend(std::iter::repeat_n(1i64, row.len()));
                mask.extend(std::iter::repeat_n(0i64, width - row.len()));
            }
            batches.push(PreparedBatch {
                texts: chunk.to_vec(),
                width,
                ids,
                mask,
            });
        }
        Ok(batches)
    }

    /// Runs one prepared batch through bundle `b`: per row, per head, the probabilities.
    pub fn run_prepared(
        &mut self,
        b: usize,
        batch: &PreparedBatch,
    ) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
        let bundle = &mut self.bundles[b];
        let rows = batch.texts.len();
        let shape = [rows as i64, batch.width as i64];
        let spec = &bundle.bundle.manifest.inputs;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(3);
        inputs.push((
            Cow::Borrowed(spec.input_ids.as_str()),
            TensorRef::from_array_view((shape, batch.ids.as_slice()))?.into(),
        ));
        if let Some(name) = &spec.attention_mask {
            inputs.push((
                Cow::Borrowed(name.as_str()),
                TensorRef::from_array_view((shape, batch.mask.as_slice()))?.into(),
            ));
        }
        let zeros;
        if let Some(name) = &spec.token_type_ids {
            zeros = vec![0i64; batch.ids.len()];
            inputs.push((
                Cow::Borrowed(name.as_str()),
                TensorRef::from_array_view((shape, zeros.as_slice()))?.into(),
            ));
        }
        let outputs = bundle.session.run(inputs)?;
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::with_capacity(bundle.heads.len()); rows];
        for head in &bundle.heads {
            let value = outputs
                .get(head.output.as_str())
                .with_context(|| format!("output `{}` missing from the run", head.output))?;
            let (shape, logits) = value
                .try_extract_tensor::<f32>()
                .with_context(|| format!("output `{}` is not a float tensor", head.output))?;
            let n = head.labels.len();
            ensure!(
                shape.len() == 2 && shape[0] as usize == rows && shape[1] as usize == n,
                "output `{}` has shape {:?}, expected [{rows}, {n}]: the graph has {} classes but pulse-model.json lists {n} labels",
                head.output,
                &shape[..],
                shape.get(1).copied().unwrap_or(0)
            );
            for (row, probs) in out.iter_mut().enumerate() {
                probs.push(activate(head, &logits[row * n..(row + 1) * n]));
            }
        }
        Ok(out)
    }

    /// Probabilities of every head of bundle `b` for each text: `[text][head] -> probs`.
    fn run_bundle(&mut self, b: usize, texts: &[&str]) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); texts.len()];
        for batch in self.prepare(b, texts)? {
            let rows = self.run_prepared(b, &batch)?;
            for (&i, probs) in batch.texts.iter().zip(rows) {
                out[i] = probs;
            }
        }
        Ok(out)
    }

    fn analyze_all(&mut self, texts: &[&str]) -> anyhow::Result<Vec<Analysis>> {
        // Per bundle: [text][head] -> probabilities.
        let mut per_bundle: Vec<Vec<HeadProbs>> = Vec::with_capacity(self.bundles.len());
        for b in 0..self.bundles.len() {
            per_bundle.push(self.run_bundle(b, texts)?);
        }
        let provided = |field: Field| {
            self.bundles.iter().enumerate().find_map(|(b, lb)| {
                lb.heads
                    .iter()
                    .position(|h| h.field == field)
                    .map(|h| (b, h))
            })
        };
        let sentiment = provided(Field::Sentiment);
        let emotion = provided(Field::Emotion);
        let toxicity = provided(Field::Toxicity);
        let hate = provided(Field::Hate);
        // A multilingual bundle's missing fields stay empty: the lexicon reads English only.
        let english_lexicon = !self.is_multilingual();
        let mut results = Vec::with_capacity(texts.len());
        for (t, text) in texts.iter().enumerate() {
            let cues = self.lexicon.cues(text);
            let lexical = if english_lexicon
                && (sentiment.is_none() || emotion.is_none() || toxicity.is_none())
            {
                Some(self.lexicon.analyze(text))
            } else {
                None
            };
            let head = |(b, h): (usize, usize)| (&self.bundles[b].heads[h], &per_bundle[b][t][h]);

            let (label, score, negativity, shipped) = match sentiment {
                Some(at) => {
                    let (head, probs) = head(at);
                    let (label, by_label) = sentiment_of(head, probs);
                    let [negative, _, positive] = by_label;
                    (
                        label,
                        positive - negative,
                        negative,
                        Some(ShippedSentiment {
                            label,
                            probs: by_label,
                        }),
                    )
                }
                None => {
                    let Some(a) = lexical.as_ref() else {
                        bail!("a multilingual bundle must have a sentiment head");
                    };
                    let s = a.sentiment_score.get();
                    (a.sentiment_label, s, (-s).max(0.0), None)
                }
            };
            let emotions = match emotion {
                Some(at) => {
                    let (head, probs) = head(at);
                    emotions_of(head, probs)
                }
                None => lexical.as_ref().map(|a| a.emotions).unwrap_or_default(),
            };
            let toxicity_p = match toxicity {
                Some(at) => {
                    let (head, probs) = head(at);
                    positive_probability(head, probs)
                }
                None => lexical.as_ref().map_or(0.0, |a| a.toxicity.get()),
            };
            let hate_p = match hate {
                Some(at) => {
                    let (head, probs) = head(at);
                    positive_probability(head, probs)
                }
                None if english_lexicon => cues.toxicity,
                None => 0.0,
            };
            results.push(Analysis {
                sentiment_label: label,
                sentiment_score: SentimentScore::new(score),
                emotions,
                toxicity: Probability::new(toxicity_p),
                hate: Probability::new(hate_p),
                churn_risk: Probability::new(churn_risk(
                    cues.intent,
                    negativity,
                    emotions.anger.get(),
                )),
                model: self.name.clone(),
                lang: None,
                lang_source: LanguageSource::Unknown,
                language_support: LanguageSupport::Supported,
                shipped_sentiment: shipped,
            });
        }
        Ok(results)
    }
}

impl TransformerAnalyzer {
    /// Whether a bundle names languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.bundles.iter().any(|b| {
            b.bundle
                .manifest
                .languages
                .iter()
                .any(|l| l.as_str() != "en")
        })
    }
}

impl Analyzer for TransformerAnalyzer {
    fn model(&self) -> &str {
        &self.name
    }

    fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis> {
        match self.analyze_all(texts) {
            Ok(results) => results,
            // A runtime failure must not lose the batch's posts: panic so the worker is rebuilt
            // and the ingester retries, then isolates the entry that keeps failing.
            Err(e) => panic!("transformer inference failed: {e:#}"),
        }
    }

    fn decision_thresholds(&self) -> DecisionThresholds {
        self.thresholds
    }

    /// Languages the loaded bundles were trained or measured on (English when none says).
    fn languages(&self) -> Vec<String> {
        let mut langs: Vec<String> = self
            .bundles
            .iter()
            .flat_map(|b| {
                let manifest = &b.bundle.manifest;
                manifest
                    .languages
                    .iter()
                    .chain(&manifest.measured_languages)
            })
            .cloned()
            .collect();
        if langs.is_empty() {
            langs.push("en".to_string());
        }
        langs.sort();
        langs.dedup();
        langs
    }
}

fn load_bundle(
    env: &ort::environment::Environment,
    bundle: Bundle,
    options: &InferenceOptions,
) -> anyhow::Result<LoadedBundle> {
    let manifest = &bundle.manifest;
    let max_length = match options.max_length {
        0 => manifest.max_length,
        limit => limit.clamp(2, manifest.max_length),
    };
    let tokenizer = super::shared_tokenizers::load(&bundle.dir.join(TOKENIZER_FILE), max_length)?;

    let shared = bundle
        .manifest
        .shared_initializers
        .iter()
        .map(|init| super::shared_initializers::load(&bundle.dir, init))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_intra_threads(options.intra_threads.max(1))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_inter_threads(1)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_execution_providers([ort::ep::CPU::default()
            .with_arena_allocator(options.memory_arena)
            .build()])
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_prepacked_weights(&prepacked_weights_of(&bundle.dir))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, value) in shared {
        builder = builder
            .with_initializer(name, value)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let session = builder
        .commit_from_file(bundle.dir.join(MODEL_FILE))
        .with_context(|| format!("ONNX Runtime cannot load {MODEL_FILE}"))?;

    check_inputs(&session, manifest)?;
    for head in &manifest.heads {
        check_output(&session, head)?;
    }
    let heads = manifest.heads.clone();
    Ok(LoadedBundle {
        bundle,
        session,
        pad_id: tokenizer.pad_id(),
        tokenizer,
        max_length,
        heads,
    })
}

/// One container per bundle for the whole process, so the workers' sessions of one model share
/// the weights ONNX Runtime repacks for its matrix kernels instead of each keeping a copy.
fn prepacked_weights_of(dir: &Path) -> ort::session::builder::PrepackedWeights {
    static CONTAINERS: std::sync::Mutex<Vec<(PathBuf, ort::session::builder::PrepackedWeights)>> =
        std::sync::Mutex::new(Vec::new());
    let mut containers = CONTAINERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, weights)) = containers.iter().find(|(d, _)| d == dir) {
        return weights.clone();
    }
    let weights = ort::session::builder::PrepackedWeights::new();
    containers.push((dir.to_path_buf(), weights.clone()));
    weights
}

/// Every graph input is one the manifest names, and every named input exists.
fn check_inputs(session: &Session, manifest: &super::bundle::Manifest) -> anyhow::Result<()> {
    let named: Vec<&str> = [
        Some(manifest.inputs.input_ids.as_str()),
        manifest.inputs.attention_mask.as_deref(),
        manifest.inputs.token_type_ids.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let graph: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    for name in &named {
        ensure!(
            graph.contains(name),
            "pulse-model.json names input `{name}`, but the graph's inputs are {graph:?}"
        );
    }
    for input in session.inputs() {
        ensure!(
            named.contains(&input.name()),
            "the graph needs input `{}`, which pulse-model.json does not name (inputs: input_ids, attention_mask, token_type_ids)",
            input.name()
        );
        match input.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                ensure!(
                    matches!(ty, TensorElementType::Int64),
                    "graph input `{}` is {ty:?}; token inputs must be int64",
                    input.name()
                );
                ensure!(
                    shape.len() == 2,
                    "graph input `{}` has {} dimensions; expected [batch, sequence]",
                    input.name(),
                    shape.len()
                );
            }
            other => bail!("graph input `{}` is {other:?}, not a tensor", input.name()),
        }
    }
    Ok(())
}

/// The head's output exists, is a float matrix and, where the graph fixes it, has one column
/// per label.
fn check_output(session: &Session, head: &Head) -> anyhow::Result<()> {
    let Some(output) = session.outputs().iter().find(|o| o.name() == head.output) else {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        bail!(
            "pulse-model.json names output `{}`, but the graph's outputs are {names:?}",
            head.output
        );
    };
    match output.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            ensure!(
                matches!(ty, TensorElementType::Float32),
                "output `{}` is {ty:?}; heads must be float32 logits",
                head.output
            );
            ensure!(
                shape.len() == 2,
                "output `{}` has {} dimensions; expected [batch, labels]",
                head.output,
                shape.len()
            );
            let columns = shape[1];
            ensure!(
                columns < 0 || columns as usize == head.labels.len(),
                "output `{}` has {columns} classes but pulse-model.json lists {} labels {:?}",
                head.output,
                head.labels.len(),
                head.labels
            );
        }
        other => bail!("output `{}` is {other:?}, not a tensor", head.output),
    }
    Ok(())
}

/// Probabilities from logits: softmax or per-label sigmoid. Non-finite logits count as 0.
fn activate(head: &Head, logits: &[f32]) -> Vec<f32> {
    let clean = |x: f32| if x.is_finite() { x } else { 0.0 };
    match head.activation {
        Activation::Softmax => {
            let max = logits.iter().copied().map(clean).fold(f32::MIN, f32::max);
            let exps: Vec<f32> = logits.iter().map(|&x| (clean(x) - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            exps.iter().map(|e| e / sum).collect()
        }
        Activation::Sigmoid => logits
            .iter()
            .map(|&x| 1.0 / (1.0 + (-clean(x)).exp()))
            .collect(),
    }
}

/// Label (argmax of biased log-probabilities) and the probability of each Pulse label, in
/// [`SentimentLabel::ALL`] order.
fn sentiment_of(head: &Head, probs: &[f32]) -> (SentimentLabel, [f32; 3]) {
    let mut best = (SentimentLabel::Neutral, f32::MIN);
    let mut by_label = [0f32; 3];
    for (i, &p) in probs.iter().enumerate() {
        let Some(label) = head.pulse_label(i).and_then(SentimentLabel::parse) else {
            continue;
        };
        let slot = SentimentLabel::ALL
            .iter()
            .position(|l| *l == label)
            .unwrap_or(1);
        by_label[slot] += p;
        let bias = head.logit_bias.as_ref().map_or(0.0, |b| b[i]);
        let value = p.max(f32::MIN_POSITIVE).ln() + bias;
        if value > best.1 {
            best = (label, value);
        }
    }
    (best.0, by_label)
}

/// The distribution over Pulse's four emotions (other model labels dropped, renormalised).
fn emotions_of(head: &Head, probs: &[f32]) -> EmotionScores {
    let mut sums = [0f32; 4];
    for (i, &p) in probs.iter().enumerate() {
        if let Some(slot) = head
            .pulse_label(i)
            .and_then(|l| Emotion::ALL.iter().position(|e| e.as_str() == l))
        {
            sums[slot] += p;
        }
    }
    let total: f32 = sums.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return EmotionScores::default();
    }
    let share = |slot: usize| Probability::new(sums[slot] / total);
    EmotionScores {
        anger: share(0),
        joy: share(1),
        optimism: share(2),
        sadness: share(3),
    }
}

/// Probability of the head's positive labels: their sum (softmax) or their maximum (sigmoid).
fn positive_probability(head: &Head, probs: &[f32]) -> f32 {
    let positive = head
        .labels
        .iter()
        .zip(probs)
        .filter(|(l, _)| head.positive.contains(l))
        .map(|(_, &p)| p);
    match head.activation {
        Activation::Softmax => positive.sum(),
        Activation::Sigmoid => positive.fold(0.0, f32::max),
    }
}

/// Bytes of text kept per token of a bundle's limit. The tokenizer reads all it is given before
/// it truncates, and a word it can only split letter by letter costs it the square of its
/// length (a 20,000-byte post of 100-letter words was a million vocabulary lookups for the 128
/// tokens kept), so the text is cut first. Ordinary text takes 4 to 13 bytes a token (English
/// about 5, Thai, written without spaces, the most); only text whose tokens are longer than
/// this can lose tokens it would have kept: words of over 100 letters, marks stacked on a
/// letter, long runs of characters the vocabulary does not have.
pub const MAX_BYTES_PER_TOKEN: usize = 32;

/// What the tokenizer of a bundle is given for `text`: its normalisation, cut at a character
/// boundary to the bytes `max_length` tokens can take, after the bundle's prefix.
pub fn tokenizer_input<'a>(
    rule: Preprocess,
    prefix: Option<&str>,
    text: &'a str,
    max_length: usize,
) -> Cow<'a, str> {
    let budget = max_length.saturating_mul(MAX_BYTES_PER_TOKEN);
    let text = match preprocess(rule, text) {
        Cow::Borrowed(text) => Cow::Borrowed(prefix_bytes(text, budget)),
        Cow::Owned(mut text) => {
            truncate_bytes(&mut text, budget);
            Cow::Owned(text)
        }
    };
    match prefix {
        Some(prefix) => Cow::Owned(format!("{prefix}{text}")),
        None => text,
    }
}

/// Applies the bundle's normalisation.
pub fn preprocess(rule: Preprocess, text: &str) -> Cow<'_, str> {
    match rule {
        Preprocess::None => Cow::Borrowed(text),
        Preprocess::Tweet => {
            static HANDLE: OnceLock<Regex> = OnceLock::new();
            static LINK: OnceLock<Regex> = OnceLock::new();
            let handle = HANDLE.get_or_init(|| Regex::new(r"@\w+").expect("valid regex"));
            let link = LINK.get_or_init(|| Regex::new(r"https?://\S+").expect("valid regex"));
            if !text.contains('@') && !text.contains("http") {
                return Cow::Borrowed(text);
            }
            let text = link.replace_all(text, "http");
            Cow::Owned(handle.replace_all(&text, "@user").into_owned())
        }
    }
}

/// The bundle directory a relative path means: as given when it exists, else beside the
/// running binary's project (so `pulse` started from another directory still finds
/// `.pulse/models/...`).
pub fn resolve_bundle_dir(dir: &Path) -> PathBuf {
    if dir.is_absolute() || dir.exists() {
        return dir.to_path_buf();
    }
    if let Ok(exe) = std::env::current_exe() {
        for ancestor in exe.ancestors().skip(1) {
            let candidate = ancestor.join(dir);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    dir.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::bundle::Activation;

    fn head(field: Field, labels: &[&str]) -> Head {
        Head {
            output: "o".into(),
            field,
            activation: Activation::Softmax,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            label_map: Default::default(),
            logit_bias: None,
            positive: vec![],
            threshold: None,
        }
    }

    #[test]
    fn tweets_are_normalised_like_the_training_data() {
        let t = preprocess(
            Preprocess::Tweet,
            "@acme_support see https://x.co/a?b=1 and @bob!",
        );
        assert_eq!(t, "@user see http and @user!");
        assert!(matches!(
            preprocess(Preprocess::Tweet, "plain"),
            Cow::Borrowed(_)
        ));
        assert_eq!(preprocess(Preprocess::None, "@bob"), "@bob");
    }

    /// A WordPiece tokenizer in the shipped English bundle's configuration, with a vocabulary of
    /// a few pieces.
    const WORDPIECE: &str = r###"{"version":"1.0","truncation":null,"padding":null,
        "added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,
        "rstrip":false,"normalized":false,"special":true},{"id":1,"content":"[PAD]",
        "single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
        {"id":2,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,
        "normalized":false,"special":true},{"id":3,"content":"[SEP]","single_word":false,
        "lstrip":false,"rstrip":false,"normalized":false,"special":true}],
        "normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,
        "strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},
        "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]",
        "type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]",
        "type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B",
        "type_id":1}}],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]},
        "[SEP]":{"id":"[SEP]","ids":[3],"tokens":["[SEP]"]}}},"decoder":null,
        "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
        "max_input_chars_per_word":100,"vocab":{"[UNK]":0,"[PAD]":1,"[CLS]":2,"[SEP]":3,
        "z":4,"q":5,"##z":6,"##q":7,"the":8,"battery":9,"died":10,"again":11,".":12,
        "support":13,"never":14,"answered":15,"@":16,"user":17,"http":18}}}"###;

    fn wordpiece(
        max_length: usize,
    ) -> std::sync::Arc<crate::analysis::shared_tokenizers::TextTokenizer> {
        let dir = std::env::temp_dir().join(format!("pulse-transformer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokenizer.json");
        std::fs::write(&file, WORDPIECE).unwrap();
        crate::analysis::shared_tokenizers::load(&file, max_length).unwrap()
    }

    fn ids(tokenizer: &crate::analysis::shared_tokenizers::TextTokenizer, text: &str) -> Vec<u32> {
        tokenizer
            .encode_fast(text, true)
            .unwrap()
            .get_ids()
            .to_vec()
    }

    /// A post of 100-letter words the vocabulary splits letter by letter: the tokenizer is given
    /// no more than the bytes 128 tokens can take, and ordinary text reads the same tokens.
    #[test]
    fn the_tokenizer_reads_only_what_the_token_limit_can_use() {
        let max_length = 128;
        let budget = max_length * MAX_BYTES_PER_TOKEN;
        let word = "zq".repeat(50);
        let attack = format!("{word} ").repeat(198);
        assert!(attack.len() > 19_000);
        let given = tokenizer_input(Preprocess::Tweet, None, &attack, max_length);
        assert!(given.len() <= budget, "{} bytes", given.len());
        // What is left still fills the model's window: the first word's 100 tokens, then the
        // second's.
        let tokenizer = wordpiece(max_length);
        let kept = ids(&tokenizer, &given);
        assert_eq!(kept.len(), max_length);
        assert_eq!(kept[1..5], [4, 7, 6, 7]);

        // Ordinary text keeps every token the limit allows, links and handles normalised first.
        let post =
            "@acme the battery died again. support never answered https://x.co/a ".repeat(200);
        let given = tokenizer_input(Preprocess::Tweet, None, &post, max_length);
        assert!(
            given.len() <= budget && given.starts_with("@user the battery"),
            "{given}"
        );
        let full = preprocess(Preprocess::Tweet, &post);
        assert_eq!(ids(&tokenizer, &given), ids(&tokenizer, &full));

        // Cut on a character boundary (the budget's last byte is inside an `é`), and the
        // prefix is kept whole.
        let wide = format!("a{}", "é".repeat(budget));
        let given = tokenizer_input(Preprocess::None, Some("query: "), &wide, max_length);
        assert!(given.starts_with("query: aé"));
        assert_eq!(given.len(), "query: ".len() + budget - 1);
        // Short texts pass untouched.
        assert!(matches!(
            tokenizer_input(Preprocess::Tweet, None, "plain", max_length),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn softmax_and_sigmoid_give_probabilities_even_for_bad_logits() {
        let h = head(Field::Sentiment, &["negative", "neutral", "positive"]);
        let p = activate(&h, &[1.0, f32::NAN, 1.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut s = head(Field::Toxicity, &["toxic", "insult"]);
        s.activation = Activation::Sigmoid;
        let p = activate(&s, &[0.0, f32::INFINITY]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn logit_bias_moves_the_label_but_not_the_score() {
        let mut h = head(Field::Sentiment, &["negative", "neutral", "positive"]);
        let probs = [0.30, 0.40, 0.30];
        assert_eq!(sentiment_of(&h, &probs).0, SentimentLabel::Neutral);
        h.logit_bias = Some(vec![0.5, 0.0, 0.0]);
        let (label, by_label) = sentiment_of(&h, &probs);
        assert_eq!(label, SentimentLabel::Negative);
        assert_eq!(by_label, probs);
    }

    #[test]
    fn mapped_emotions_merge_and_unknown_ones_drop() {
        let mut h = head(Field::Emotion, &["anger", "disgust", "joy", "fear"]);
        h.label_map.insert("disgust".into(), Some("anger".into()));
        h.label_map.insert("fear".into(), None);
        let e = emotions_of(&h, &[0.2, 0.2, 0.4, 0.2]);
        assert!((e.anger.get() - 0.5).abs() < 1e-6 && (e.joy.get() - 0.5).abs() < 1e-6);
        assert_eq!(e.sadness.get(), 0.0);
    }

    #[test]
    fn positive_labels_sum_for_softmax_and_max_for_sigmoid() {
        let mut h = head(Field::Toxicity, &["clean", "offensive", "insult"]);
        h.positive = vec!["offensive".into(), "insult".into()];
        assert!((positive_probability(&h, &[0.5, 0.3, 0.2]) - 0.5).abs() < 1e-6);
        h.activation = Activation::Sigmoid;
        assert!((positive_probability(&h, &[0.9, 0.3, 0.6]) - 0.6).abs() < 1e-6);
    }
}
