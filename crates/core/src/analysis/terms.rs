//! Topical terms of a post's text: hashtags and content words, counted for trending terms and
//! for the evidence of alerts and viral posts.

use std::collections::HashSet;

use super::stopwords::ENGLISH;

/// Words that say nothing about a topic, besides [`ENGLISH`].
const STOPWORDS: &[&str] = &[
    "im", "ive", "i've", "didnt", "didn't", "cant", "won't", "wont", "isn't", "isnt", "such",
    "own", "same", "gets", "two", "he's", "she's", "lets", "doing", "done", "way",
];

/// Hashtags (kept with their `#`) and topical words of a text, lowercased, each once.
pub fn extract_terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // A 20,000-byte post holds up to 5,000 distinct words: looked up in `out` itself, that was
    // 12.5 million comparisons, on the thread the ingester commits on.
    let mut seen: HashSet<String> = HashSet::new();
    for raw in text.split_whitespace() {
        if raw.starts_with('@') || raw.contains("://") || raw.starts_with("www.") {
            continue;
        }
        let (is_tag, body) = match raw.strip_prefix('#') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let body: String = body
            .trim_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .flat_map(char::to_lowercase)
            .collect();
        let term = if is_tag {
            if !(2..=40).contains(&body.chars().count())
                || !body.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            format!("#{body}")
        } else {
            let len = body.chars().count();
            if !(3..=30).contains(&len)
                || !body
                    .chars()
                    .all(|c| c.is_alphabetic() || c == '\'' || c == '-')
                || ENGLISH.contains(&body.as_str())
                || STOPWORDS.contains(&body.as_str())
            {
                continue;
            }
            body
        };
        if seen.insert(term.clone()) {
            out.push(term);
        }
    }
    out
}

/// The `limit` terms in the most of `posts` (each a text and its sentiment score), with their
/// mean sentiment, most frequent first (ties by term): trending terms over any set of posts,
/// as the rollups count them for the whole stream.
pub fn rank_terms<'a>(
    posts: impl IntoIterator<Item = (&'a str, f64)>,
    limit: usize,
) -> Vec<crate::models::metrics::TermStats> {
    let mut counts: std::collections::HashMap<String, (i64, f64)> = Default::default();
    for (text, score) in posts {
        for term in extract_terms(text) {
            let slot = counts.entry(term).or_insert((0, 0.0));
            slot.0 += 1;
            slot.1 += score;
        }
    }
    let mut ranked: Vec<(String, (i64, f64))> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(term, (posts, sum))| crate::models::metrics::TermStats {
            hashtag: term.starts_with('#'),
            term,
            posts,
            sentiment_mean: sum / posts as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_hashtags_and_topical_words_once() {
        let terms =
            extract_terms("Loving the #PulsePhone camera!! @bob the CAMERA rocks https://x.y/z #a");
        assert_eq!(terms, vec!["loving", "#pulsephone", "camera", "rocks"]);
    }

    /// 60,000 distinct words, each kept once in order (compared each with every term before it,
    /// as terms once were, they took minutes here; the speed lives in no assert).
    #[test]
    fn many_distinct_words_are_each_extracted_once_in_order() {
        let letters = |mut n: usize| {
            let mut word = String::new();
            for _ in 0..4 {
                word.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
            }
            word
        };
        let words: Vec<String> = (0..60_000).map(letters).collect();
        let text = words.join(" ");
        assert_eq!(extract_terms(&text), words);
        // Repeats still count once, in the order they first appear.
        assert_eq!(
            extract_terms("zebra apple zebra #b2b apple #B2B"),
            ["zebra", "apple", "#b2b"]
        );
    }

    #[test]
    fn terms_rank_by_the_posts_they_are_in() {
        let ranked = rank_terms(
            [
                ("battery dies, battery bad", -1.0),
                ("battery great #pulse", 1.0),
                ("#pulse screen", 0.5),
            ],
            2,
        );
        let names: Vec<&str> = ranked.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(names, ["#pulse", "battery"]);
        assert_eq!((ranked[1].posts, ranked[1].sentiment_mean), (2, 0.0));
        assert!(ranked[0].hashtag);
    }
}
