//! The topic query language, parsed in one place (docs/topics.md is its reference).
//!
//! ```text
//! query    = or
//! or       = and { "OR" and }
//! and      = unary { ["AND"] unary }          two operands side by side are joined by AND
//! unary    = ("NOT" | "-") unary | near
//! near     = primary { "NEAR/n" primary }      NEAR/nf or ONEAR/n: the left operand first
//! primary  = "(" or ")" | "\"phrase\"" | field ":" value | word | word* | #tag | @handle
//! ```
//!
//! Tightest first: `NEAR`, `NOT`, `AND`, `OR`. Operators are written in capitals; `and`, `or`
//! and `not` are words.

use std::fmt;

use super::text::{fold, host_of, is_spaceless, TokenKind, Tokens};
use crate::models::Platform;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 4_096;
/// Most words, phrases and fields in one query.
pub const MAX_TERMS: usize = 300;
/// Deepest nesting of parentheses and `NOT`s.
pub const MAX_DEPTH: usize = 32;
/// Largest `n` of `NEAR/n` (words between the two operands).
pub const MAX_NEAR: u32 = 100;
/// Fewest characters before a trailing `*`.
pub const MIN_WILDCARD_CHARS: usize = 3;

/// A post's property a query can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Author,
    Platform,
    Lang,
    Country,
    City,
    Product,
    Channel,
    /// The host of the post's own link (where it was published).
    Site,
    /// The hosts of the links in the post's text.
    Links,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Author,
        Field::Platform,
        Field::Lang,
        Field::Country,
        Field::City,
        Field::Product,
        Field::Channel,
        Field::Site,
        Field::Links,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Author => "author",
            Field::Platform => "platform",
            Field::Lang => "lang",
            Field::Country => "country",
            Field::City => "city",
            Field::Product => "product",
            Field::Channel => "channel",
            Field::Site => "site",
            Field::Links => "links",
        }
    }

    fn parse(name: &str) -> Option<Field> {
        match name {
            "language" => Some(Field::Lang),
            _ => Field::ALL.into_iter().find(|f| f.as_str() == name),
        }
    }
}

/// One token to find: a word (which also finds the hashtag and the handle of the same word), a
/// hashtag or a handle, folded; `prefix` for a trailing wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub kind: TokenKind,
    pub text: String,
    pub prefix: bool,
}

impl Pattern {
    /// Whether a token of `kind` reading `text` is one this pattern finds: a word finds the
    /// hashtag and the handle of the same word too.
    pub fn finds(&self, kind: TokenKind, text: &str) -> bool {
        let kind_ok = self.kind == kind || self.kind == TokenKind::Word;
        kind_ok
            && if self.prefix {
                text.starts_with(&self.text)
            } else {
                text == self.text
            }
    }
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// One pattern, or several in a row (a phrase).
    Words(Vec<Pattern>),
    /// A post's property equal to a folded value (`site:`: the host or a subdomain of it).
    Field(Field, String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Both operands with at most `distance` words between them; `ordered`: left first.
    Near {
        left: Box<Expr>,
        right: Box<Expr>,
        distance: u32,
        ordered: bool,
    },
}

impl Expr {
    /// Whether every post it matches must hold something it names (a word, a phrase, a field)
    /// rather than only lack something: `NOT x` alone, or `a OR NOT b`, would match nearly
    /// every post.
    pub fn is_anchored(&self) -> bool {
        match self {
            Expr::Words(_) | Expr::Field(..) | Expr::Near { .. } => true,
            Expr::Not(_) => false,
            Expr::And(items) => items.iter().any(Expr::is_anchored),
            Expr::Or(items) => items.iter().all(Expr::is_anchored),
        }
    }

    /// Whether it stands at positions in the text (a NEAR operand must).
    fn is_positional(&self) -> bool {
        match self {
            Expr::Words(_) | Expr::Near { .. } => true,
            Expr::Or(items) => items.iter().all(Expr::is_positional),
            _ => false,
        }
    }
}

/// Why a query was refused: where (a character offset from 0) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub position: usize,
    pub expected: String,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.position)
    }
}

impl std::error::Error for QueryError {}

fn error(position: usize, expected: &str, message: impl Into<String>) -> QueryError {
    QueryError {
        position,
        expected: expected.to_string(),
        message: message.into(),
    }
}

