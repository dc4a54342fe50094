//! Where a query's words stand in a post's text, for highlighting: every token a word, a
//! wildcard, a hashtag or a handle of the query finds, and each run of tokens a phrase finds,
//! except under `NOT` (what a query excludes is not what it found).

use crate::topics::syntax::Pattern;
use crate::topics::text::Tokens;
use crate::topics::Expr;

/// Comparisons of a query's patterns with a text's tokens one text's highlights may make. A
/// phrase is compared part after part from every token, so a phrase of thousands of one word
/// over a text of thousands of it took tens of millions of comparisons for each hit of a page;
/// past the budget a hit keeps the highlights found so far. Ordinary texts and queries make a
/// few thousand.
pub const MAX_HIGHLIGHT_STEPS: usize = 1_000_000;

/// Comparisons the highlights of one page of hits may make together: a page of 100 hits each
/// at the per-hit budget was 100 million (about a second of a worker for one request). Past
/// it the page's later hits keep what was found so far, or no highlights.
pub const MAX_PAGE_HIGHLIGHT_STEPS: usize = 4_000_000;

/// What one page's highlights may still compare, each hit within [`MAX_HIGHLIGHT_STEPS`] and
/// the page within [`MAX_PAGE_HIGHLIGHT_STEPS`].
#[derive(Debug, Clone)]
pub struct PageHighlights {
    left: usize,
}

impl Default for PageHighlights {
    fn default() -> Self {
        PageHighlights {
            left: MAX_PAGE_HIGHLIGHT_STEPS,
        }
    }
}

impl PageHighlights {
    /// The highlights of one hit's `text`, within what the page has left.
    pub fn of(&mut self, expr: &Expr, text: &str) -> Vec<[usize; 2]> {
        let allowed = self.left.min(MAX_HIGHLIGHT_STEPS);
        let mut steps = allowed;
        let found = highlights_within(expr, text, &mut steps);
        self.left -= allowed - steps;
        found
    }
}

/// The spans of `text` to highlight, as `[start, end)` offsets in characters (Unicode code
/// points), sorted and merged.
pub fn highlights(expr: &Expr, text: &str) -> Vec<[usize; 2]> {
    let mut steps = MAX_HIGHLIGHT_STEPS;
    highlights_within(expr, text, &mut steps)
}

/// [`highlights`] within `steps` comparisons, taking those it makes off them.
fn highlights_within(expr: &Expr, text: &str, steps: &mut usize) -> Vec<[usize; 2]> {
    let mut phrases = Vec::new();
    positive_phrases(expr, &mut phrases);
    if phrases.is_empty() || *steps == 0 {
        return Vec::new();
    }
    let tokens = Tokens::read(text);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    'phrases: for phrase in phrases {
        let n = phrase.len();
        if n == 0 || n > tokens.len() {
            continue;
        }
        for start in 0..=tokens.len() - n {
            let mut found = true;
            for (k, p) in phrase.iter().enumerate() {
                if *steps == 0 {
                    break 'phrases;
                }
                *steps -= 1;
                let i = start + k;
                if !p.finds(tokens.tokens[i].kind, tokens.text(i)) {
                    found = false;
                    break;
                }
            }
            if found {
                let from = tokens.tokens[start].source.start as usize;
                let to = tokens.tokens[start + n - 1].source.end as usize;
                spans.push((from, to));
            }
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    let mut out = Vec::with_capacity(merged.len());
    let (mut bytes, mut chars) = (0, 0);
    let mut to_chars = |byte: usize| {
        chars += text[bytes..byte].chars().count();
        bytes = byte;
        chars
    };
    for (from, to) in merged {
        let start = to_chars(from);
        let end = to_chars(to);
        out.push([start, end]);
    }
    out
}

fn positive_phrases<'e>(expr: &'e Expr, out: &mut Vec<&'e [Pattern]>) {
    match expr {
        Expr::Words(patterns) => out.push(patterns),
        Expr::Field(..) | Expr::Not(_) => {}
        Expr::And(items) | Expr::Or(items) => {
            items.iter().for_each(|i| positive_phrases(i, out));
        }
        Expr::Near { left, right, .. } => {
            positive_phrases(left, out);
            positive_phrases(right, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::parse;

    fn h(query: &str, text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        highlights(&parse(query).unwrap(), text)
            .into_iter()
            .map(|[a, b]| chars[a..b].iter().collect())
            .collect()
    }

    #[test]
    fn found_words_and_phrases_are_marked_and_excluded_ones_are_not() {
        assert_eq!(
            h(
                "cancel* OR \"customer service\" NOT refund",
                "Cancelled! Customer Service, no refund"
            ),
            ["Cancelled", "Customer Service"]
        );
        assert_eq!(h("pulse", "#Pulse and pulse"), ["#Pulse", "pulse"]);
        assert_eq!(h("#pulse", "#Pulse and pulse"), ["#Pulse"]);
        assert_eq!(h("東京", "私は東京へ"), ["東京"]);
        assert_eq!(h("café", "ça, Café"), ["Café"]);
    }

    /// A phrase of 2,000 words over a text of 10,000 of the same word compared 16 million
    /// times for one hit; the budget ends it with the first spans found.
    #[test]
    fn a_long_phrase_over_a_text_of_one_repeated_word_stops_at_the_budget() {
        let phrase = format!("\"{}\"", vec!["a"; 2_000].join(" "));
        let text = vec!["a"; 9_999].join(" ");
        let started = std::time::Instant::now();
        let found = highlights(&parse(&phrase).unwrap(), &text);
        eprintln!("the highlights took {:?}", started.elapsed());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0][0], 0);
        assert!(
            found[0][1] < text.chars().count(),
            "stopped before the end: {found:?}"
        );
        assert_eq!(h("\"a a\"", "b a a b"), ["a a"]);
    }

    // Failed while the budget was each hit's alone: a page of 100 such hits made 100 million
    // comparisons.
    #[test]
    fn a_pages_hits_share_one_budget_of_comparisons() {
        let phrase = parse(&format!("\"{}\"", vec!["a"; 2_000].join(" "))).unwrap();
        let text = vec!["a"; 9_999].join(" ");
        let mut page = PageHighlights::default();
        let found: Vec<usize> = (0..10).map(|_| page.of(&phrase, &text).len()).collect();
        let full = MAX_PAGE_HIGHLIGHT_STEPS / MAX_HIGHLIGHT_STEPS;
        assert_eq!(found[..full], vec![1; full][..], "{found:?}");
        assert!(found[full..].iter().all(|&n| n == 0), "{found:?}");
        assert!(page.of(&parse("b").unwrap(), "a b").is_empty());
        assert_eq!(
            PageHighlights::default().of(&parse("b").unwrap(), "a b"),
            [[2, 3]]
        );
    }
}
