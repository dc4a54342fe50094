//! What a post is about, as a sparse vector: its content words and hashtags, hashed, weighted by
//! how rare they have been lately (tf-idf with document frequencies that decay in event time, so
//! last month's news does not make today's words look common).

use crate::analysis::stopwords::ENGLISH;

/// One weighted term of a post or a story centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighted {
    pub term: u32,
    pub weight: f32,
}

/// A post's terms with unit length (cosine similarity is a dot product).
#[derive(Debug, Clone, Default)]
pub struct PostVector {
    pub terms: Vec<Weighted>,
    /// The words behind the terms, for story labels (same order as `terms`).
    pub words: Vec<Box<str>>,
}

impl PostVector {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Cosine similarity of two unit vectors (both sorted by term).
    pub fn dot(&self, other: &PostVector) -> f32 {
        let (mut i, mut j, mut sum) = (0, 0, 0.0);
        while i < self.terms.len() && j < other.terms.len() {
            let (a, b) = (self.terms[i], other.terms[j]);
            match a.term.cmp(&b.term) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += a.weight * b.weight;
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }
}

/// Words that say nothing about a story besides [`ENGLISH`], in the languages posts about one
/// event mix most (English, Spanish, Portuguese, Italian, French, German), and the platforms'
/// own tokens.
const STOPWORDS: &[&str] = &[
    // English, besides the words every text leaves out
    "know", "see", "say", "says", "said", "people", "gonna", "lol", "omg", "yes", "thanks", "thank",
    "please", "going", "want", "think", "need", "make", "good", "great", "day", "time", "every",
    "everyone", "thoughts", "prayers", "pray", // Spanish and Portuguese
    "que", "los", "las", "del", "por", "para", "con", "una", "uno", "como", "más", "mas", "pero",
    "sus", "este", "esta", "está", "son", "hay", "fue", "ser", "muy", "todo", "todos", "sin",
    "sobre", "entre", "desde", "hasta", "nos", "les", "ese", "esa", "eso", "ya", "el", "la", "não",
    "nao", "uma", "com", "dos", "das", "pelo", "pela", "isso", "ele", "ela", "são",
    // Italian
    "che", "non", "per", "della", "delle", "degli", "dei", "del", "nel", "nella", "alla", "alle",
    "sono", "una", "come", "anche", "più", "piu", "tutti", "questo", "questa", "dalla", "sul",
    "sulla", "gli", "hanno", "essere", "stato", "ancora", "dopo", // French and German
    "les", "des", "une", "est", "pour", "dans", "pas", "sur", "qui", "avec", "plus", "sont", "und",
    "der", "die", "das", "ist", "nicht", "mit", "ein", "eine", "auf", "für", "von", "den",
];

/// [`ENGLISH`] and [`STOPWORDS`] as a set: every word of every post is looked up.
static STOP: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| ENGLISH.iter().chain(STOPWORDS).copied().collect());

