//! A query of the topics language as PostgreSQL's `tsquery` over the search vectors
//! ([`super::vector`]), and whether that translation is exact.
//!
//! Words, phrases, wildcards, hashtags, handles and fields translate exactly: a phrase is
//! `<->` between lexemes at consecutive positions, a wildcard a `:*` prefix, a field its
//! `=field:value` lexeme. `NEAR` has no exact form (`tsquery` knows only exact distances), so
//! it reads as `AND` of its operands, which finds every post it would and some it would not:
//! such a plan is a superset, and each candidate is checked against the query itself. Under
//! `NOT`, the subset is needed instead, and a `NEAR` there contributes nothing.

use super::vector::{field_lexeme, token_lexeme, MAX_LEXEME_BYTES};
use crate::topics::syntax::Pattern;
use crate::topics::text::TokenKind;
use crate::topics::Expr;

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
}

#[derive(Debug, Clone)]
enum Bound {
    All,
    Nothing,
    Query(String),
}

/// The plan of `expr`.
pub fn plan(expr: &Expr) -> Plan {
    let mut exact = true;
    let bound = bound(expr, true, &mut exact);
    match bound {
        Bound::All => Plan {
            tsquery: None,
            exact,
            empty: false,
        },
        Bound::Nothing => Plan {
            tsquery: None,
            exact,
            empty: true,
        },
        Bound::Query(q) => Plan {
            tsquery: Some(q),
            exact,
            empty: false,
        },
    }
}

/// `expr` as a superset (`upper`) or a subset of its posts; `exact` turns false where the two
/// differ.
fn bound(expr: &Expr, upper: bool, exact: &mut bool) -> Bound {
    match expr {
        Expr::Words(patterns) => words(patterns),
        Expr::Field(field, value) => {
            let lexeme = field_lexeme(*field, value);
            if lexeme.len() > MAX_LEXEME_BYTES {
                // No exact vector holds it; posts that might are checked one by one.
                Bound::Nothing
            } else {
                Bound::Query(quote(&lexeme, false))
            }
        }
        Expr::And(items) => {
            let mut parts = Vec::new();
            for item in items {
                match bound(item, upper, exact) {
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
                match bound(item, upper, exact) {
                    Bound::All => return Bound::All,
                    Bound::Nothing => {}
                    Bound::Query(q) => parts.push(q),
                }
            }
            join(parts, " | ", Bound::Nothing)
        }
        Expr::Not(inner) => match bound(inner, !upper, exact) {
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

/// A word, or words in a row (a phrase).
fn words(patterns: &[Pattern]) -> Bound {
    let mut parts = Vec::with_capacity(patterns.len());
    for p in patterns {
        let kinds: &[TokenKind] = match p.kind {
            TokenKind::Word => &[TokenKind::Word, TokenKind::Hashtag, TokenKind::Mention],
            TokenKind::Hashtag => &[TokenKind::Hashtag],
            TokenKind::Mention => &[TokenKind::Mention],
        };
        let lexemes: Vec<String> = kinds
            .iter()
            .map(|k| token_lexeme(*k, &p.text))
            .filter(|l| l.len() <= MAX_LEXEME_BYTES)
            .map(|l| quote(&l, p.prefix))
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
    if parts.len() == 1 {
        Bound::Query(parts.into_iter().next().expect("one part"))
    } else {
        Bound::Query(format!("({})", parts.join(" <-> ")))
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
}
