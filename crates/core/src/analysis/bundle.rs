//! Model bundles: a directory with `model.onnx`, `tokenizer.json` and `pulse-model.json`. The
//! manifest says which graph inputs take the token ids and mask, and how each output head maps
//! onto Pulse's fields, so any Hugging Face sequence-classification model exported to ONNX can
//! be used by writing that one file.
//!
//! ```json
//! {
//!   "name": "minilm-tweets", "version": "1.0.0", "precision": "int8",
//!   "max_length": 128, "preprocess": "tweet",
//!   "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask"},
//!   "heads": [
//!     {"output": "sentiment", "field": "sentiment", "activation": "softmax",
//!      "labels": ["negative", "neutral", "positive"], "logit_bias": [0.0, 0.1, -0.1]},
//!     {"output": "offensive", "field": "toxicity", "activation": "softmax",
//!      "labels": ["not-offensive", "offensive"], "positive": ["offensive"], "threshold": 0.45}
//!   ]
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use serde::Deserialize;

use crate::models::{Emotion, SentimentLabel};

/// File names inside a bundle directory.
pub const MODEL_FILE: &str = "model.onnx";
/// See [`MODEL_FILE`].
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// See [`MODEL_FILE`].
pub const MANIFEST_FILE: &str = "pulse-model.json";

/// Longest sequence any bundle may ask for; longer graphs would make one post cost seconds.
pub const MAX_SEQUENCE_LENGTH: usize = 4096;

/// The parsed `pulse-model.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// Informational: `fp32`, `int8`, ...
    #[serde(default)]
    pub precision: Option<String>,
    /// Texts are truncated to this many tokens (special tokens included).
    pub max_length: usize,
    #[serde(default)]
    pub preprocess: Preprocess,
    pub inputs: Inputs,
    pub heads: Vec<Head>,
    /// Prepended to every text before tokenizing (e5 models expect `query: `).
    #[serde(default)]
    pub text_prefix: Option<String>,
    /// Languages (ISO 639-1) the bundle was trained and measured on; empty means English only.
    /// A bundle listing others is multilingual: it gets every post not in English, and fields it
    /// has no head for are left empty rather than filled by the English lexicon.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Languages the bundle was not trained on but was measured on: a public labelled test
    /// set each, its figure beside a published one in docs/languages.md. Posts in them are
    /// `supported` as those in `languages` are.
    #[serde(default)]
    pub measured_languages: Vec<String>,
    /// Large initializers kept as raw files beside the model: loaded once per process and
    /// handed to every worker's session instead of each session holding its own copy.
    #[serde(default)]
    pub shared_initializers: Vec<SharedInitializer>,
    /// Free-form figures recorded by the training run (shown, never interpreted).
    #[serde(default)]
    pub metrics: Option<serde_json::Value>,
    /// Free-form description of the training run (shown, never interpreted).
    #[serde(default)]
    pub training: Option<serde_json::Value>,
}

/// An initializer of the graph stored as raw little-endian bytes in its own file (the graph
/// refers to the same file as ONNX external data, so the bundle also loads without Pulse).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedInitializer {
    pub name: String,
    /// A file name inside the bundle directory.
    pub file: String,
    pub dtype: InitializerType,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitializerType {
    Uint8,
    Int8,
    Float32,
}

impl InitializerType {
    pub fn size(self) -> usize {
        match self {
            InitializerType::Uint8 | InitializerType::Int8 => 1,
            InitializerType::Float32 => 4,
        }
    }
}

/// Graph input names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub input_ids: String,
    #[serde(default)]
    pub attention_mask: Option<String>,
    #[serde(default)]
    pub token_type_ids: Option<String>,
}

/// Text normalisation applied before tokenising, matching what the model was trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// The text as it is.
    #[default]
    None,
    /// `@handle` becomes `@user` and links become `http`, as in the TweetEval corpora.
    Tweet,
}

/// The Pulse field a head feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Sentiment,
    Emotion,
    Toxicity,
    Hate,
}

impl Field {
    /// Every field, for coverage checks.
    pub const ALL: [Field; 4] = [
        Field::Sentiment,
        Field::Emotion,
        Field::Toxicity,
        Field::Hate,
    ];
}

/// How logits become probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// One label per text (mutually exclusive classes).
    Softmax,
    /// Independent labels (multi-label heads such as toxic-bert's).
    Sigmoid,
}

/// One output head.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Graph output holding `[batch, labels]` logits.
    pub output: String,
    pub field: Field,
    pub activation: Activation,
    /// The model's labels, in output order.
    pub labels: Vec<String>,
    /// Renames model labels to Pulse's (e.g. `LABEL_0` -> `negative`, `disgust` -> `anger`);
    /// labels mapped to `null` are ignored.
    #[serde(default)]
    pub label_map: BTreeMap<String, Option<String>>,
    /// Added to the logits before the label is chosen (tuned for balanced recall).
    #[serde(default)]
    pub logit_bias: Option<Vec<f32>>,
    /// For toxicity and hate: the labels whose probability counts.
    #[serde(default)]
    pub positive: Vec<String>,
    /// For toxicity and hate: probability at which a post is called offensive / hateful.
    #[serde(default)]
    pub threshold: Option<f32>,
}

