//! Per-post routing by language. The primary backend (the English model, or the lexicon) keeps
//! the posts in its own languages, so its figures and speed do not move; the multilingual model
//! takes every other post it can. Each analysis records its language and how far it can be
//! trusted ([`LanguageSupport`]): a post no model here understands is still analysed by the
//! primary backend, so nothing is lost, but it is marked unsupported and left out of
//! aggregates, never passed off as understood.

use super::language::PostLanguage;
use super::{Analyzer, DecisionThresholds};
use crate::models::{Analysis, LanguageSource, LanguageSupport};

/// Which backend analyses a post, and what its analysis is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub multilingual: bool,
    pub support: LanguageSupport,
}

/// The analyzers of one worker thread, chosen per post by language.
pub struct LanguageRouter {
    primary: Box<dyn Analyzer>,
    primary_languages: Vec<String>,
    multilingual: Option<(Box<dyn Analyzer>, Vec<String>)>,
}

impl LanguageRouter {
    pub fn new(primary: Box<dyn Analyzer>, multilingual: Option<Box<dyn Analyzer>>) -> Self {
        let primary_languages = primary.languages();
        let multilingual = multilingual.map(|m| {
            let langs = m.languages();
            (m, langs)
        });
        Self {
            primary,
            primary_languages,
            multilingual,
        }
    }

    /// The primary backend's name (the multilingual model's is recorded on its posts).
    pub fn model(&self) -> &str {
        self.primary.model()
    }

    /// The primary backend's decision thresholds.
    pub fn decision_thresholds(&self) -> DecisionThresholds {
        self.primary.decision_thresholds()
    }

    /// The decision thresholds of the backend that made `analysis`.
    pub fn decision_thresholds_of(&self, analysis: &Analysis) -> DecisionThresholds {
        match &self.multilingual {
            Some((m, _)) if m.model() == super::calibration::shipped_model(&analysis.model) => {
                m.decision_thresholds()
            }
            _ => self.primary.decision_thresholds(),
        }
    }

    /// Languages some loaded model was trained or measured on.
    pub fn supported_languages(&self) -> Vec<String> {
        let mut all = self.primary_languages.clone();
        if let Some((_, langs)) = &self.multilingual {
            all.extend(langs.iter().cloned());
        }
        all.sort();
        all.dedup();
        all
    }

    /// Where a post in `lang` goes.
    pub fn route(&self, lang: &PostLanguage) -> Route {
        // An unsure detection is labelled so (`lang_source`); the class is about the language
        // the post was analysed as.
        let Some(code) = lang.code.as_deref() else {
            // Emoji, numbers and links only: the primary backend reads emoji; nothing says
            // whether it is right.
            return Route {
                multilingual: false,
                support: LanguageSupport::Unverified,
            };
        };
        if self.primary_languages.iter().any(|l| l == code) {
            return Route {
                multilingual: false,
                support: LanguageSupport::Supported,
            };
        }
        match &self.multilingual {
            Some((_, langs)) => Route {
                multilingual: true,
                support: if langs.iter().any(|l| l == code) {
                    LanguageSupport::Supported
                } else {
                    LanguageSupport::Unverified
                },
            },
            // An unsure answer (English tweets among them) stays with the primary backend,
            // marked so; a sure answer of another language is left out: a wrong answer that
            // looks confident is worse than none.
            None if lang.source == LanguageSource::Unsure => Route {
                multilingual: false,
                support: LanguageSupport::Unverified,
            },
            None => Route {
                multilingual: false,
                support: LanguageSupport::Unsupported,
            },
        }
    }

