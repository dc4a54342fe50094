//! The built-in lexicon analyzer. It needs no model files and costs microseconds per post, so
//! Pulse can always analyse the full firehose, and it is the fallback when no transformer
//! bundle is installed. Its scores are deliberately simple and explainable.
//!
//! Each text is lowercased and tokenised once, into buffers reused across calls. Tokens are
//! runs of letters and digits (apostrophes and `*` allowed inside, so `don't` and `f*ck` stay
//! whole), plus one token per emoji or symbol and per ASCII emoticon (`:)`, `:'(`, `<3`, ...).
//! Letters repeated three or more times are capped at two (`goooood` -> `good`); when that
//! form is unknown, the run is collapsed to one letter (`hateeee` -> `hate`). Cue words and
//! phrases are looked up in one hash map built by [`LexiconAnalyzer::new`]. A phrase match
//! consumes its tokens, and when several cues start at one token the strongest value of each
//! score wins. A cue is *negated* when one of the `NEGATION_WINDOW` tokens before it is a
//! negator (`not`, `never`, `don't`, any `...n't`), except in "can't wait".
//!
//! # Scores
//!
//! * **Sentiment**: the VADER compound score `c` in -1..=1. The label is negative when
//!   `c <= NEGATIVE_MAX_COMPOUND`, positive when `c >= POSITIVE_MIN_COMPOUND`, neutral in
//!   between. The thresholds maximise macro-averaged recall on the TweetEval sentiment
//!   validation split; VADER's usual +-0.05 calls too many plain statements positive.
//! * **Emotions**: every cue adds its weight to its emotions. A negated joy or optimism cue
//!   ("not happy") adds `NEGATED_POSITIVE_TO_SADNESS` of its weight to sadness instead; a
//!   negated anger or sadness cue is dropped. The four sums are divided by their total, so the
//!   distribution sums to 1 when any cue fired and is all zero otherwise.
//! * **Toxicity**: a noisy-OR over the toxic cues found, `t = 1 - prod(1 - w_i)`. Tiers keep
//!   one mild swear (`MILD_SWEAR`) far from 1. An insult with a second-person word ("you",
//!   "your", "u", ...) within `TARGET_WINDOW` tokens counts `TARGETED_BOOST` times its weight,
//!   at most `MAX_CUE_TOXICITY`.
//! * **Churn risk**:
//!
//!   ```text
//!   intent   = 1 - prod(1 - w_j)          over non-negated churn-intent cues (w_j >= 0.6)
//!   distress = NEGATIVITY_WEIGHT * negativity + ANGER_WEIGHT * anger      (in 0..=1)
//!   churn    = intent + (1 - intent) * distress    when intent > 0
//!   churn    = NO_INTENT_SCALE * distress          otherwise
//!   ```
//!
//!   where `negativity` is `max(0, -c)` here and P(negative) with a transformer bundle, and
//!   `anger` is the anger share of the emotion distribution. An intent phrase alone
//!   gives at least 0.6, negativity and anger push it towards 1, and a complaint without
//!   intent stays at or below `NO_INTENT_SCALE`. A positive text without intent scores 0.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use vader_sentiment::SentimentIntensityAnalyzer;

mod words;

use self::words::*;
use super::Analyzer;
use crate::models::text::{prefix_bytes, prefix_chars};
use crate::models::{
    Analysis, EmotionScores, LanguageSource, LanguageSupport, Probability, SentimentLabel,
    SentimentScore,
};

/// Name and version recorded with every result; bump the version when scores change.
const MODEL_NAME: &str = "lexicon-vader@1";

/// Compound scores at or below this are labelled negative.
const NEGATIVE_MAX_COMPOUND: f32 = -0.08;
/// Compound scores at or above this are labelled positive.
const POSITIVE_MIN_COMPOUND: f32 = 0.40;

/// Longer texts are cut (at a character boundary) so that one huge post cannot stall a worker;
/// the opening of a post carries its tone.
pub const MAX_ANALYZED_BYTES: usize = 8 * 1024;

