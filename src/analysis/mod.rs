//! Text analyzers behind one trait, so backends (the built-in lexicon, ONNX transformer
//! bundles) can be swapped without touching the actors that call them.

pub mod lexicon;

use crate::models::Analysis;

/// A text analyzer. One instance lives on one worker thread, so it may keep scratch buffers
/// and need not be `Sync`.
pub trait Analyzer: Send + 'static {
    /// Name and version recorded with every result, e.g. `lexicon-vader@1`.
    fn model(&self) -> &str;

    /// Analyses a batch of texts; returns exactly one analysis per text, in order.
    fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis>;
}

/// Which backend the analyzer pool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The built-in lexicon analyzer: fast, no model files.
    Lexicon,
}

/// Builds a fresh analyzer for a worker thread (also used to restart one after a panic).
pub fn build(backend: Backend) -> anyhow::Result<Box<dyn Analyzer>> {
    match backend {
        Backend::Lexicon => Ok(Box::new(lexicon::LexiconAnalyzer::new())),
    }
}
