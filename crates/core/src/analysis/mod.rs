//! Text analyzers behind one trait, so backends (the built-in lexicon, ONNX transformer
//! bundles) can be swapped without touching the actors that call them.

pub mod bundle;
pub mod calibration;
pub mod footprint;
pub mod language;
pub mod lexicon;
pub mod routing;
pub mod runtime;
pub mod shared;
pub mod shared_initializers;
pub mod shared_tokenizers;
pub mod stopwords;
pub mod terms;
pub mod transformer;
pub mod unigram;

use crate::config::AnalyzerSettings;
pub use crate::config::Backend;
use crate::models::Analysis;

/// A text analyzer. One instance lives on one worker thread, so it may keep scratch buffers
/// and need not be `Sync`.
pub trait Analyzer: Send + 'static {
    /// Name and version recorded with every result, e.g. `lexicon-vader@1`.
    fn model(&self) -> &str;

    /// Analyses a batch of texts; returns exactly one analysis per text, in order.
    fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis>;

    /// Probabilities at which this backend calls a post offensive or hateful.
    fn decision_thresholds(&self) -> DecisionThresholds {
        DecisionThresholds::LEXICON
    }

    /// Languages (ISO 639-1) this backend was trained or measured on (docs/languages.md).
    fn languages(&self) -> Vec<String> {
        vec!["en".to_string()]
    }
}

/// Probabilities at which a post counts as offensive (toxicity) or hateful (hate), as tuned
/// for each backend; evaluation and badges use them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DecisionThresholds {
    pub offensive: f32,
    pub hate: f32,
}

impl DecisionThresholds {
    /// The lexicon's: any strong swear or insult is offensive; only slurs and threats are hate.
    pub const LEXICON: DecisionThresholds = DecisionThresholds {
        offensive: 0.15,
        hate: 0.8,
    };
}

impl Default for DecisionThresholds {
    fn default() -> Self {
        DecisionThresholds {
            offensive: 0.5,
            hate: 0.5,
        }
    }
}

/// Builds a fresh analyzer of `backend` for a worker thread (also used to restart one after a
/// panic).
pub fn build(backend: Backend, settings: &AnalyzerSettings) -> anyhow::Result<Box<dyn Analyzer>> {
    match backend {
        Backend::Lexicon => Ok(Box::new(lexicon::LexiconAnalyzer::new())),
        Backend::Onnx => Ok(Box::new(transformer::TransformerAnalyzer::load(
            &transformer::InferenceOptions::from_settings(settings),
        )?)),
    }
}

/// Builds what a worker thread runs: `backend` for English, and with the onnx backend the
/// multilingual bundle (when configured) for every other language.
pub fn build_router(
    backend: Backend,
    settings: &AnalyzerSettings,
) -> anyhow::Result<routing::LanguageRouter> {
    let primary = build(backend, settings)?;
    let multilingual = match backend {
        Backend::Onnx if !settings.multilingual_bundles.is_empty() => {
            let mut options = transformer::InferenceOptions::from_settings(settings);
            options.bundles = settings
                .multilingual_bundles
                .iter()
                .map(|b| transformer::resolve_bundle_dir(b))
                .collect();
            let model = transformer::TransformerAnalyzer::load(&options)?;
            anyhow::ensure!(
                model.is_multilingual(),
                "analyzer.multilingual_bundles: the bundle lists no language besides English in `languages`"
            );
            Some(Box::new(model) as Box<dyn Analyzer>)
        }
        _ => None,
    };
    Ok(routing::LanguageRouter::new(primary, multilingual))
}