/// Parses `query`.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(error(
            MAX_QUERY_CHARS,
            "the end of the query",
            format!(
                "the query is {} characters long; the limit is {MAX_QUERY_CHARS}",
                chars.len()
            ),
        ));
    }
    let lexemes = lex(&chars)?;
    let mut parser = Parser {
        lexemes,
        at: 0,
        terms: 0,
        end: chars.len(),
    };
    if parser.lexemes.is_empty() {
        return Err(error(0, OPERAND, "the query is empty"));
    }
    let expr = parser.or(0)?;
    if let Some(l) = parser.peek() {
        let message = match l.kind {
            Lex::Close => "this ) closes no (".to_string(),
            _ => "two parts of the query are not joined".to_string(),
        };
        return Err(error(
            l.position,
            "an operator or the end of the query",
            message,
        ));
    }
    if !expr.is_anchored() {
        return Err(error(
            0,
            "a word, phrase or field the posts must contain",
            "the query matches nearly every post: it must require something to be present, \
             not only absent (`NOT x` alone, `a OR NOT b`)",
        ));
    }
    Ok(expr)
}

const OPERAND: &str = "a word, a \"phrase\", a field (name:value) or (";

#[derive(Debug, Clone, PartialEq)]
enum Lex {
    Open,
    Close,
    And,
    Or,
    Not,
    Near {
        distance: u32,
        ordered: bool,
    },
    /// A run of characters up to a space, a parenthesis or a quote.
    Chunk(String),
    Quoted(String),
    /// A field, its value, and the length of its name as typed (`language` or `lang`).
    Field(Field, String, usize),
}

#[derive(Debug, Clone)]
struct Lexeme {
    kind: Lex,
    position: usize,
}

fn lex(chars: &[char]) -> Result<Vec<Lexeme>, QueryError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
            continue;
        }
        let position = at;
        let kind = match c {
            '(' => {
                at += 1;
                Lex::Open
            }
            ')' => {
                at += 1;
                Lex::Close
            }
            '"' | '“' | '”' => {
                let (text, end) = quoted(chars, at)?;
                at = end;
                Lex::Quoted(text)
            }
            '-' if chars
                .get(at + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != ')') =>
            {
                at += 1;
                Lex::Not
            }
            _ => {
                let end = chunk_end(chars, at);
                let chunk: String = chars[at..end].iter().collect();
                at = end;
                match chunk.as_str() {
                    "AND" | "&&" => Lex::And,
                    "OR" | "||" => Lex::Or,
                    "NOT" => Lex::Not,
                    _ if chunk.starts_with("NEAR/") || chunk.starts_with("ONEAR/") => {
                        near(&chunk, position)?
                    }
                    _ if chunk.to_ascii_uppercase().starts_with("NEAR/") => {
                        return Err(error(
                            position,
                            "NEAR/n in capitals",
                            format!(
                                "operators are written in capitals: `{}`",
                                chunk.to_ascii_uppercase()
                            ),
                        ))
                    }
                    _ => match field_name(&chunk) {
                        Some((field, rest)) => {
                            let typed = chunk.len() - rest.len() - 1;
                            let value = if rest.is_empty()
                                && chars.get(at).is_some_and(|c| matches!(c, '"' | '“' | '”'))
                            {
                                let (text, end) = quoted(chars, at)?;
                                at = end;
                                text
                            } else {
                                rest.to_string()
                            };
                            Lex::Field(field, value, typed)
                        }
                        None => Lex::Chunk(chunk),
                    },
                }
            }
        };
        out.push(Lexeme { kind, position });
    }
    Ok(out)
}

/// The text of the phrase opened by the quote at `at`, and the offset after its closing quote.
fn quoted(chars: &[char], at: usize) -> Result<(String, usize), QueryError> {
    let close = chars[at + 1..]
        .iter()
        .position(|c| matches!(c, '"' | '“' | '”'))
        .ok_or_else(|| {
            error(
                chars.len(),
                "a closing \"",
                format!("the phrase opened at character {at} is not closed"),
            )
        })?;
    let text: String = chars[at + 1..at + 1 + close].iter().collect();
    Ok((text, at + close + 2))
}

fn chunk_end(chars: &[char], at: usize) -> usize {
    let mut end = at;
    while end < chars.len() {
        let c = chars[end];
        if c.is_whitespace() || matches!(c, '(' | ')' | '"' | '“' | '”') {
            // `name:"value"` keeps its quote for the field.
            break;
        }
        end += 1;
    }
    end
}

