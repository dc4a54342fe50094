//! What a source keeps: posts its keywords, its query or an active topic match, in its
//! languages, and the posts that passed, so that engagements with those posts pass too (a
//! repost or a like carries no text).
//!
//! Keywords are words and phrases of the topic language joined by OR (`["pulse buds",
//! "pulsephone"]` is `"pulse buds" OR "pulsephone"`): matched on word boundaries, case and
//! accents folded, so `pulse` keeps "Pulse!" and not "impulse".

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::topics::{Expr, LiveTopics, PostFields, QueryError, TopicSet};

/// What a source listens for besides its languages: its keywords and query, compiled as one
/// topic, and the process's active topics when it keeps their posts too.
#[derive(Clone, Default)]
pub struct Listening {
    own: Option<Arc<TopicSet>>,
    topics: Option<Arc<LiveTopics>>,
    /// The platform of the source's posts, and the tags it gives them, for fields.
    pub platform: &'static str,
    pub product: Option<String>,
    pub channel: Option<String>,
}

impl Listening {
    /// Listens for `keywords` or `query` (either may be empty), and for `topics` when given.
    pub fn new(
        keywords: &[String],
        query: Option<&str>,
        topics: Option<Arc<LiveTopics>>,
    ) -> Result<Listening, QueryError> {
        // Each keyword is the phrase of its words, however many keywords and whatever their
        // characters (`*` is punctuation here); one with no word in it keeps nothing.
        let mut parts: Vec<Expr> = keywords
            .iter()
            .filter_map(|k| {
                let phrase = crate::topics::syntax::phrase(k);
                if phrase.is_none() && !k.trim().is_empty() {
                    tracing::warn!(keyword = %k, "a source keyword has no letters, digits or emoji; it keeps nothing");
                }
                phrase
            })
            .collect();
        if let Some(query) = query.filter(|q| !q.trim().is_empty()) {
            parts.push(crate::topics::parse(query)?);
        }
        let own = match parts.len() {
            0 => None,
            1 => Some(Arc::new(TopicSet::of(0, 1, &parts[0]))),
            _ => Some(Arc::new(TopicSet::of(0, 1, &Expr::Or(parts)))),
        };
        Ok(Listening {
            own,
            topics,
            ..Listening::default()
        })
    }

    /// The same, for posts of `platform` tagged `product` and `channel`.
    pub fn of_posts(
        mut self,
        platform: &'static str,
        product: Option<String>,
        channel: Option<String>,
    ) -> Listening {
        self.platform = platform;
        self.product = product;
        self.channel = channel;
        self
    }

    fn is_active(&self) -> bool {
        self.own.is_some() || self.topics.is_some()
    }

    fn keeps(&self, text: &str, langs: &[String]) -> bool {
        let lang = langs
            .first()
            .and_then(|l| crate::analysis::language::normalise_tag(l));
        let post = PostFields {
            text,
            platform: self.platform,
            lang: lang.as_deref(),
            product: self.product.as_deref(),
            channel: self.channel.as_deref(),
            ..PostFields::default()
        };
        self.own
            .as_ref()
            .is_some_and(|own| !own.matches(&post).is_empty())
            || self
                .topics
                .as_ref()
                .is_some_and(|t| !t.get().matches(&post).is_empty())
    }
}