/// How many tokens before a cue are searched for a negator.
const NEGATION_WINDOW: usize = 3;
/// A run of this many identical letters marks an elongated word ("soooo").
const ELONGATION_RUN: usize = 3;
/// Trailing stars after a stem this short mask a swear ("f***") rather than add emphasis.
const MAX_MASKED_STEM: usize = 2;
/// Share of a negated joy or optimism cue's weight that counts as sadness.
const NEGATED_POSITIVE_TO_SADNESS: f32 = 0.5;

/// Emotion weight multiplier for a cue written as a hashtag ("#furious"): a tag is the
/// author naming the feeling.
const HASHTAG_EMPHASIS: f32 = 2.0;
/// Anger weight per unit of toxicity: swearing and insults mostly vent anger.
const TOXICITY_TO_ANGER: f32 = 1.0;
/// Multiplier for an insult aimed at the reader.
const TARGETED_BOOST: f32 = 1.6;
/// Upper bound for one cue, so certainty only comes from several signals.
const MAX_CUE_TOXICITY: f32 = 0.9;
/// How many tokens either side of an insult are searched for a second-person word.
const TARGET_WINDOW: usize = 3;

/// Weight of negativity (the negative part of the compound score) in churn distress.
const NEGATIVITY_WEIGHT: f32 = 0.6;
/// Weight of the anger share in churn distress.
const ANGER_WEIGHT: f32 = 0.4;
/// Churn risk of an unhappy text that states no intent is at most this.
const NO_INTENT_SCALE: f32 = 0.35;

/// Emotion slots in the per-cue arrays, in `Emotion::ALL` order.
const ANGER: usize = 0;
/// See [`ANGER`].
const JOY: usize = 1;
/// See [`ANGER`].
const OPTIMISM: usize = 2;
/// See [`ANGER`].
const SADNESS: usize = 3;
/// Number of emotion slots.
const EMOTIONS: usize = 4;

/// FNV-1a offset basis, the start of [`WordHasher`]: short keys hash far faster than with
/// SipHash, and the maps are never written with user data, so hash flooding is no concern.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime, the multiplier of [`WordHasher`].
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// Bytes hashed per step by [`WordHasher`].
const WORD_BYTES: usize = 8;
/// MurmurHash3 `fmix64` shift and multipliers, the finaliser of [`WordHasher`].
const FMIX_SHIFT: u32 = 33;
/// See [`FMIX_SHIFT`].
const FMIX_MULTIPLIER_1: u64 = 0xff51_afd7_ed55_8ccd;
/// See [`FMIX_SHIFT`].
const FMIX_MULTIPLIER_2: u64 = 0xc4ce_b9fe_1a85_ec53;

/// A small multiplicative hash for the many short, trusted keys looked up per text: FNV-1a's
/// step applied to 8-byte words, then the MurmurHash3 finaliser so that every input bit
/// reaches the low bits the table indexes by.
struct WordHasher(u64);

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher(FNV_OFFSET)
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        let mut hash = self.0;
        hash ^= hash >> FMIX_SHIFT;
        hash = hash.wrapping_mul(FMIX_MULTIPLIER_1);
        hash ^= hash >> FMIX_SHIFT;
        hash = hash.wrapping_mul(FMIX_MULTIPLIER_2);
        hash ^ (hash >> FMIX_SHIFT)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(WORD_BYTES);
        for chunk in &mut chunks {
            let mut word = [0u8; WORD_BYTES];
            word.copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(FNV_PRIME);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
}

/// The hasher for every lookup table.
type FastHash = BuildHasherDefault<WordHasher>;

/// What one word or phrase signals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cue {
    emotion: [f32; EMOTIONS],
    toxicity: f32,
    /// Boost toxicity when a second-person word is near.
    aimable: bool,
    churn: f32,
}

impl Cue {
    /// Field-wise maximum, for cues that start at the same token.
    fn merge(&mut self, other: &Cue) {
        for (mine, theirs) in self.emotion.iter_mut().zip(other.emotion) {
            *mine = mine.max(theirs);
        }
        self.toxicity = self.toxicity.max(other.toxicity);
        self.aimable |= other.aimable;
        self.churn = self.churn.max(other.churn);
    }
}