fn near(chunk: &str, position: usize) -> Result<Lex, QueryError> {
    let (spec, in_order) = match chunk.strip_prefix('O') {
        Some(rest) => (&rest["NEAR/".len()..], true),
        None => (&chunk["NEAR/".len()..], false),
    };
    let (digits, ordered) = match spec.strip_suffix('f') {
        Some(d) => (d, true),
        None => (spec, in_order),
    };
    let expected =
        format!("NEAR/n with n from 0 to {MAX_NEAR} (NEAR/nf or ONEAR/n: in that order)");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(
            position,
            &expected,
            format!("`{chunk}` is not NEAR/n"),
        ));
    }
    match digits.parse::<u32>() {
        Ok(distance) if distance <= MAX_NEAR => Ok(Lex::Near { distance, ordered }),
        _ => Err(error(
            position,
            &expected,
            format!("NEAR takes a distance from 0 to {MAX_NEAR} words, not {digits}"),
        )),
    }
}

/// `name:rest` where `name` is a field; a chunk like `10:30` or `re:invent`, whose name is no
/// field, stays words.
fn field_name(chunk: &str) -> Option<(Field, &str)> {
    let (name, rest) = chunk.split_once(':')?;
    Field::parse(&name.to_ascii_lowercase()).map(|f| (f, rest))
}

struct Parser {
    lexemes: Vec<Lexeme>,
    at: usize,
    terms: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Lexeme> {
        self.lexemes.get(self.at)
    }

    fn position(&self) -> usize {
        self.peek().map_or(self.end, |l| l.position)
    }

