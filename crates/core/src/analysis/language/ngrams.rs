//! A naive Bayes model of character n-grams, learnt from tweets in the languages the shipped
//! models read. The trigram detector was built from books and encyclopaedias: on tweets it is
//! unsure of a third to a half of them and names one English tweet in ten as another language,
//! and every such answer sends a post to the wrong model. Tweets differ from prose in their
//! spelling, slang and code-mixing (romanised Hindi reads as English to it), and a model
//! learnt from tweets reads them as they are written.
//!
//! The model is a table of quantised costs, `-ln P(n-gram | language)`, over hashed n-grams of
//! one to four characters of each word (padded by a space on each side) and the word itself:
//! `ngrams.bin`, written by `pulse eval language --data DIR --write-model FILE` from the
//! training splits (counts only; no text is kept).

use std::sync::OnceLock;

const MAGIC: &[u8; 6] = b"PLNG1\n";
/// Costs are stored as `round(SCALE * -ln p)`, at most 255.
const SCALE: f64 = 15.0;
const MAX_N: usize = 4;
/// Additive smoothing of the counts.
const ALPHA: f64 = 0.5;
/// Hashed buckets, as a power of two: 2^14 lose nothing measurable against 2^17 on the
/// validation tweets and keep the table at 16 KiB a language.
pub const DEFAULT_BITS: u8 = 14;

/// A language the model names, with how far ahead of the next one it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guess<'a> {
    pub code: &'a str,
    /// The log-likelihood lead over the next language, in nats.
    pub margin: f64,
}

/// The model: for each bucket, one cost per language.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramModel {
    langs: Vec<String>,
    bits: u8,
    costs: Vec<u8>,
}

impl NgramModel {
    /// The model shipped with Pulse.
    pub fn shipped() -> &'static NgramModel {
        static MODEL: OnceLock<NgramModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            NgramModel::from_bytes(include_bytes!("ngrams.bin"))
                .expect("the shipped language n-gram model is well formed")
        })
    }

    /// Learns the model from texts of each language.
    pub fn train(sets: &[(&str, Vec<String>)], bits: u8) -> NgramModel {
        let buckets = 1usize << bits;
        let langs: Vec<String> = sets.iter().map(|(l, _)| l.to_string()).collect();
        let mut costs = vec![0u8; buckets * langs.len()];
        for (li, (_, texts)) in sets.iter().enumerate() {
            let mut counts = vec![0u32; buckets];
            let mut total = 0u64;
            for text in texts {
                features(text, bits, |b| {
                    counts[b as usize] += 1;
                    total += 1;
                });
            }
            let denominator = total as f64 + ALPHA * buckets as f64;
            for (b, &c) in counts.iter().enumerate() {
                let cost = -((f64::from(c) + ALPHA) / denominator).ln() * SCALE;
                costs[b * langs.len() + li] = cost.round().clamp(0.0, 255.0) as u8;
            }
        }
        NgramModel { langs, bits, costs }
    }

    /// The languages it names.
    pub fn languages(&self) -> &[String] {
        &self.langs
    }

    pub fn knows(&self, code: &str) -> bool {
        self.langs.iter().any(|l| l == code)
    }

    /// The likeliest language of `text` (mentions and links already left out); `None` when it
    /// has no word.
    pub fn classify(&self, text: &str) -> Option<Guess<'_>> {
        let n = self.langs.len();
        let mut sums = vec![0u32; n];
        let mut seen = false;
        features(text, self.bits, |b| {
            seen = true;
            let row = &self.costs[b as usize * n..(b as usize + 1) * n];
            for (s, &c) in sums.iter_mut().zip(row) {
                *s += u32::from(c);
            }
        });
        if !seen || n == 0 {
            return None;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (sums[i], i));
        let best = order[0];
        let margin = order
            .get(1)
            .map_or(f64::INFINITY, |&i| f64::from(sums[i] - sums[best]) / SCALE);
        Some(Guess {
            code: &self.langs[best],
            margin,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(self.bits);
        out.push(self.langs.len() as u8);
        for l in &self.langs {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.extend_from_slice(&self.costs);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<NgramModel, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("not a language n-gram model")?;
        let (&bits, rest) = rest.split_first().ok_or("truncated")?;
        let (&count, mut rest) = rest.split_first().ok_or("truncated")?;
        if !(8..=24).contains(&bits) {
            return Err(format!("{bits} bucket bits"));
        }
        let mut langs = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let (&len, tail) = rest.split_first().ok_or("truncated")?;
            let len = usize::from(len);
            let code = tail.get(..len).ok_or("truncated")?;
            langs.push(String::from_utf8(code.to_vec()).map_err(|e| e.to_string())?);
            rest = &tail[len..];
        }
        if rest.len() != (1usize << bits) * langs.len() {
            return Err(format!("{} cost bytes", rest.len()));
        }
        Ok(NgramModel {
            langs,
            bits,
            costs: rest.to_vec(),
        })
    }
}

/// Calls `each` with the bucket of every n-gram of every word of `text` (lowercased; numbers
/// left out), and of each word whole.
fn features(text: &str, bits: u8, mut each: impl FnMut(u32)) {
    let mask = (1u64 << bits) - 1;
    let lower = text.to_lowercase();
    let mut padded = String::new();
    let mut bounds: Vec<usize> = Vec::new();
    for word in lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
    {
        padded.clear();
        padded.push(' ');
        padded.push_str(word);
        padded.push(' ');
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let chars = bounds.len() - 1;
        for n in 1..=MAX_N.min(chars) {
            for i in 0..=chars - n {
                let gram = &padded.as_bytes()[bounds[i]..bounds[i + n]];
                each((fnv1a(0, gram) & mask) as u32);
            }
        }
        each((fnv1a(b'w', padded.as_bytes()) & mask) as u32);
    }
}

/// FNV-1a with a kind byte folded into the offset basis: stable across builds and platforms,
/// so the shipped table reads the same buckets everywhere.
fn fnv1a(kind: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn learns_two_languages_and_round_trips_through_bytes() {
        let model = NgramModel::train(
            &[
                (
                    "en",
                    texts(&["the weather is nice today", "I think that this is good"]),
                ),
                (
                    "de",
                    texts(&["das Wetter ist heute schön", "ich glaube das ist gut"]),
                ),
            ],
            10,
        );
        let back = NgramModel::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.classify("is this the weather").unwrap().code, "en");
        let de = back.classify("das ist schön").unwrap();
        assert_eq!(de.code, "de");
        assert!(de.margin > 0.0);
        assert_eq!(back.classify("1234 !!"), None);
    }

    #[test]
    fn rejects_a_damaged_table() {
        let bytes = NgramModel::train(&[("en", texts(&["a b c"]))], 8).to_bytes();
        assert!(NgramModel::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(NgramModel::from_bytes(b"nonsense").is_err());
    }

    #[test]
    fn the_shipped_model_reads_the_languages_of_the_multilingual_model() {
        let model = NgramModel::shipped();
        for code in ["en", "de", "es", "fr", "it", "pt", "ar", "hi"] {
            assert!(model.knows(code), "{code}");
        }
    }
}
