//! Topical terms of a post's text: hashtags and content words, counted for trending terms and
//! for the evidence of alerts and viral posts.

/// Words that say nothing about a topic.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "you", "your", "are", "was", "were", "this", "that", "with", "have",
    "has", "had", "not", "but", "just", "all", "any", "can", "could", "would", "should", "will",
    "they", "them", "their", "there", "what", "when", "where", "which", "who", "why", "how",
    "from", "about", "into", "out", "our", "ours", "its", "it's", "i'm", "im", "ive", "i've",
    "dont", "don't", "didnt", "didn't", "cant", "can't", "won't", "wont", "isn't", "isnt", "been",
    "being", "than", "then", "too", "very", "more", "most", "some", "such", "only", "own", "same",
    "also", "got", "get", "gets", "one", "two", "out", "over", "again", "still", "even", "really",
    "much", "many", "like", "now", "today", "her", "him", "his", "she", "he's", "she's", "let",
    "lets", "let's", "yet", "does", "did", "doing", "done", "way", "these", "those", "because",
    "after", "before", "while", "here", "off", "via", "new", "amp", "http", "https", "www", "com",
];

/// Hashtags (kept with their `#`) and topical words of a text, lowercased, each once.
pub fn extract_terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
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
                || STOPWORDS.contains(&body.as_str())
            {
                continue;
            }
            body
        };
        if !out.contains(&term) {
            out.push(term);
        }
    }
    out
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
}