    fn deeper(&self, depth: usize) -> Result<usize, QueryError> {
        if depth >= MAX_DEPTH {
            return Err(error(
                self.position(),
                "less nesting",
                format!("the query nests parentheses and NOTs deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(depth + 1)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(depth)?];
        while self.peek().is_some_and(|l| l.kind == Lex::Or) {
            self.at += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            match self.peek().map(|l| &l.kind) {
                Some(Lex::And) => {
                    self.at += 1;
                    items.push(self.unary(depth)?);
                }
                Some(Lex::Open | Lex::Not | Lex::Chunk(_) | Lex::Quoted(_) | Lex::Field(..)) => {
                    items.push(self.unary(depth)?)
                }
                _ => break,
            }
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        if self.peek().is_some_and(|l| l.kind == Lex::Not) {
            let depth = self.deeper(depth)?;
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary(depth)?)));
        }
        self.near(depth)
    }

    fn near(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut left = self.primary(depth)?;
        while let Some(Lexeme {
            kind: Lex::Near { distance, ordered },
            position,
        }) = self.peek().cloned()
        {
            self.at += 1;
            let right_at = self.position();
            let right = self.primary(depth)?;
            for (operand, at) in [(&left, position), (&right, right_at)] {
                if !operand.is_positional() {
                    return Err(error(
                        at,
                        "a word, a phrase, or an OR of them on each side of NEAR",
                        "NEAR joins words and phrases (or ORs of them); AND, NOT and fields \
                         have no place in the text",
                    ));
                }
            }
            left = Expr::Near {
                left: Box::new(left),
                right: Box::new(right),
                distance,
                ordered,
            };
        }
        Ok(left)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let Some(lexeme) = self.peek().cloned() else {
            return Err(error(
                self.end,
                OPERAND,
                "the query ends where a term was expected",
            ));
        };
        let position = lexeme.position;
        match lexeme.kind {
            Lex::Open => {
                let depth = self.deeper(depth)?;
                self.at += 1;
                let inner = self.or(depth)?;
                match self.peek() {
                    Some(Lexeme {
                        kind: Lex::Close, ..
                    }) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err(error(
                        self.position(),
                        ")",
                        format!("the ( at character {position} is not closed"),
                    )),
                }
            }
            Lex::Chunk(chunk) => {
                self.at += 1;
                self.count_term(position)?;
                words(&chunk, position, false)
            }
            Lex::Quoted(text) => {
                self.at += 1;
                self.count_term(position)?;
                words(&text, position, true)
            }
            Lex::Field(field, value, typed) => {
                self.at += 1;
                self.count_term(position)?;
                field_value(field, &value, position + typed + 1)
            }
            Lex::Close => Err(error(position, OPERAND, "a ) where a term was expected")),
            Lex::And | Lex::Or | Lex::Near { .. } => Err(error(
                position,
                OPERAND,
                "an operator where a term was expected",
            )),
            // Only as a NEAR operand: elsewhere `unary` takes it first.
            Lex::Not => Err(error(
                position,
                "a word, a phrase, or an OR of them on each side of NEAR",
                "NEAR joins words and phrases; put NOT outside it (`x NOT (a NEAR/2 b)`)",
            )),
        }
    }

    fn count_term(&mut self, position: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(error(
                position,
                "fewer terms",
                format!("the query has more than {MAX_TERMS} words, phrases and fields"),
            ));
        }
        Ok(())
    }
}

/// The patterns of a word (possibly with a trailing `*`) or of a quoted phrase, read as post
/// texts are read.
fn words(chunk: &str, position: usize, quoted: bool) -> Result<Expr, QueryError> {
    let mut patterns = Vec::new();
    for (n, piece) in chunk.split_whitespace().enumerate() {
        let piece_at = position + usize::from(quoted) + offset_of(chunk, piece);
        let (body, wildcard) = match piece.strip_suffix('*') {
            Some(body) => (body, true),
            None => (piece, false),
        };
        if body.contains('*') {
            return Err(error(
                piece_at + body.find('*').map_or(0, |b| body[..b].chars().count()),
                "a word with * at its end only",
                "* may only end a word (`cancel*`)",
            ));
        }
        let tokens = Tokens::read(body);
        if tokens.is_empty() {
            let message = if !tokens.hosts.is_empty() {
                format!(
                    "`{piece}` is a link: match a site with site:{}",
                    tokens.hosts[0]
                )
            } else if body.is_empty() {
                format!("a wildcard needs at least {MIN_WILDCARD_CHARS} characters before *")
            } else {
                format!("`{piece}` has no letters, digits or emoji to match")
            };
            return Err(error(piece_at, "a word", message));
        }
        let count = tokens.len();
        for i in 0..count {
            let text = tokens.text(i).to_string();
            let last = i + 1 == count;
            let spaceless = text.chars().next().is_some_and(is_spaceless);
            let prefix = wildcard && last && !spaceless;
            if prefix && text.chars().count() < MIN_WILDCARD_CHARS {
                return Err(error(
                    piece_at,
                    &format!("at least {MIN_WILDCARD_CHARS} characters before *"),
                    format!("a wildcard needs at least {MIN_WILDCARD_CHARS} characters before *: `{piece}`"),
                ));
            }
            patterns.push(Pattern {
                kind: tokens.tokens[i].kind,
                text,
                prefix,
            });
        }
        let _ = n;
    }
    if patterns.is_empty() {
        return Err(error(position, "a word", "the phrase is empty"));
    }
    Ok(Expr::Words(patterns))
}

/// The words of `text`, read as post texts are, as a phrase (a word when there is one): how a
/// source's keyword is matched. `None` when it has no letters, digits or emoji. No limit
/// applies: keywords are settings, not requests.
pub fn phrase(text: &str) -> Option<Expr> {
    let tokens = Tokens::read(text);
    let patterns: Vec<Pattern> = (0..tokens.len())
        .map(|i| Pattern {
            kind: tokens.tokens[i].kind,
            text: tokens.text(i).to_string(),
            prefix: false,
        })
        .collect();
    (!patterns.is_empty()).then_some(Expr::Words(patterns))
}

/// The offset, in characters, of `piece` (a subslice) within `chunk`.
fn offset_of(chunk: &str, piece: &str) -> usize {
    let bytes = piece.as_ptr() as usize - chunk.as_ptr() as usize;
    chunk[..bytes].chars().count()
}

/// The field atom of `value` (starting at character `position`) for `field`.
fn field_value(field: Field, value: &str, position: usize) -> Result<Expr, QueryError> {
    let name = field.as_str();
    let value = value.trim();
    if value.is_empty() {
        return Err(error(
            position,
            "a value",
            format!("{name}: needs a value (`{name}:\"two words\"` for spaces)"),
        ));
    }
    let folded = fold(value);
    let folded = match field {
        Field::Platform => {
            if Platform::parse(&folded).is_none() {
                let names: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
                return Err(error(
                    position,
                    &format!("one of {}", names.join(", ")),
                    format!("`{value}` is not a platform Pulse knows"),
                ));
            }
            folded
        }
        Field::Site | Field::Links => host_of(value).ok_or_else(|| {
            error(
                position,
                "a host name such as example.com",
                format!("`{value}` is not a host name"),
            )
        })?,
        Field::Lang => {
            let primary = folded.split(['-', '_']).next().unwrap_or("");
            if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase())
            {
                return Err(error(
                    position,
                    "a language code such as en, pt or pt-BR",
                    format!("`{value}` is not a language code"),
                ));
            }
            crate::analysis::language::canonical_tag(&folded.replace('_', "-"))
        }
        _ => folded,
    };
    Ok(Expr::Field(field, folded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str) -> Expr {
        Expr::Words(vec![Pattern {
            kind: TokenKind::Word,
            text: text.into(),
            prefix: false,
        }])
    }

    #[test]
    fn precedence_is_near_not_and_or() {
        let e = parse("a b OR c AND NOT d").unwrap();
        assert_eq!(
            e,
            Expr::Or(vec![
                Expr::And(vec![word("a"), word("b")]),
                Expr::And(vec![word("c"), Expr::Not(Box::new(word("d")))]),
            ])
        );
        let e = parse("x AND NOT a NEAR/2 b").unwrap();
        let Expr::And(items) = e else { panic!() };
        assert!(matches!(&items[1], Expr::Not(inner) if matches!(**inner, Expr::Near { .. })));
    }

    #[test]
    fn words_with_punctuation_become_phrases_and_wildcards_prefixes() {
        let Expr::Words(p) = parse("don't").unwrap() else {
            panic!()
        };
        assert_eq!(p.len(), 2);
        let Expr::Words(p) = parse("cancel*").unwrap() else {
            panic!()
        };
        assert!(p[0].prefix && p[0].text == "cancel");
        let Expr::Words(p) = parse("#Pulse").unwrap() else {
            panic!()
        };
        assert_eq!(p[0].kind, TokenKind::Hashtag);
        let Expr::Words(p) = parse("東京").unwrap() else {
            panic!()
        };
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let at = |q: &str| parse(q).unwrap_err().position;
        assert_eq!(at("apple AND"), 9);
        assert_eq!(at("(apple OR pear"), 14);
        assert_eq!(at("apple)"), 5);
        assert_eq!(at("\"open phrase"), 12);
        assert_eq!(at("a NEAR/-1 b"), 2);
        assert_eq!(at("a NEAR/1000000 b"), 2);
        assert_eq!(at("a NEAR/3 platform:reddit"), 9);
        assert_eq!(at("ca*"), 0);
        assert_eq!(at("c*t"), 1);
        assert_eq!(at("platform:myspace"), 9);
        assert_eq!(at("NOT apple"), 0);
        assert_eq!(at("apple OR NOT pear"), 0);
        assert_eq!(at("*"), 0);
        assert_eq!(at(""), 0);
        assert_eq!(at("a near/3 b"), 2);
        assert_eq!(at("a NEAR/2 NOT b"), 9);
        assert_eq!(at("a NEAR/2 -b"), 9);
        assert_eq!(at("(x NEAR/1 y) NEAR/3 -z"), 20);
        assert_eq!(at("language:xx1"), 9);
        assert_eq!(at("lang:"), 5);
        for odd in [
            "\"", "((", ")(", "-", "--x", "a:", "site:", "NEAR/", "“", "é:x", "🔥:x", "a AND -",
        ] {
            let _ = parse(odd);
        }
        assert!(parse("apple AND").unwrap_err().expected.contains("word"));
    }

    #[test]
    fn limits_hold_without_recursing_past_them() {
        let deep = format!("{}a{}", "(".repeat(2_000), ")".repeat(2_000));
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let nots = format!("a {}", "NOT ".repeat(1_000) + "b");
        assert!(parse(&nots).unwrap_err().message.contains("deeper"));
        let deeper = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deeper).is_err());
        let long = "a ".repeat(MAX_QUERY_CHARS);
        assert!(parse(&long).unwrap_err().message.contains("characters"));
        let many = vec!["w"; MAX_TERMS + 1].join(" OR ");
        assert!(parse(&many).unwrap_err().message.contains("more than"));
    }
}