pub struct TextFilter {
    listening: Listening,
    languages: Vec<String>,
    kept: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl TextFilter {
    /// Keeps posts `listening` keeps (none set: any text) in one of `languages` (a tag
    /// `en-US` matches `en`; none: any language), and remembers the last `capacity` of them
    /// (0 for sources whose records carry no engagements).
    pub fn new(listening: Listening, languages: &[String], capacity: usize) -> TextFilter {
        TextFilter {
            listening,
            languages: languages.iter().map(|l| l.to_lowercase()).collect(),
            kept: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        self.listening.is_active() || !self.languages.is_empty()
    }

    /// Whether a post passes; one that does is remembered under `id`.
    pub fn keeps_post(&mut self, id: &str, text: &str, langs: &[String]) -> bool {
        if !self.is_active() {
            return true;
        }
        let lang_ok = self.languages.is_empty()
            || langs.iter().any(|l| {
                let l = l.to_lowercase();
                self.languages.iter().any(|want| {
                    l == *want || (l.starts_with(want.as_str()) && l[want.len()..].starts_with('-'))
                })
            });
        let text_ok = !self.listening.is_active() || self.listening.keeps(text, langs);
        if !(lang_ok && text_ok) {
            return false;
        }
        self.remember(id);
        true
    }

    /// Remembers post `id` as kept, forgetting the oldest past the capacity.
    fn remember(&mut self, id: &str) {
        if self.capacity > 0 && self.kept.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.kept.remove(&old);
                }
            }
        }
    }

    /// How many posts are remembered when a filter is set; 0 when none is, as then every
    /// engagement and deletion passes without them.
    pub fn remembers(&self) -> usize {
        if self.is_active() {
            self.capacity
        } else {
            0
        }
    }

    /// Remembers posts kept before (by an earlier run), oldest first, as if kept now.
    pub fn remember_kept(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.remember(&id);
        }
    }

    /// Whether an engagement with post `id` passes: every one without filters, else only
    /// those with a remembered post.
    pub fn keeps_engagement(&self, post_id: &str) -> bool {
        !self.is_active() || self.kept.contains(post_id)
    }

    /// Whether the deletion of post `id` passes: as an engagement with it does. A source
    /// with keywords hears every deletion of its platform; those of posts it never kept
    /// would each be stored, for nothing.
    pub fn keeps_deletion(&self, post_id: &str) -> bool {
        self.keeps_engagement(post_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(words: &[&str]) -> Listening {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        Listening::new(&words, None, None).unwrap()
    }

    #[test]
    fn keywords_and_languages_both_hold_and_memory_is_bounded() {
        let mut f = TextFilter::new(keywords(&["Buds"]), &["en".into()], 1);
        assert!(f.keeps_post("a", "my BUDS", &["en-GB".into()]));
        assert!(!f.keeps_post("b", "my buds", &["de".into()]));
        assert!(!f.keeps_post("c", "my buds", &["eng".into()]));
        assert!(!f.keeps_post("d", "hello", &["en".into()]));
        assert!(f.keeps_engagement("a") && !f.keeps_engagement("b"));
        assert!(f.keeps_post("e", "buds", &["en".into()]));
        assert!(!f.keeps_engagement("a"), "forgotten past the capacity");
        let mut forgetful = TextFilter::new(keywords(&["buds"]), &[], 0);
        assert!(forgetful.keeps_post("f", "buds", &[]));
        assert!(
            !forgetful.keeps_engagement("f"),
            "capacity 0 remembers nothing"
        );
        let open = TextFilter::new(Listening::default(), &[], 1);
        assert!(open.keeps_engagement("anything"));
    }

    #[test]
    fn keywords_are_words_and_phrases_joined_by_or() {
        let mut f = TextFilter::new(keywords(&["pulse", "pulse buds"]), &[], 0);
        assert!(f.keeps_post("a", "Pulse!", &[]));
        assert!(!f.keeps_post("b", "an impulse buy", &[]));
        assert!(f.keeps_post("c", "new #pulse buds", &[]));
        let mut f = TextFilter::new(keywords(&["pulse buds"]), &[], 0);
        assert!(!f.keeps_post("d", "buds by pulse", &[]));
        // Any keyword a list held before: quotes, operators, stars, punctuation alone, many.
        let mut many: Vec<String> = (0..1_000).map(|i| format!("brand{i}")).collect();
        many.extend([
            "\"quoted\" NOT this".into(),
            "c*t".into(),
            "!!!".into(),
            "ab*".into(),
        ]);
        let mut f = TextFilter::new(Listening::new(&many, None, None).unwrap(), &[], 0);
        assert!(f.keeps_post("e", "I love brand999", &[]));
        assert!(f.keeps_post("f", "quoted, NOT this one", &[]));
        assert!(!f.keeps_post("g", "not this", &[]));
        assert!(f.keeps_post("h", "c t", &[]));
    }

    #[test]
    fn a_query_or_an_active_topic_keeps_a_post_too() {
        let topics = LiveTopics::new();
        let listening = Listening::new(
            &["buds".into()],
            Some("coke NOT drug"),
            Some(topics.clone()),
        )
        .unwrap()
        .of_posts("bluesky", None, None);
        let mut f = TextFilter::new(listening, &[], 0);
        assert!(f.keeps_post("a", "a cold coke", &[]));
        assert!(!f.keeps_post("b", "coke the drug", &[]));
        assert!(f.keeps_post("c", "my buds", &[]));
        assert!(!f.keeps_post("d", "a pepsi", &[]));
        let expr = crate::topics::parse("pepsi platform:bluesky").unwrap();
        topics.replace(1, TopicSet::of(9, 1, &expr));
        assert!(f.keeps_post("e", "a pepsi", &[]));
        assert!(Listening::new(&[], Some("coke AND"), None).is_err());
    }
}