/// Splits a text into the lowercase words and hashtags (without `#`) that can name a story;
/// mentions, links, numbers and stop words are left out.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text.split_whitespace() {
        if raw.starts_with('@') || raw.contains("://") || raw.starts_with("www.") {
            continue;
        }
        let hashtag = raw.starts_with('#');
        let raw = raw.trim_start_matches('#');
        for piece in raw.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
            let piece = piece.trim_matches('\'');
            if !push_word(&mut out, piece) {
                return out;
            }
            // #KeralaFloodRelief says kerala, flood and relief too, as the posts that write
            // the words apart do.
            if hashtag {
                for part in camel_case_parts(piece).skip(1) {
                    if !push_word(&mut out, part) {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Adds a word to `out` unless it cannot name a story; false once `out` is full.
fn push_word(out: &mut Vec<String>, piece: &str) -> bool {
    let word: String = piece.chars().flat_map(char::to_lowercase).collect();
    let len = word.chars().count();
    if !(3..=40).contains(&len)
        || !word.chars().any(char::is_alphabetic)
        || word == "rt"
        || STOP.contains(word.as_str())
    {
        return true;
    }
    // Short posts are checked for repeats here; longer ones are deduplicated by term in
    // `vector`, so a 20 kB post costs no more than its length.
    if out.len() >= MAX_WORDS {
        return false;
    }
    if out.len() > 64 || !out.contains(&word) {
        out.push(word);
    }
    true
}

/// The parts of a camel-case word (`KeralaFloodRelief`: `Kerala`, `Flood`, `Relief`), each
/// starting at a capital that follows a small letter; a word without one is one part.
fn camel_case_parts(word: &str) -> impl Iterator<Item = &str> {
    let mut starts = vec![0];
    let mut previous_lower = false;
    for (i, c) in word.char_indices() {
        if c.is_uppercase() && previous_lower {
            starts.push(i);
        }
        previous_lower = c.is_lowercase();
    }
    let parts: Vec<&str> = if starts.len() == 1 {
        Vec::new()
    } else {
        starts
            .iter()
            .zip(starts.iter().skip(1).chain(std::iter::once(&word.len())))
            .map(|(&a, &b)| &word[a..b])
            .collect()
    };
    std::iter::once(word).chain(parts)
}

/// A word's bucket in the hashed vocabulary (FNV-1a; stable across processes and versions, so
/// stored story centres stay comparable).
pub fn term_of(word: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in word.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash & (VOCABULARY - 1)
}

/// Weight a word has on top of its rarity: a word every post uses still says a little (so a
/// young stream, where every word is in every post, is not all zeros), far less than a rare one.
const IDF_FLOOR: f32 = 0.3;

/// Words read from one post at most.
const MAX_WORDS: usize = 256;
/// Terms a post's vector keeps at most: its heaviest.
pub const MAX_POST_TERMS: usize = 32;

/// Buckets of the hashed vocabulary: collisions between two words of one day's news are rare.
pub const VOCABULARY: u32 = 1 << 20;

/// How common each term has been lately, decayed in event time.
///
/// A document seen at time `t` adds `exp((t - origin) / half_life·ln2)` rather than 1, so every
/// count decays without touching the table; the origin moves (and the table is rescaled) only
/// when that factor would grow too large for `f32`.
pub struct DocumentFrequencies {
    counts: Vec<f32>,
    total: f64,
    origin_ms: i64,
    scale_ms: f64,
}

impl DocumentFrequencies {
    pub fn new(half_life_secs: f64) -> Self {
        DocumentFrequencies {
            counts: vec![0.0; VOCABULARY as usize],
            total: 0.0,
            origin_ms: i64::MIN,
            scale_ms: half_life_secs.max(1.0) * 1000.0 / std::f64::consts::LN_2,
        }
    }

    fn weight_at(&mut self, at_ms: i64) -> f32 {
        if self.origin_ms == i64::MIN {
            self.origin_ms = at_ms;
        }
        let mut exponent = (at_ms - self.origin_ms) as f64 / self.scale_ms;
        if exponent > 30.0 {
            let shrink = (-exponent) as f32;
            let factor = shrink.exp();
            for c in &mut self.counts {
                *c *= factor;
            }
            self.total *= f64::from(factor);
            self.origin_ms = at_ms;
            exponent = 0.0;
        }
        // A late post counts as much as one at the origin, no more.
        exponent.max(0.0).exp() as f32
    }

    /// Counts one document's terms and returns its tf-idf vector, unit length, sorted by term.
    pub fn vector(&mut self, at_ms: i64, words: Vec<String>) -> PostVector {
        let weight = self.weight_at(at_ms);
        let mut pairs: Vec<(u32, String)> = words.into_iter().map(|w| (term_of(&w), w)).collect();
        pairs.sort_by_key(|p| p.0);
        pairs.dedup_by_key(|p| p.0);
        self.total += f64::from(weight);
        let total = self.total as f32;
        let mut vector = PostVector::default();
        let mut norm = 0.0f32;
        for (term, word) in pairs {
            let count = &mut self.counts[term as usize];
            *count += weight;
            let idf = ((total + 1.0) / (*count + 1.0)).ln() + IDF_FLOOR;
            norm += idf * idf;
            vector.terms.push(Weighted { term, weight: idf });
            vector.words.push(word.into_boxed_str());
        }
        if vector.terms.len() > MAX_POST_TERMS {
            // The heaviest terms say what the post is about; the rest would only add work.
            let mut kept: Vec<(Weighted, Box<str>)> =
                vector.terms.drain(..).zip(vector.words.drain(..)).collect();
            kept.sort_by(|a, b| {
                b.0.weight
                    .total_cmp(&a.0.weight)
                    .then(a.0.term.cmp(&b.0.term))
            });
            kept.truncate(MAX_POST_TERMS);
            kept.sort_by_key(|k| k.0.term);
            norm = kept.iter().map(|k| k.0.weight * k.0.weight).sum();
            // New vectors: the drained ones keep room for every word read, and a waiting post
            // keeps its vector for a while.
            (vector.terms, vector.words) = kept.into_iter().unzip();
        }
        let norm = norm.sqrt();
        if norm > 0.0 {
            for t in &mut vector.terms {
                t.weight /= norm;
            }
        }
        vector
    }

    pub fn memory_bytes(&self) -> usize {
        self.counts.len() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_topics_and_drop_noise() {
        let w = words("RT @bob: Explosion at the #BostonMarathon finish line!! http://t.co/x 2013");
        assert_eq!(
            w,
            vec![
                "explosion",
                "bostonmarathon",
                "boston",
                "marathon",
                "finish",
                "line"
            ]
        );
        assert_eq!(
            words("#prayforkerala #StandWithKerala #NYC"),
            vec!["prayforkerala", "standwithkerala", "stand", "kerala", "nyc"]
        );
        assert_eq!(
            words("Terremoto en Guatemala, más de 40 muertos"),
            vec!["terremoto", "guatemala", "muertos"]
        );
    }

    #[test]
    fn rare_words_weigh_more_and_vectors_are_unit_length() {
        let mut df = DocumentFrequencies::new(86_400.0);
        for i in 0..50 {
            df.vector(i * 1000, words("flood warning"));
        }
        let v = df.vector(60_000, words("flood calgary"));
        let weight = |w: &str| {
            v.terms
                .iter()
                .find(|t| t.term == term_of(w))
                .unwrap()
                .weight
        };
        assert!(weight("calgary") > weight("flood"));
        assert!((v.dot(&v) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn a_post_of_thousands_of_words_keeps_its_heaviest_terms() {
        let text: String = (0..5_000).map(|i| format!("w{i}x ")).collect();
        let w = words(&text);
        assert_eq!(w.len(), MAX_WORDS);
        let mut df = DocumentFrequencies::new(86_400.0);
        let v = df.vector(0, w);
        assert_eq!(v.terms.len(), MAX_POST_TERMS);
        assert!(
            v.terms.capacity() <= 2 * MAX_POST_TERMS,
            "no room kept for every word"
        );
        assert!(v.words.capacity() <= 2 * MAX_POST_TERMS);
        assert!(v.terms.windows(2).all(|p| p[0].term < p[1].term));
        assert!((v.dot(&v) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn frequencies_decay_in_event_time() {
        let mut df = DocumentFrequencies::new(3600.0);
        for i in 0..50 {
            df.vector(i, words("meteor"));
        }
        let soon = df.vector(1000, words("meteor chelyabinsk"));
        let mut later = DocumentFrequencies::new(3600.0);
        for i in 0..50 {
            later.vector(i, words("meteor"));
        }
        let much_later = later.vector(48 * 3_600_000, words("meteor chelyabinsk"));
        let share = |v: &PostVector| {
            v.terms
                .iter()
                .find(|t| t.term == term_of("meteor"))
                .unwrap()
                .weight
        };
        assert!(share(&much_later) > share(&soon));
    }
}
