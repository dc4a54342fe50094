//! The keyword and language filters every source offers, and the posts that passed them, so
//! that engagements with those posts pass too (a repost or a like carries no text).

use std::collections::{HashSet, VecDeque};

pub struct TextFilter {
    keywords: Vec<String>,
    languages: Vec<String>,
    kept: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl TextFilter {
    /// Keeps posts containing one of `keywords` (case-insensitive; none: any text) in one of
    /// `languages` (a tag `en-US` matches `en`; none: any language), and remembers the last
    /// `capacity` of them (0 for sources whose records carry no engagements).
    pub fn new(keywords: &[String], languages: &[String], capacity: usize) -> TextFilter {
        TextFilter {
            keywords: keywords.iter().map(|k| k.to_lowercase()).collect(),
            languages: languages.iter().map(|l| l.to_lowercase()).collect(),
            kept: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        !self.keywords.is_empty() || !self.languages.is_empty()
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
        let text_ok = self.keywords.is_empty() || {
            let text = text.to_lowercase();
            self.keywords.iter().any(|k| text.contains(k.as_str()))
        };
        if !(lang_ok && text_ok) {
            return false;
        }
        if self.capacity > 0 && self.kept.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.kept.remove(&old);
                }
            }
        }
        true
    }

    /// Whether an engagement with post `id` passes: every one without filters, else only
    /// those with a remembered post.
    pub fn keeps_engagement(&self, post_id: &str) -> bool {
        !self.is_active() || self.kept.contains(post_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_languages_both_hold_and_memory_is_bounded() {
        let mut f = TextFilter::new(&["Buds".into()], &["en".into()], 1);
        assert!(f.keeps_post("a", "my BUDS", &["en-GB".into()]));
        assert!(!f.keeps_post("b", "my buds", &["de".into()]));
        assert!(!f.keeps_post("c", "my buds", &["eng".into()]));
        assert!(!f.keeps_post("d", "hello", &["en".into()]));
        assert!(f.keeps_engagement("a") && !f.keeps_engagement("b"));
        assert!(f.keeps_post("e", "buds", &["en".into()]));
        assert!(!f.keeps_engagement("a"), "forgotten past the capacity");
        let mut forgetful = TextFilter::new(&["buds".into()], &[], 0);
        assert!(forgetful.keeps_post("f", "buds", &[]));
        assert!(
            !forgetful.keeps_engagement("f"),
            "capacity 0 remembers nothing"
        );
        let open = TextFilter::new(&[], &[], 1);
        assert!(open.keeps_engagement("anything"));
    }
}