/// A multi-word cue, stored under its first word.
struct Phrase {
    rest: Box<[&'static str]>,
    cue: Cue,
}

/// Everything keyed by one first word.
#[derive(Default)]
struct Entry {
    word: Option<Cue>,
    phrases: Vec<Phrase>,
}

/// The immutable lookup tables.
struct Lexicon {
    entries: HashMap<&'static str, Entry, FastHash>,
    negators: HashSet<&'static str, FastHash>,
    second_person: HashSet<&'static str, FastHash>,
    leaving_not_churn: HashSet<&'static str, FastHash>,
}

impl Lexicon {
    /// Builds every table once, merging the lists so one lookup per token finds all cues.
    fn build() -> Self {
        let mut lexicon = Lexicon {
            entries: HashMap::default(),
            negators: NEGATORS.iter().copied().collect(),
            second_person: SECOND_PERSON.iter().copied().collect(),
            leaving_not_churn: LEAVING_NOT_CHURN.iter().copied().collect(),
        };
        for (lists, slot) in [
            (ANGER_CUES, ANGER),
            (JOY_CUES, JOY),
            (OPTIMISM_CUES, OPTIMISM),
            (SADNESS_CUES, SADNESS),
        ] {
            for &(text, weight) in lists {
                lexicon.add(text, |cue| cue.emotion[slot] += weight);
            }
        }
        for &(text, weight) in PROFANITY_CUES {
            lexicon.add(text, |cue| cue.toxicity = cue.toxicity.max(weight));
        }
        for &(text, weight) in INSULT_CUES {
            lexicon.add(text, |cue| {
                cue.toxicity = cue.toxicity.max(weight);
                cue.aimable = true;
            });
        }
        for &(text, weight) in CHURN_CUES.iter().chain(LOCAL_CHURN_CUES) {
            lexicon.add(text, |cue| cue.churn = cue.churn.max(weight));
        }
        lexicon
    }

    /// Adds or updates the cue for a word or phrase.
    fn add(&mut self, text: &'static str, update: impl FnOnce(&mut Cue)) {
        let mut words = text.split(' ');
        let first = words.next().unwrap_or_default();
        let rest: Vec<&'static str> = words.collect();
        let entry = self.entries.entry(first).or_default();
        if rest.is_empty() {
            update(entry.word.get_or_insert_with(Cue::default));
        } else if let Some(phrase) = entry.phrases.iter_mut().find(|p| *p.rest == *rest) {
            update(&mut phrase.cue);
        } else {
            let mut cue = Cue::default();
            update(&mut cue);
            entry.phrases.push(Phrase {
                rest: rest.into_boxed_slice(),
                cue,
            });
        }
    }

    /// Whether `word` flips the cue after it.
    fn is_negator(&self, word: &str) -> bool {
        self.negators.contains(word) || word.ends_with("n't")
    }
}

/// One token: where it lies in the normalised buffer and in the source text.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    source_start: usize,
    source_end: usize,
    /// Had a run of `ELONGATION_RUN` or more identical letters.
    elongated: bool,
    /// Written as a hashtag.
    hashtag: bool,
}

/// Buffers reused across texts so the hot path does not allocate.
#[derive(Default)]
struct Scratch {
    norm: String,
    tokens: Vec<Token>,
    collapsed: String,
}

/// The token currently being built.
struct OpenToken {
    start: usize,
    source_start: usize,
    last: char,
    run: usize,
    elongated: bool,
}

