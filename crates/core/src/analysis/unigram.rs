//! A Unigram (SentencePiece) tokenizer model that gives exactly the pieces of the `tokenizers`
//! crate's own, in a fraction of its memory. The crate's model keeps a byte trie with a hash map
//! in every node: for the 250,000 pieces of XLM-RoBERTa's vocabulary that is close to 300 MB,
//! more than the int8 model it feeds. Here the pieces live in one hash map, and the best path is
//! found by looking up every prefix of the rest of the text up to the longest piece, in order of
//! length, which is the order the trie yields them in; ties and unknown characters are settled
//! as the crate settles them (the first of equal scores is kept; runs of unknown characters are
//! fused into one unknown piece).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::{Model, Result, Token};

/// What a piece not in the vocabulary scores below the lowest piece, as in SentencePiece.
const UNKNOWN_PENALTY: f64 = 10.0;

pub struct CompactUnigram {
    ids: HashMap<Box<str>, u32>,
    scores: Vec<f64>,
    unk_id: usize,
    min_score: f64,
    /// Bytes of the longest piece: no prefix longer than this can match.
    longest: usize,
}

#[derive(Deserialize)]
struct UnigramJson {
    #[serde(rename = "type")]
    kind: String,
    unk_id: Option<usize>,
    vocab: Vec<(String, f64)>,
    #[serde(default)]
    byte_fallback: bool,
}

impl CompactUnigram {
    /// `None` for vocabularies this model does not reproduce exactly (byte fallback, no unknown
    /// piece): those keep the crate's model.
    pub fn from_vocab(
        vocab: Vec<(String, f64)>,
        unk_id: Option<usize>,
        byte_fallback: bool,
    ) -> Option<Self> {
        let unk_id = unk_id.filter(|&id| id < vocab.len() && !byte_fallback)?;
        let mut ids = HashMap::with_capacity(vocab.len());
        let mut scores = Vec::with_capacity(vocab.len());
        let (mut min_score, mut longest) = (f64::INFINITY, 0);
        for (id, (piece, score)) in vocab.into_iter().enumerate() {
            longest = longest.max(piece.len());
            min_score = min_score.min(score);
            scores.push(score);
            // A repeated piece maps to its last id, as in the crate.
            ids.insert(piece.into_boxed_str(), id as u32);
        }
        ids.shrink_to_fit();
        Some(Self {
            ids,
            scores,
            unk_id,
            min_score,
            longest,
        })
    }

    /// The pieces of `text` as byte ranges with their ids.
    fn pieces(&self, text: &str) -> Vec<(usize, usize, u32)> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f64,
            starts_at: Option<usize>,
        }
        let size = text.len();
        let unk_score = self.min_score - UNKNOWN_PENALTY;
        let unk = self.unk_id as u32;
        let mut best = vec![
            Best {
                id: 0,
                score: 0.0,
                starts_at: None
            };
            size + 1
        ];
        let offer = |best: &mut [Best], end: usize, id: u32, score: f64, start: usize| {
            let node = &mut best[end];
            if node.starts_at.is_none() || score > node.score {
                *node = Best {
                    id,
                    score,
                    starts_at: Some(start),
                };
            }
        };
        let mut start = 0;
        while start < size {
            let here = best[start].score;
            let rest = &text[start..];
            let first_char = rest.chars().next().map_or(1, char::len_utf8);
            let mut single_char_piece = false;
            let limit = rest.len().min(self.longest);
            for (offset, c) in rest.char_indices() {
                let end = offset + c.len_utf8();
                if end > limit {
                    break;
                }
                if let Some(&id) = self.ids.get(&rest[..end]) {
                    offer(
                        &mut best,
                        start + end,
                        id,
                        here + self.scores[id as usize],
                        start,
                    );
                    single_char_piece |= end == first_char;
                }
            }
            if !single_char_piece {
                offer(&mut best, start + first_char, unk, here + unk_score, start);
            }
            start += first_char;
        }
        let mut pieces = Vec::new();
        let mut end = size;
        while end > 0 {
            let node = best[end];
            let start = node.starts_at.unwrap_or(0);
            match pieces.last_mut() {
                // Fused: a run of unknown pieces becomes one.
                Some((s, _, id)) if node.id == unk && *id == unk => *s = start,
                _ => pieces.push((start, end, node.id)),
            }
            end = start;
        }
        pieces.reverse();
        pieces
    }
}

impl<'de> Deserialize<'de> for CompactUnigram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let json = UnigramJson::deserialize(deserializer)?;
        if json.kind != "Unigram" {
            return Err(serde::de::Error::custom(format!(
                "expected a Unigram model, found {}",
                json.kind
            )));
        }
        CompactUnigram::from_vocab(json.vocab, json.unk_id, json.byte_fallback).ok_or_else(|| {
            serde::de::Error::custom(
                "a Unigram model with byte fallback or without an unknown piece",
            )
        })
    }
}

impl Model for CompactUnigram {
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sequence: &str) -> Result<Vec<Token>> {
        Ok(self
            .pieces(sequence)
            .into_iter()
            .map(|(start, end, id)| {
                // A fused run of unknown characters is looked up whole, as the crate does.
                let piece = &sequence[start..end];
                let id = self.ids.get(piece).copied().unwrap_or(id);
                Token::new(id, piece.to_string(), (start, end))
            })
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.ids
            .iter()
            .find(|(_, &i)| i == id)
            .map(|(piece, _)| piece.to_string())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.ids.iter().map(|(p, &i)| (p.to_string(), i)).collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.scores.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> Result<Vec<PathBuf>> {
        Err("the compact Unigram model is read-only".into())
    }

    fn get_trainer(&self) -> Self::Trainer {
        UnigramTrainer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::unigram::Unigram;

    fn both(vocab: &[(&str, f64)], unk: usize) -> (CompactUnigram, Unigram) {
        let vocab: Vec<(String, f64)> = vocab.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        (
            CompactUnigram::from_vocab(vocab.clone(), Some(unk), false).unwrap(),
            Unigram::from(vocab, Some(unk), false).unwrap(),
        )
    }

    fn tokens(model: &impl Model, text: &str) -> Vec<(u32, String, (usize, usize))> {
        model
            .tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.value, t.offsets))
            .collect()
    }

    #[test]
    fn same_pieces_as_the_crate_on_ties_unknowns_and_multibyte_text() {
        let (compact, reference) = both(
            &[
                ("<unk>", 0.0),
                ("a", -1.0),
                ("b", -1.0),
                ("ab", -2.0),
                ("abc", -2.5),
                ("c", -1.5),
                ("ü", -1.0),
                ("über", -3.0),
                ("ber", -1.0),
                ("日本", -2.0),
                ("日", -1.0),
                ("ab", -0.5),
            ],
            0,
        );
        for text in [
            "abcabc",
            "ab",
            "xyzab",
            "abxyz",
            "überab",
            "über日本語",
            "語語a語",
            "",
            "c",
            "日本日本本",
        ] {
            assert_eq!(tokens(&compact, text), tokens(&reference, text), "{text:?}");
        }
    }

    #[test]
    fn byte_fallback_is_left_to_the_crate() {
        let vocab = vec![("<unk>".to_string(), 0.0), ("a".to_string(), -1.0)];
        assert!(CompactUnigram::from_vocab(vocab.clone(), Some(0), true).is_none());
        assert!(CompactUnigram::from_vocab(vocab, None, false).is_none());
    }
}
