//! The text of an API key, `pulse_<id>_<secret>`: recognised wherever one may turn up (the
//! gate that checks it, the audit log that must never keep one), below the layers that use it.

/// Every key starts with this, so secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "pulse_";
/// Hex digits of the public id.
pub const ID_HEX: usize = 12;
/// Hex digits of the secret (32 bytes).
pub const SECRET_HEX: usize = 64;

/// The parts of a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Splits a presented key, refusing anything not shaped like one of ours (before any
/// database or hashing work is spent on it).
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some(ParsedKey { id, secret })
}