impl Head {
    /// The Pulse name of model label `index`, or `None` when it is ignored.
    pub fn pulse_label(&self, index: usize) -> Option<&str> {
        let label = self.labels.get(index)?;
        match self.label_map.get(label) {
            Some(mapped) => mapped.as_deref(),
            None => Some(label.as_str()),
        }
    }

    /// Indices of the model labels that map onto `pulse` (several may, e.g. disgust -> anger).
    pub fn indices_of<'a>(&'a self, pulse: &'a str) -> impl Iterator<Item = usize> + 'a {
        (0..self.labels.len()).filter(move |&i| self.pulse_label(i) == Some(pulse))
    }

    fn validate(&self) -> anyhow::Result<()> {
        let out = &self.output;
        ensure!(!self.labels.is_empty(), "head `{out}` lists no labels");
        for key in self.label_map.keys() {
            ensure!(
                self.labels.contains(key),
                "head `{out}`: label_map names `{key}`, which is not one of its labels {:?}",
                self.labels
            );
        }
        if let Some(bias) = &self.logit_bias {
            ensure!(
                bias.len() == self.labels.len(),
                "head `{out}`: logit_bias has {} values for {} labels",
                bias.len(),
                self.labels.len()
            );
            ensure!(
                bias.iter().all(|b| b.is_finite()),
                "head `{out}`: logit_bias must be finite"
            );
        }
        match self.field {
            Field::Sentiment => {
                for needed in [SentimentLabel::Negative, SentimentLabel::Positive] {
                    ensure!(
                        self.indices_of(needed.as_str()).next().is_some(),
                        "head `{out}` feeds sentiment but no label maps to `{}` (labels {:?}; use label_map)",
                        needed.as_str(),
                        self.labels
                    );
                }
                for i in 0..self.labels.len() {
                    if let Some(l) = self.pulse_label(i) {
                        ensure!(
                            SentimentLabel::parse(l).is_some(),
                            "head `{out}`: sentiment label `{l}` is not negative, neutral or positive (map it or map it to null)"
                        );
                    }
                }
            }
            Field::Emotion => {
                let names: Vec<&str> = Emotion::ALL.iter().map(|e| e.as_str()).collect();
                ensure!(
                    names.iter().any(|n| self.indices_of(n).next().is_some()),
                    "head `{out}` feeds emotion but none of its labels {:?} maps to {names:?}",
                    self.labels
                );
            }
            Field::Toxicity | Field::Hate => {
                ensure!(
                    !self.positive.is_empty(),
                    "head `{out}` feeds {:?} and must name its `positive` labels",
                    self.field
                );
                for p in &self.positive {
                    ensure!(
                        self.labels.contains(p),
                        "head `{out}`: positive label `{p}` is not one of {:?}",
                        self.labels
                    );
                }
                if let Some(t) = self.threshold {
                    ensure!(
                        (0.0..=1.0).contains(&t),
                        "head `{out}`: threshold {t} is outside 0..=1"
                    );
                }
            }
        }
        Ok(())
    }
}

/// A bundle directory with its parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Bundle {
    /// Reads and validates the manifest; checks that the model and tokenizer files exist.
    pub fn open(dir: &Path) -> anyhow::Result<Bundle> {
        ensure!(
            dir.is_dir(),
            "model bundle `{}` does not exist (run `bash scripts/models.sh` to build the bundled model, point analyzer.bundles at a bundle directory, or set analyzer.backend = \"lexicon\")",
            dir.display()
        );
        for file in [MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE] {
            ensure!(
                dir.join(file).is_file(),
                "model bundle `{}` has no {file}",
                dir.display()
            );
        }
        let path = dir.join(MANIFEST_FILE);
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is not a valid model manifest", path.display()))?;
        for shared in &manifest.shared_initializers {
            let file = Path::new(&shared.file);
            ensure!(
                file.components().count() == 1
                    && matches!(
                        file.components().next(),
                        Some(std::path::Component::Normal(_))
                    ),
                "{}: shared initializer file {:?} must be a plain file name",
                path.display(),
                shared.file
            );
            let elements = shared.shape.iter().try_fold(1usize, |n, &d| {
                usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
            });
            let want = elements.and_then(|n| n.checked_mul(shared.dtype.size()));
            let have = std::fs::metadata(dir.join(file)).map(|m| m.len()).ok();
            ensure!(
                want.is_some() && have == want.map(|w| w as u64),
                "model bundle `{}`: {} should hold {:?} bytes for {} {:?}, found {:?}",
                dir.display(),
                shared.file,
                want,
                shared.name,
                shared.shape,
                have
            );
        }
        manifest
            .validate()
            .with_context(|| format!("{} is inconsistent", path.display()))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Name, version and precision, as recorded with every analysis.
    pub fn model_name(&self) -> String {
        let m = &self.manifest;
        match &m.precision {
            Some(p) => format!("{}@{}-{p}", m.name, m.version),
            None => format!("{}@{}", m.name, m.version),
        }
    }
}