    /// Analyses posts given as (text, producer's language tag); one analysis per post, in
    /// order.
    pub fn analyze_posts(&mut self, posts: &[(&str, Option<&str>)]) -> Vec<Analysis> {
        let langs: Vec<PostLanguage> = posts
            .iter()
            .map(|(text, given)| PostLanguage::resolve(*given, text))
            .collect();
        let routes: Vec<Route> = langs.iter().map(|l| self.route(l)).collect();
        let mut out: Vec<Option<Analysis>> = vec![None; posts.len()];
        for multilingual in [false, true] {
            let picked: Vec<usize> = (0..posts.len())
                .filter(|&i| routes[i].multilingual == multilingual)
                .collect();
            if picked.is_empty() {
                continue;
            }
            let texts: Vec<&str> = picked.iter().map(|&i| posts[i].0).collect();
            let analyzer = match (&mut self.multilingual, multilingual) {
                (Some((m, _)), true) => m,
                _ => &mut self.primary,
            };
            for (&i, analysis) in picked.iter().zip(analyzer.analyze_batch(&texts)) {
                out[i] = Some(analysis);
            }
        }
        out.into_iter()
            .zip(langs)
            .zip(routes)
            .map(|((analysis, lang), route)| {
                let mut analysis = analysis.expect("every post was routed to one analyzer");
                analysis.lang = lang.code;
                analysis.lang_source = lang.source;
                analysis.language_support = route.support;
                analysis
            })
            .collect()
    }

    /// Analyses texts of unknown language (detected per text).
    pub fn analyze_texts(&mut self, texts: &[&str]) -> Vec<Analysis> {
        let posts: Vec<(&str, Option<&str>)> = texts.iter().map(|t| (*t, None)).collect();
        self.analyze_posts(&posts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lexicon::LexiconAnalyzer;
    use crate::models::LanguageSource;

    struct Fixed(&'static str, Vec<String>);

    impl Analyzer for Fixed {
        fn model(&self) -> &str {
            self.0
        }
        fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis> {
            let mut lex = LexiconAnalyzer::new();
            texts
                .iter()
                .map(|t| Analysis {
                    model: self.0.to_string(),
                    ..lex.analyze(t)
                })
                .collect()
        }
        fn languages(&self) -> Vec<String> {
            self.1.clone()
        }
    }

    fn langs(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| c.to_string()).collect()
    }

    const GERMAN: &str =
        "Seit 14 Tagen geht mein Kopfhörer nicht. Furchtbar, ich will mein Geld zurück";
    const ENGLISH: &str = "My headphones stopped working two weeks ago and support never answered";
    const DUTCH: &str = "Mijn koptelefoon doet het al twee weken niet meer en niemand helpt mij";

    #[test]
    fn english_stays_on_the_primary_model_and_others_go_to_the_multilingual_one() {
        let mut router = LanguageRouter::new(
            Box::new(Fixed("english", langs(&["en"]))),
            Some(Box::new(Fixed("multi", langs(&["de", "es"])))),
        );
        let out = router.analyze_posts(&[
            (ENGLISH, None),
            (GERMAN, None),
            (DUTCH, None),
            (ENGLISH, Some("es")),
        ]);
        let got: Vec<(&str, Option<&str>, LanguageSupport)> = out
            .iter()
            .map(|a| (a.model.as_str(), a.lang.as_deref(), a.language_support))
            .collect();
        assert_eq!(
            got,
            [
                ("english", Some("en"), LanguageSupport::Supported),
                ("multi", Some("de"), LanguageSupport::Supported),
                ("multi", Some("nl"), LanguageSupport::Unverified),
                // The producer's tag is believed.
                ("multi", Some("es"), LanguageSupport::Supported),
            ]
        );
        assert_eq!(out[3].lang_source, LanguageSource::Given);
    }

    #[test]
    fn without_a_multilingual_model_other_languages_are_unsupported_not_guessed() {
        let mut router = LanguageRouter::new(Box::new(LexiconAnalyzer::new()), None);
        let out = router.analyze_posts(&[(GERMAN, None), (ENGLISH, None)]);
        assert_eq!(out[0].language_support, LanguageSupport::Unsupported);
        assert_eq!(out[0].lang.as_deref(), Some("de"));
        assert_eq!(out[1].language_support, LanguageSupport::Supported);
    }
}