/// The length of the link or `@handle` that `rest` starts with: what the models read as
/// `http` and `@user` (see `analysis::transformer::preprocess`), and so no words of the post's
/// own. Read as words, a link's slug (`/why-advertisers-are-leaving-x`) or a handle
/// (`@refund_bot`) gave churn intent and toxicity to posts that only shared or named them.
fn unread_span(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let starts = |prefix: &str| {
        bytes
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    if starts("http://") || starts("https://") || starts("www.") {
        return Some(rest.find(char::is_whitespace).unwrap_or(rest.len()));
    }
    let handle = rest.strip_prefix('@')?;
    let body = handle
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(handle.len());
    (body > 0).then_some(1 + body)
}

impl Scratch {
    /// Lowercases and splits `text` into `self.tokens`.
    fn tokenize(&mut self, text: &str) {
        self.norm.clear();
        self.tokens.clear();
        let bytes = text.as_bytes();
        let mut open: Option<OpenToken> = None;
        let mut i = 0;
        while let Some(c) = text.get(i..).and_then(|rest| rest.chars().next()) {
            let width = c.len_utf8();
            if open.is_none() {
                if let Some(len) = unread_span(&text[i..]) {
                    i += len;
                    continue;
                }
            }
            if c.is_alphanumeric() {
                let token = open.get_or_insert(OpenToken {
                    start: self.norm.len(),
                    source_start: i,
                    last: '\0',
                    run: 0,
                    elongated: false,
                });
                if c == token.last && c.is_alphabetic() {
                    token.run += 1;
                    if token.run >= ELONGATION_RUN {
                        token.elongated = true;
                        i += width;
                        continue;
                    }
                } else {
                    token.last = c;
                    token.run = 1;
                }
                if c.is_ascii() {
                    self.norm.push(c.to_ascii_lowercase());
                } else if c == 'İ' {
                    // Turkish dotted capital: `i`, not `i` and a combining dot.
                    self.norm.push('i');
                } else {
                    self.norm.extend(c.to_lowercase());
                }
            } else if is_apostrophe(c) || c == '*' {
                if let Some(token) = open.as_mut() {
                    self.norm.push(if c == '*' { '*' } else { '\'' });
                    token.last = c;
                    token.run = 1;
                }
            } else if is_invisible(c) {
                // Joiners, variation selectors and combining marks neither split nor add.
            } else {
                self.close(text, open.take(), i);
                if c.is_ascii() {
                    if let Some((emoticon, len)) = emoticon(&bytes[i..]) {
                        self.push_whole(emoticon, i, i + len);
                        i += len;
                        continue;
                    }
                } else if !c.is_whitespace() {
                    let start = self.norm.len();
                    self.norm.push(c);
                    self.tokens.push(Token {
                        start,
                        end: self.norm.len(),
                        source_start: i,
                        source_end: i + width,
                        elongated: false,
                        hashtag: false,
                    });
                }
            }
            i += width;
        }
        self.close(text, open, text.len());
    }

    /// Ends the open token, dropping trailing apostrophes and asterisks.
    fn close(&mut self, source: &str, open: Option<OpenToken>, source_end: usize) {
        let Some(token) = open else { return };
        trim_token_end(&mut self.norm, token.start);
        if self.norm.len() > token.start {
            self.tokens.push(Token {
                start: token.start,
                end: self.norm.len(),
                source_start: token.source_start,
                source_end,
                elongated: token.elongated,
                hashtag: token.source_start > 0
                    && source.as_bytes().get(token.source_start - 1) == Some(&b'#'),
            });
        }
    }

    /// Adds a ready-made token, such as a canonical emoticon.
    fn push_whole(&mut self, text: &str, source_start: usize, source_end: usize) {
        let start = self.norm.len();
        self.norm.push_str(text);
        self.tokens.push(Token {
            start,
            end: self.norm.len(),
            source_start,
            source_end,
            elongated: false,
            hashtag: false,
        });
    }

    /// The normalised text of token `index`.
    fn word(&self, index: usize) -> &str {
        let token = &self.tokens[index];
        &self.norm[token.start..token.end]
    }
}

/// Apostrophes in all the forms keyboards produce, so "don’t" matches "don't".
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}')
}

/// Characters that only decorate their neighbours.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{00AD}'
        | '\u{1F3FB}'..='\u{1F3FF}')
}

/// Recognises an ASCII emoticon at the start of `rest`: its canonical form and byte length.
fn emoticon(rest: &[u8]) -> Option<(&'static str, usize)> {
    let (canonical, len) = match rest {
        [b'<', b'3', ..] => ("<3", 2),
        [b'>', b':', b'(' | b'[', ..] => (">:(", 3),
        [b'>', b':', b'-', b'(' | b'[', ..] => (">:(", 4),
        [b':' | b';' | b'=', b'-', mouth, ..] => (mouth_emoticon(*mouth, false)?, 3),
        [b':', b'\'', mouth, ..] => (mouth_emoticon(*mouth, true)?, 3),
        [b':' | b';' | b'=', mouth, ..] => (mouth_emoticon(*mouth, false)?, 2),
        _ => return None,
    };
    // ":Done" or "x:password" are words, not faces.
    let glued = rest.get(len).is_some_and(u8::is_ascii_alphanumeric);
    (!glued).then_some((canonical, len))
}