impl Manifest {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.name.trim().is_empty(), "`name` is empty");
        ensure!(
            (2..=MAX_SEQUENCE_LENGTH).contains(&self.max_length),
            "`max_length` {} is outside 2..={MAX_SEQUENCE_LENGTH}",
            self.max_length
        );
        ensure!(!self.heads.is_empty(), "no heads");
        let mut seen = Vec::new();
        for head in &self.heads {
            head.validate()?;
            if seen.contains(&head.field) {
                bail!("two heads feed {:?}", head.field);
            }
            seen.push(head.field);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(heads: &str) -> anyhow::Result<Manifest> {
        let raw = format!(
            r#"{{"name":"m","version":"1","max_length":64,
                 "inputs":{{"input_ids":"input_ids"}},"heads":{heads}}}"#
        );
        let m: Manifest = serde_json::from_str(&raw)?;
        m.validate()?;
        Ok(m)
    }

    #[test]
    fn a_mapped_three_way_head_is_accepted() {
        let m = manifest(
            r#"[{"output":"logits","field":"sentiment","activation":"softmax",
                "labels":["LABEL_0","LABEL_1","LABEL_2"],
                "label_map":{"LABEL_0":"negative","LABEL_1":"neutral","LABEL_2":"positive"}}]"#,
        )
        .unwrap();
        assert_eq!(m.heads[0].pulse_label(2), Some("positive"));
    }

    #[test]
    fn inconsistent_heads_are_refused_with_the_reason() {
        let cases = [
            (
                r#"[{"output":"o","field":"sentiment","activation":"softmax","labels":["a","b"]}]"#,
                "no label maps to `negative`",
            ),
            (
                r#"[{"output":"o","field":"toxicity","activation":"sigmoid","labels":["toxic"]}]"#,
                "must name its `positive` labels",
            ),
            (
                r#"[{"output":"o","field":"hate","activation":"softmax","labels":["no","yes"],"positive":["hate"]}]"#,
                "positive label `hate`",
            ),
            (
                r#"[{"output":"o","field":"sentiment","activation":"softmax","labels":["negative","positive"],"logit_bias":[1]}]"#,
                "logit_bias has 1 values for 2 labels",
            ),
            (
                r#"[{"output":"o","field":"emotion","activation":"softmax","labels":["fear"]},
                    {"output":"p","field":"emotion","activation":"softmax","labels":["joy"]}]"#,
                "maps to",
            ),
            (r#"[]"#, "no heads"),
        ];
        for (heads, expected) in cases {
            let err = format!("{:#}", manifest(heads).unwrap_err());
            assert!(err.contains(expected), "{heads}: {err}");
        }
    }

    #[test]
    fn shared_initializer_files_must_be_plain_names_of_the_right_size() {
        let dir = std::env::temp_dir().join(format!("pulse-bundle-shared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MODEL_FILE), b"").unwrap();
        std::fs::write(dir.join(TOKENIZER_FILE), b"{}").unwrap();
        std::fs::write(dir.join("emb.bin"), vec![0u8; 12]).unwrap();
        let open_with = |file: &str, shape: &str| {
            let raw = format!(
                r#"{{"name":"m","version":"1","max_length":64,
                     "inputs":{{"input_ids":"input_ids"}},
                     "heads":[{{"output":"o","field":"toxicity","activation":"sigmoid",
                                "labels":["toxic"],"positive":["toxic"]}}],
                     "shared_initializers":[{{"name":"e","file":"{file}","dtype":"float32",
                                              "shape":{shape}}}]}}"#
            );
            std::fs::write(dir.join(MANIFEST_FILE), raw).unwrap();
            Bundle::open(&dir).map(|_| ()).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(open_with("emb.bin", "[3]"), Ok(()));
        let short = open_with("emb.bin", "[2, 3]").unwrap_err();
        assert!(
            short.contains("Some(24)") && short.contains("Some(12)"),
            "{short}"
        );
        assert!(open_with("../emb.bin", "[3]")
            .unwrap_err()
            .contains("plain file name"));
        assert!(open_with("emb.bin", "[-1]").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_missing_bundle_names_the_path_and_the_fix() {
        let err = Bundle::open(Path::new("/nonexistent/bundle")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("/nonexistent/bundle") && msg.contains("scripts/models.sh"));
    }
}
