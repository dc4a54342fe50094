//! A query of the topics language as PostgreSQL's `tsquery` over the search vectors
//! ([`super::vector`]), and whether that translation is exact.
//!
//! Words, phrases, wildcards, hashtags, handles and fields translate exactly: a phrase is
//! `<->` between lexemes at consecutive positions, a wildcard a `:*` prefix, a field its
//! `=field:value` lexeme. `NEAR` has no exact form (`tsquery` knows only exact distances), so
//! it reads as `AND` of its operands, which finds every post it would and some it would not:
//! such a plan is a superset, and each candidate is checked against the query itself. Under
//! `NOT`, the subset is needed instead, and a `NEAR` there contributes nothing.
//!
//! A vector that is not exact still holds every token but those too long for a lexeme, each
//! at its first places, and every field but the `site:` and `links:` domains past its size,
//! so the same translation, read as a superset where places, long tokens or domains may be
//! missing, tells which of those posts can match at all: only they are checked one by one,
//! rather than every such post whatever the query.

use super::vector::{field_lexeme, token_lexeme, MAX_LEXEME_BYTES, MAX_POSITION};
use crate::models::event::MAX_TEXT_BYTES;
use crate::topics::syntax::Pattern;
use crate::topics::text::TokenKind;
use crate::topics::{Expr, Field};

// A token takes a byte and so does what separates it from the next, so a stored text holds at
// most half as many tokens as bytes: each has a place in its vector, and a vector that is not
// exact lacks only long tokens and places past the first of a token, never a token outright.
const _: () = assert!(MAX_TEXT_BYTES.div_ceil(2) <= MAX_POSITION);

/// How a query reaches the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The `tsquery` (in its text form) that finds the query's posts among exact vectors;
    /// `None` when every post is a candidate (nothing of the query can be looked up).
    pub tsquery: Option<String>,
    /// Whether a post the `tsquery` finds (among exact vectors) is a match without checking.
    pub exact: bool,
    /// Whether no exact vector can match (nothing to look up).
    pub empty: bool,
    /// The `tsquery` (in its text form) a vector that is not exact must match for its post to
    /// be a candidate; `None` when any such post may match.
    pub unsure: Option<String>,
}

/// The vectors a bound is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vectors {
    /// Every token at every place.
    Exact,
    /// Tokens longer than a lexeme may be are missing, and places past a token's first
    /// [`super::vector::MAX_POSITIONS`].
    Unsure,
}

#[derive(Debug, Clone)]
enum Bound {
    All,
    Nothing,
    Query(String),
}

/// The plan of `expr`.
pub fn plan(expr: &Expr) -> Plan {
    let unsure = match bound(expr, true, Vectors::Unsure, &mut true) {
        Bound::Query(q) => Some(q),
        // A superset of nothing cannot come of the grammar; were it to, every such post is
        // still a candidate.
        Bound::All | Bound::Nothing => None,
    };
    let mut exact = true;
    let (tsquery, empty) = match bound(expr, true, Vectors::Exact, &mut exact) {
        Bound::All => (None, false),
        Bound::Nothing => (None, true),
        Bound::Query(q) => (Some(q), false),
    };
    Plan {
        tsquery,
        exact,
        empty,
        unsure,
    }
}

/// `expr` as a superset (`upper`) or a subset of the posts whose vectors are `vectors`;
/// `exact` turns false where the two differ.
fn bound(expr: &Expr, upper: bool, vectors: Vectors, exact: &mut bool) -> Bound {
    match expr {
        Expr::Words(patterns) => words(patterns, upper, vectors),
        Expr::Field(field, value) => {
            let lexeme = field_lexeme(*field, value);
            if upper && vectors == Vectors::Unsure && matches!(field, Field::Site | Field::Links) {
                // A vector that is not exact may lack a link's domains past its size.
                Bound::All
            } else if lexeme.len() <= MAX_LEXEME_BYTES {
                Bound::Query(quote(&lexeme, false))
            } else if upper && vectors == Vectors::Unsure {
                // A vector that is not exact may lack it because it is too long.
                Bound::All
            } else {
                // No exact vector holds it; posts that might are checked one by one.
                Bound::Nothing
            }
        }
        Expr::And(items) => {
            let mut parts = Vec::new();
            for item in items {
                match bound(item, upper, vectors, exact) {
                    Bound::All => {}
                    Bound::Nothing => return Bound::Nothing,
                    Bound::Query(q) => parts.push(q),
                }
            }
            join(parts, " & ", Bound::All)
        }
        Expr::Or(items) => {
            let mut parts = Vec::new();
            for item in items {
                match bound(item, upper, vectors, exact) {
                    Bound::All => return Bound::All,
                    Bound::Nothing => {}
                    Bound::Query(q) => parts.push(q),
                }
            }
            join(parts, " | ", Bound::Nothing)
        }
        Expr::Not(inner) => match bound(inner, !upper, vectors, exact) {
            Bound::All => Bound::Nothing,
            Bound::Nothing => Bound::All,
            Bound::Query(q) => Bound::Query(format!("!({q})")),
        },
        Expr::Near { left, right, .. } => {
            *exact = false;
            if upper {
                bound(
                    &Expr::And(vec![(**left).clone(), (**right).clone()]),
                    true,
                    vectors,
                    exact,
                )
            } else {
                Bound::Nothing
            }
        }
    }
}

fn join(parts: Vec<String>, operator: &str, none: Bound) -> Bound {
    match parts.len() {
        0 => none,
        1 => Bound::Query(parts.into_iter().next().expect("one part")),
        _ => Bound::Query(format!("({})", parts.join(operator))),
    }
}

