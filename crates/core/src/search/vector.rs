//! A post's search vector: the tokens topics read (folded words, `#tags`, `@handles`, each
//! at its position) and the values its fields hold, as PostgreSQL's `tsvector` in its binary
//! form, so the store takes it as is and no server-side text parser reads it differently.
//!
//! Lexemes: a word as folded (`cafe`), a hashtag as `#tag`, a handle as `@handle`, a field as
//! `=field:value` (no query word can start with `=`, so a wildcard never reaches a field).
//! Where a text cannot be held exactly (a token longer than a lexeme may be, a token more
//! often than positions are kept, the domains of links past [`MAX_VECTOR_BYTES`]), the vector
//! also holds [`UNSURE`], and searches check the post itself.

use std::collections::BTreeMap;

use crate::topics::text::{host_of, TokenKind, Tokens};
use crate::topics::{Field, PostFields};

/// The lexeme of a post whose vector is not exact.
pub const UNSURE: &str = "!";
/// Longest lexeme PostgreSQL holds, in bytes.
pub const MAX_LEXEME_BYTES: usize = 2_046;
/// Most positions PostgreSQL keeps of one lexeme.
pub const MAX_POSITIONS: usize = 256;
/// Highest position PostgreSQL keeps.
pub const MAX_POSITION: usize = 16_383;
/// Most bytes a vector's lexemes and positions take: PostgreSQL refuses a vector past 1 MiB,
/// and would refuse the whole batch with it. A post's tokens stay far below this (its text is
/// at most [`MAX_TEXT_BYTES`](crate::models::event::MAX_TEXT_BYTES)), as do its fields but `site:` and `links:`: only domains of
/// many long links can reach it, and those past it are left to the check of the post.
pub const MAX_VECTOR_BYTES: usize = 256 * 1024;

/// The lexeme a field's folded value is held under.
pub fn field_lexeme(field: Field, value: &str) -> String {
    format!("={}:{value}", field.as_str())
}

/// The lexeme of a token of `kind` reading `folded`.
pub fn token_lexeme(kind: TokenKind, folded: &str) -> String {
    match kind {
        TokenKind::Word => folded.to_string(),
        TokenKind::Hashtag => format!("#{folded}"),
        TokenKind::Mention => format!("@{folded}"),
    }
}

/// The lexemes of `post` with their positions (1-based token indices; none for fields).
pub fn lexemes(post: &PostFields) -> BTreeMap<Vec<u8>, Vec<u16>> {
    let tokens = Tokens::read(post.text);
    let mut out: BTreeMap<Vec<u8>, Vec<u16>> = BTreeMap::new();
    let mut unsure = false;
    // PostgreSQL's count: each lexeme's bytes, and its positions with their count.
    let mut bytes = 0usize;
    for (i, token) in tokens.tokens.iter().enumerate() {
        let lexeme = token_lexeme(token.kind, tokens.text(i));
        if lexeme.len() > MAX_LEXEME_BYTES || i + 1 > MAX_POSITION {
            unsure = true;
            continue;
        }
        let positions = out.entry(lexeme.into_bytes()).or_insert_with_key(|lexeme| {
            bytes += lexeme.len() + 2;
            Vec::new()
        });
        if positions.len() < MAX_POSITIONS {
            positions.push((i + 1) as u16);
            bytes += 2;
        } else {
            unsure = true;
        }
    }
    let mut field = |field: Field, value: &str| {
        let length = field.as_str().len() + value.len() + 2;
        let room = MAX_VECTOR_BYTES - UNSURE.len();
        if length > MAX_LEXEME_BYTES || bytes + length > room {
            unsure = true;
        } else if let std::collections::btree_map::Entry::Vacant(entry) =
            out.entry(field_lexeme(field, value).into_bytes())
        {
            entry.insert(Vec::new());
            bytes += length;
        }
    };
    let fold = crate::topics::text::fold;
    field(Field::Author, &fold(post.author));
    field(Field::Platform, &fold(post.platform));
    let optional = [
        (Field::Country, post.country),
        (Field::City, post.city),
        (Field::Product, post.product),
        (Field::Channel, post.channel),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            field(name, &fold(value));
        }
    }
    if let Some(lang) = post.lang {
        let lang = fold(&lang.replace('_', "-"));
        if let Some((primary, _)) = lang.split_once('-') {
            field(Field::Lang, primary);
        }
        field(Field::Lang, &lang);
    }
    if let Some(host) = post.url.and_then(host_of) {
        for domain in domains(&host) {
            field(Field::Site, domain);
        }
    }
    for host in &tokens.hosts {
        for domain in domains(host) {
            field(Field::Links, domain);
        }
    }
    if unsure {
        out.entry(UNSURE.as_bytes().to_vec()).or_default();
    }
    out
}