/// The canonical emoticon for a mouth character, with or without a tear.
fn mouth_emoticon(mouth: u8, tear: bool) -> Option<&'static str> {
    match (mouth, tear) {
        (b')' | b']' | b'D' | b'P' | b'p', false) => Some(":)"),
        (b'(' | b'[', false) => Some(":("),
        (b'(' | b'[', true) => Some(":'("),
        (b'@', false) => Some(">:("),
        _ => None,
    }
}

/// Lowercases `source` into `out`, collapsing every run of `min_run` or more identical
/// characters to one.
fn collapse_runs(source: &str, min_run: usize, out: &mut String) {
    out.clear();
    let mut chars = source.chars().filter(|&c| !is_invisible(c)).peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.peek() == Some(&c) {
            chars.next();
            run += 1;
        }
        let kept = if run >= min_run { 1 } else { run };
        for _ in 0..kept {
            if is_apostrophe(c) {
                out.push('\'');
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
    trim_token_end(out, 0);
}

/// Drops trailing apostrophes and emphasis stars from the token that starts at `start`.
/// Stars stay after a stem of at most `MAX_MASKED_STEM` characters, as in "f***" or "sh**".
fn trim_token_end(buffer: &mut String, start: usize) {
    while buffer.len() > start && buffer.ends_with('\'') {
        buffer.pop();
    }
    let stem_end = start + buffer[start..].trim_end_matches('*').len();
    let stem_chars = buffer[start..stem_end].chars().count();
    if stem_chars == 0 || stem_chars > MAX_MASKED_STEM {
        buffer.truncate(stem_end);
    }
}

/// What the cues of one text add up to.
struct CueTotals {
    emotion: [f32; EMOTIONS],
    /// Product of (1 - toxicity) over toxic cues.
    non_toxic: f32,
    /// Product of (1 - intent) over churn cues.
    no_intent: f32,
}

impl Lexicon {
    /// Sums the cues of the tokenised `text`, one pass over its tokens.
    fn score(&self, scratch: &mut Scratch, text: &str) -> CueTotals {
        let mut totals = CueTotals {
            emotion: [0.0; EMOTIONS],
            non_toxic: 1.0,
            no_intent: 1.0,
        };
        let count = scratch.tokens.len();
        let mut i = 0;
        while i < count {
            let Some(entry) = self.lookup(scratch, text, i) else {
                i += 1;
                continue;
            };
            let mut cue = entry.word;
            let mut end = i + 1;
            if let Some(word_cue) = cue.as_mut() {
                if word_cue.churn > 0.0
                    && scratch.word(i) == LEAVING
                    && i + 1 < count
                    && self.leaving_not_churn.contains(scratch.word(i + 1))
                {
                    word_cue.churn = 0.0;
                }
            }
            for phrase in &entry.phrases {
                let phrase_end = i + 1 + phrase.rest.len();
                let matches = phrase_end <= count
                    && phrase
                        .rest
                        .iter()
                        .enumerate()
                        .all(|(k, word)| scratch.word(i + 1 + k) == *word);
                if matches {
                    cue.get_or_insert_with(Cue::default).merge(&phrase.cue);
                    end = end.max(phrase_end);
                }
            }
            if let Some(cue) = cue {
                self.apply(&cue, scratch, i, end, &mut totals);
            }
            i = end;
        }
        if !text.is_ascii() {
            unspaced_churn(text, &mut totals);
        }
        totals
    }

    /// The entry for token `index`, trying the laughter, possessive and de-elongated forms on
    /// a miss.
    fn lookup<'a>(&'a self, scratch: &mut Scratch, text: &str, index: usize) -> Option<&'a Entry> {
        let word = scratch.word(index);
        if let Some(entry) = self.entries.get(word) {
            return Some(entry);
        }
        if LAUGHTER_PREFIXES
            .iter()
            .any(|prefix| word.starts_with(prefix))
        {
            return self.entries.get(LAUGHTER_CUE);
        }
        if let Some(entry) = word
            .strip_suffix("'s")
            .and_then(|stem| self.entries.get(stem))
        {
            return Some(entry);
        }
        let token = scratch.tokens[index];
        if !token.elongated {
            return None;
        }
        let source = text.get(token.source_start..token.source_end)?;
        // First undo only the drawn-out runs ("happyyyy"), then every doubled letter too
        // ("fuuckkkk").
        for min_run in [ELONGATION_RUN, 2] {
            collapse_runs(source, min_run, &mut scratch.collapsed);
            if let Some(entry) = self.entries.get(scratch.collapsed.as_str()) {
                return Some(entry);
            }
        }
        None
    }

    /// Adds the cue found at tokens `start..end` to the totals.
    fn apply(
        &self,
        cue: &Cue,
        scratch: &Scratch,
        start: usize,
        end: usize,
        totals: &mut CueTotals,
    ) {
        let wants_negation = cue.churn > 0.0 || cue.emotion.iter().any(|&w| w > 0.0);
        let negated = wants_negation && self.negated(scratch, start);
        let emphasis = if scratch.tokens[start].hashtag {
            HASHTAG_EMPHASIS
        } else {
            1.0
        };
        if negated {
            totals.emotion[SADNESS] +=
                (cue.emotion[JOY] + cue.emotion[OPTIMISM]) * NEGATED_POSITIVE_TO_SADNESS * emphasis;
        } else {
            for (total, weight) in totals.emotion.iter_mut().zip(cue.emotion) {
                *total += weight * emphasis;
            }
            totals.emotion[ANGER] += cue.toxicity * TOXICITY_TO_ANGER * emphasis;
            totals.no_intent *= 1.0 - cue.churn;
        }
        if cue.toxicity > 0.0 {
            let mut toxicity = cue.toxicity;
            if cue.aimable && self.aimed_at_reader(scratch, start, end) {
                toxicity = (toxicity * TARGETED_BOOST)
                    .min(MAX_CUE_TOXICITY)
                    .max(cue.toxicity);
            }
            totals.non_toxic *= 1.0 - toxicity;
        }
    }

    /// Whether a negator precedes token `index`, ignoring the "can't wait" idiom.
    fn negated(&self, scratch: &Scratch, index: usize) -> bool {
        (index.saturating_sub(NEGATION_WINDOW)..index).any(|k| {
            self.is_negator(scratch.word(k))
                && !(k + 1 < index && scratch.word(k + 1) == NEGATION_EXCEPTION_NEXT)
        })
    }

    /// Whether a second-person word is within `TARGET_WINDOW` tokens of `start..end`.
    fn aimed_at_reader(&self, scratch: &Scratch, start: usize, end: usize) -> bool {
        let before = start.saturating_sub(TARGET_WINDOW)..start;
        let after = end..(end + TARGET_WINDOW).min(scratch.tokens.len());
        before
            .chain(after)
            .any(|k| self.second_person.contains(scratch.word(k)))
    }
}