/// A word, or words in a row (a phrase), as a superset (`upper`) or a subset of the posts
/// whose vectors are `vectors`.
fn words(patterns: &[Pattern], upper: bool, vectors: Vectors) -> Bound {
    // In a vector that is not exact a token may be missing for being too long (one a wildcard
    // finds, or the hashtag of a long word), and a phrase's words may stand past the places
    // it keeps: as a superset, such a pattern bounds nothing and a phrase is its words
    // anywhere. As a subset, what such a vector holds is in the text, at the places it says.
    let loose = upper && vectors == Vectors::Unsure;
    let mut parts = Vec::with_capacity(patterns.len());
    for p in patterns {
        let kinds: &[TokenKind] = match p.kind {
            TokenKind::Word => &[TokenKind::Word, TokenKind::Hashtag, TokenKind::Mention],
            TokenKind::Hashtag => &[TokenKind::Hashtag],
            TokenKind::Mention => &[TokenKind::Mention],
        };
        let all: Vec<String> = kinds.iter().map(|k| token_lexeme(*k, &p.text)).collect();
        let kept = all.iter().filter(|l| l.len() <= MAX_LEXEME_BYTES).count();
        if loose && (p.prefix || kept < all.len()) {
            continue;
        }
        let lexemes: Vec<String> = all
            .iter()
            .filter(|l| l.len() <= MAX_LEXEME_BYTES)
            .map(|l| quote(l, p.prefix))
            .collect();
        if lexemes.is_empty() {
            return Bound::Nothing;
        }
        parts.push(if lexemes.len() == 1 {
            lexemes.into_iter().next().expect("one lexeme")
        } else {
            format!("({})", lexemes.join(" | "))
        });
    }
    match parts.len() {
        0 => Bound::All,
        1 => Bound::Query(parts.into_iter().next().expect("one part")),
        _ if loose => {
            parts.sort_unstable();
            parts.dedup();
            join(parts, " & ", Bound::All)
        }
        _ => Bound::Query(format!("({})", parts.join(" <-> "))),
    }
}

/// `lexeme` quoted for `tsquery`'s text form (quotes and backslashes doubled), `:*` for a
/// prefix.
fn quote(lexeme: &str, prefix: bool) -> String {
    let mut out = String::with_capacity(lexeme.len() + 4);
    out.push('\'');
    for c in lexeme.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    if prefix {
        out.push_str(":*");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::parse;

    fn q(query: &str) -> Plan {
        plan(&parse(query).unwrap())
    }

    #[test]
    fn words_phrases_wildcards_and_fields_translate_exactly() {
        let p = q("#pulse AND \"customer service\" OR cancel* NOT platform:reddit");
        assert!(p.exact);
        assert_eq!(
            p.tsquery.unwrap(),
            "(('#pulse' & (('customer' | '#customer' | '@customer') <-> \
             ('service' | '#service' | '@service'))) | (('cancel':* | '#cancel':* | \
             '@cancel':*) & !('=platform:reddit')))"
        );
        assert_eq!(q("it's").tsquery.unwrap().matches("''").count(), 0);
        assert_eq!(quote("o'b\\", false), "'o''b\\\\'");
    }

    #[test]
    fn near_is_a_superset_and_under_not_it_drops_out() {
        let p = q("refund NEAR/3 late");
        assert!(!p.exact);
        assert!(p.tsquery.unwrap().contains(" & "));
        let p = q("pulse NOT (refund NEAR/3 late)");
        assert!(!p.exact);
        assert_eq!(p.tsquery.unwrap(), "('pulse' | '#pulse' | '@pulse')");
    }

    #[test]
    fn a_word_no_vector_can_hold_leaves_only_posts_checked_one_by_one() {
        let long = "a".repeat(MAX_LEXEME_BYTES + 1);
        let p = q(&long);
        assert!(p.empty && p.exact);
        let p = q(&format!("pulse OR {long}"));
        assert_eq!(p.tsquery.unwrap(), "('pulse' | '#pulse' | '@pulse')");
    }

    #[test]
    fn posts_whose_vectors_are_not_exact_are_narrowed_to_those_that_can_match() {
        // A vector that is not exact may lack a word's later places: a phrase is its words.
        let p = q("\"refund late\"");
        assert!(p.tsquery.unwrap().contains(" <-> "));
        let unsure = p.unsure.unwrap();
        assert!(
            unsure.contains(" & ") && !unsure.contains("<->"),
            "{unsure}"
        );
        // A wildcard may find a token too long to keep, and so may a long word's hashtag.
        assert_eq!(q("cancel*").unsure, None);
        // Domains of links may be past what a vector that is not exact holds.
        assert_eq!(q("links:x.org").unsure, None);
        assert_eq!(
            q("site:x.org late").unsure.unwrap(),
            "('late' | '#late' | '@late')"
        );
        assert_eq!(
            q("cancel* late").unsure.unwrap(),
            "('late' | '#late' | '@late')"
        );
        assert_eq!(q("pulse OR cancel*").unsure, None);
        assert_eq!(q(&"a".repeat(MAX_LEXEME_BYTES)).unsure, None);
        // Under NOT, what the vector holds is in the text, at the places it says.
        assert_eq!(
            q("pulse NOT \"refund late\"").unsure.unwrap(),
            "(('pulse' | '#pulse' | '@pulse') & !((('refund' | '#refund' | '@refund') <-> \
             ('late' | '#late' | '@late'))))"
        );
    }
}