/// `host` and the domains it is under that still hold a dot (`a.b.com`, `b.com`), as a
/// `site:` or `links:` query names them.
fn domains(host: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(host);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.split_once('.') {
            Some((_, parent)) if parent.contains('.') => Some(parent),
            _ => None,
        };
        Some(current)
    })
}

/// `post`'s vector in `tsvector`'s binary form: the count, then each lexeme (sorted, unique)
/// NUL-terminated with its count of positions and the positions, big-endian.
pub fn encode(post: &PostFields) -> Vec<u8> {
    let lexemes = lexemes(post);
    let mut out = Vec::with_capacity(64 + post.text.len() * 2);
    out.extend_from_slice(&(lexemes.len() as i32).to_be_bytes());
    for (lexeme, positions) in &lexemes {
        out.extend_from_slice(lexeme);
        out.push(0);
        out.extend_from_slice(&(positions.len() as u16).to_be_bytes());
        for p in positions {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str) -> PostFields<'_> {
        PostFields {
            text,
            author: "U1",
            platform: "twitter",
            lang: Some("pt_BR"),
            url: Some("https://news.example.co.uk/a"),
            ..PostFields::default()
        }
    }

    fn keys(text: &str) -> Vec<String> {
        lexemes(&post(text))
            .into_keys()
            .map(|k| String::from_utf8(k).unwrap())
            .collect()
    }

    #[test]
    fn a_vector_holds_tokens_at_their_positions_and_fields_without() {
        let l = lexemes(&post("Café #Pulse @Ana café https://x.org/p 東京"));
        assert_eq!(l[b"cafe".as_slice()], [1, 4]);
        assert_eq!(l[b"#pulse".as_slice()], [2]);
        assert_eq!(l[b"@ana".as_slice()], [3]);
        assert_eq!(l["東".as_bytes()], [5]);
        assert_eq!(l["京".as_bytes()], [6]);
        let k = keys("hi https://www.shop.x.org/p");
        for expected in [
            "=author:u1",
            "=platform:twitter",
            "=lang:pt",
            "=lang:pt-br",
            "=site:news.example.co.uk",
            "=site:example.co.uk",
            "=site:co.uk",
            "=links:shop.x.org",
            "=links:x.org",
        ] {
            assert!(k.contains(&expected.to_string()), "{expected} in {k:?}");
        }
        assert!(!k.contains(&UNSURE.to_string()));
    }

    #[test]
    fn what_cannot_be_held_exactly_marks_the_vector() {
        let long = "a".repeat(MAX_LEXEME_BYTES + 1);
        assert!(keys(&long).contains(&UNSURE.to_string()));
        let many = "lol ".repeat(MAX_POSITIONS + 1);
        let l = lexemes(&post(&many));
        assert_eq!(l[b"lol".as_slice()].len(), MAX_POSITIONS);
        assert!(l.contains_key(UNSURE.as_bytes()));
        assert!(!keys(&"lol ".repeat(MAX_POSITIONS)).contains(&UNSURE.to_string()));
    }

    #[test]
    fn many_long_links_stay_within_what_postgresql_takes() {
        // Hosts near the longest DNS allows, each under 122 domains of its own: about 1.2 MB
        // of lexemes.
        let text: String = (0..76)
            .map(|i| format!("https://{}c{i:02}/ ", "a.".repeat(122)))
            .collect();
        assert!(text.len() <= 20_000);
        let l = lexemes(&post(&text));
        // As PostgreSQL counts: a lexeme's bytes, and its positions with their count.
        let positions = |p: &Vec<u16>| if p.is_empty() { 0 } else { 2 + 2 * p.len() };
        let bytes: usize = l.iter().map(|(k, p)| k.len() + positions(p)).sum();
        assert!(bytes <= MAX_VECTOR_BYTES, "{bytes} bytes");
        assert!(l.contains_key(UNSURE.as_bytes()));
        assert!(l.contains_key(b"=author:u1".as_slice()));
    }

    #[test]
    fn the_binary_form_counts_and_terminates_each_lexeme() {
        let bytes = encode(&PostFields {
            text: "b a",
            author: "u",
            platform: "x",
            ..PostFields::default()
        });
        let count = i32::from_be_bytes(bytes[..4].try_into().unwrap());
        assert_eq!(count, 4);
        assert_eq!(&bytes[4..14], b"=author:u\0".as_slice());
    }
}