/// Adds the churn cues of scripts without spaces, which the tokens cannot separate: each cue
/// once, unless a negating ending follows it.
fn unspaced_churn(text: &str, totals: &mut CueTotals) {
    for &(cue, weight) in UNSPACED_CHURN_CUES {
        let stated = text.match_indices(cue).any(|(at, _)| {
            let after = prefix_chars(&text[at + cue.len()..], 6);
            !UNSPACED_NEGATIONS.iter().any(|n| after.contains(n))
        });
        if stated {
            totals.no_intent *= 1.0 - weight;
        }
    }
}

/// The built-in analyzer: VADER polarity plus cue lists for emotions, toxicity and churn. One
/// instance per worker thread; it keeps its tokenising buffers between calls.
pub struct LexiconAnalyzer {
    vader: SentimentIntensityAnalyzer<'static>,
    lexicon: Lexicon,
    scratch: Scratch,
}

impl LexiconAnalyzer {
    /// Builds the lookup tables once, so that analysing a text only reads them.
    pub fn new() -> Self {
        Self {
            vader: SentimentIntensityAnalyzer::new(),
            lexicon: Lexicon::build(),
            scratch: Scratch::default(),
        }
    }

    /// Analyses one text; the batch API is a loop over this.
    pub fn analyze(&mut self, text: &str) -> Analysis {
        let text = prefix_bytes(text, MAX_ANALYZED_BYTES);
        let scores = self.vader.polarity_scores(text);
        let score = |name: &str| scores.get(name).copied().unwrap_or(0.0);
        // The crate adds the emphasis of `!` and `?` to a sum of zero as if it were negative
        // (VADER itself leaves zero alone): "Launch day tomorrow!!!" read as negative. No word
        // that carries sentiment, no sentiment.
        let compound = if score("pos") == 0.0 && score("neg") == 0.0 {
            0.0
        } else {
            score("compound") as f32
        };
        let compound = if compound.is_finite() { compound } else { 0.0 };

        self.scratch.tokenize(text);
        let totals = self.lexicon.score(&mut self.scratch, text);

        let emotions = emotion_scores(totals.emotion);
        let toxicity = 1.0 - totals.non_toxic;
        let intent = 1.0 - totals.no_intent;
        let churn = churn_risk(intent, (-compound).max(0.0), emotions.anger.get());

        Analysis {
            sentiment_label: sentiment_label(compound),
            sentiment_score: SentimentScore::new(compound),
            emotions,
            toxicity: Probability::new(toxicity),
            // The cue lists do not tell hate from other abuse: slurs and threats are the
            // cues that reach the hate threshold.
            hate: Probability::new(toxicity),
            churn_risk: Probability::new(churn),
            model: MODEL_NAME.to_string(),
            lang: None,
            lang_source: LanguageSource::Unknown,
            language_support: LanguageSupport::Supported,
            shipped_sentiment: None,
        }
    }

