//! Placeholder, replaced by the lexicon backend.
use crate::models::*;

/// The built-in lexicon analyzer.
pub struct LexiconAnalyzer;

impl LexiconAnalyzer {
    /// Loads the lexicons.
    pub fn new() -> Self {
        Self
    }
}

impl Default for LexiconAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl super::Analyzer for LexiconAnalyzer {
    fn model(&self) -> &str {
        "lexicon-vader@1"
    }
    fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis> {
        texts
            .iter()
            .map(|_| Analysis {
                sentiment_label: SentimentLabel::Neutral,
                sentiment_score: SentimentScore::new(0.0),
                emotions: EmotionScores::default(),
                toxicity: Probability::new(0.0),
                churn_risk: Probability::new(0.0),
                model: self.model().to_string(),
            })
            .collect()
    }
}
