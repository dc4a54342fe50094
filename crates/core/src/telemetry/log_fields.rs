//! Field values in text logs, written so that no value can start a line of its own or hide
//! what follows: a raw stream entry, a producer's event or a platform's answer ends up in a
//! log line (a dead letter's reason quotes what was refused), and a newline, a carriage return
//! or a direction override inside it would forge a line a reader takes for Pulse's own. JSON
//! logs escape control characters already; the text format writes `%` values as they are, so
//! every value is escaped here.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, FormatFields, Writer};

use crate::models::printable::hides_or_reorders;

/// `text` with control characters and characters that hide or reorder text written as
/// `\n`, `\r`, `\t` or `\u{..}`.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || hides_or_reorders(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || hides_or_reorders(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The text format's fields: `name=value`, separated by spaces, the message first and bare,
/// every value escaped.
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|writer: &mut Writer<'_>, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(writer, "{}", escape(&text))
        } else {
            write!(writer, "{field}={}", escape(&text))
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_written_escaped() {
        assert_eq!(escape("plain café 東京"), "plain café 東京");
        assert_eq!(
            escape("bad\n2026-11-27T00:00:00Z  INFO pulse: admin logged in\r"),
            "bad\\n2026-11-27T00:00:00Z  INFO pulse: admin logged in\\r"
        );
        assert_eq!(
            escape("a\u{202E}b\u{2028}c\u{1b}[31m"),
            "a\\u{202e}b\\u{2028}c\\u{1b}[31m"
        );
    }

    /// A value with a newline, logged through a real subscriber with these fields, stays on
    /// the event's one line.
    #[test]
    fn a_forged_line_stays_inside_its_field() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(text_fields())
            .with_writer(move || writer.clone())
            .finish();
        let reason = "unknown field `x`\n2026-11-27T00:00:00Z  INFO pulse: key rotated";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(reason = %reason, entry = "1-0", "entry dead-lettered");
        });
        let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.lines().count(), 1, "{logged}");
        assert!(
            logged.contains("reason=unknown field `x`\\n2026"),
            "{logged}"
        );
        assert!(logged.contains("entry dead-lettered"), "{logged}");
    }
}