    /// The cue scores alone (no VADER): churn intent and toxicity, for backends that bring
    /// their own sentiment and emotions but share the churn formula.
    pub fn cues(&mut self, text: &str) -> Cues {
        let text = prefix_bytes(text, MAX_ANALYZED_BYTES);
        self.scratch.tokenize(text);
        let totals = self.lexicon.score(&mut self.scratch, text);
        Cues {
            intent: 1.0 - totals.no_intent,
            toxicity: 1.0 - totals.non_toxic,
        }
    }
}

/// Cue scores of one text, see [`LexiconAnalyzer::cues`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cues {
    /// Churn intent in 0..=1 (0 when no non-negated intent phrase is present).
    pub intent: f32,
    /// Noisy-OR toxicity of the toxic cues.
    pub toxicity: f32,
}

/// Churn risk in 0..=1 from churn intent, negativity (0..=1) and the anger share, as the
/// module documentation gives it. Every backend uses this one formula.
pub fn churn_risk(intent: f32, negativity: f32, anger: f32) -> f32 {
    let distress =
        NEGATIVITY_WEIGHT * negativity.clamp(0.0, 1.0) + ANGER_WEIGHT * anger.clamp(0.0, 1.0);
    if intent > 0.0 {
        intent + (1.0 - intent) * distress
    } else {
        NO_INTENT_SCALE * distress
    }
}

impl Default for LexiconAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer for LexiconAnalyzer {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Analysis> {
        texts.iter().map(|text| self.analyze(text)).collect()
    }
}

/// The label for a compound score.
fn sentiment_label(compound: f32) -> SentimentLabel {
    if compound <= NEGATIVE_MAX_COMPOUND {
        SentimentLabel::Negative
    } else if compound >= POSITIVE_MIN_COMPOUND {
        SentimentLabel::Positive
    } else {
        SentimentLabel::Neutral
    }
}

/// Normalises the emotion sums to a distribution, or all zero when no cue fired.
fn emotion_scores(sums: [f32; EMOTIONS]) -> EmotionScores {
    let total: f32 = sums.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return EmotionScores::default();
    }
    let share = |slot: usize| Probability::new(sums[slot] / total);
    EmotionScores {
        anger: share(ANGER),
        joy: share(JOY),
        optimism: share(OPTIMISM),
        sadness: share(SADNESS),
    }
}

#[cfg(test)]
mod tests;
