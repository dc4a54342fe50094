//! Server-sent events from a byte stream: `event:` and `data:` lines up to a blank line make
//! one event; comment lines (`:thump`, the heartbeat) and other fields are ignored.

/// Longest event kept; a longer one is dropped whole (and counted by the caller as malformed).
const MAX_EVENT_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: String,
    data: String,
    oversized: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete, and how many oversized ones were
    /// dropped. Each byte is looked at once however the stream is cut into chunks (a stream of
    /// short comment lines, or one long line in one-byte chunks, costs what its length costs).
    pub fn feed(&mut self, bytes: &[u8]) -> (Vec<SseEvent>, usize) {
        let mut events = Vec::new();
        let mut dropped = 0;
        let mut from = self.buffer.len();
        self.buffer.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(offset) = self.buffer[from..].iter().position(|b| *b == b'\n') {
            let end = from + offset;
            let line = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
            self.line(line.trim_end_matches('\r'), &mut events, &mut dropped);
            start = end + 1;
            from = start;
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_EVENT_BYTES {
            // A line without end: drop it and what it belonged to.
            self.buffer.clear();
            self.oversized = true;
        }
        (events, dropped)
    }

    fn line(&mut self, line: &str, events: &mut Vec<SseEvent>, dropped: &mut usize) {
        if line.is_empty() {
            if self.oversized {
                *dropped += 1;
            } else if !self.data.is_empty() || !self.event.is_empty() {
                events.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.oversized = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    self.oversized = true;
                    self.data.clear();
                } else if !self.oversized {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_heartbeats_are_ignored() {
        let mut p = SseParser::default();
        let (e, _) = p.feed(b":thump\nevent: upd");
        assert!(e.is_empty());
        let (e, _) = p.feed(b"ate\r\ndata: {\"a\":\ndata: 1}\n\nevent: delete\ndata: 12\n\n");
        assert_eq!(
            e,
            vec![
                SseEvent {
                    event: "update".into(),
                    data: "{\"a\":\n1}".into()
                },
                SseEvent {
                    event: "delete".into(),
                    data: "12".into()
                }
            ]
        );
        let huge = format!(
            "event: update\ndata: {}\n\nevent: delete\ndata: 1\n\n",
            "x".repeat(MAX_EVENT_BYTES + 1)
        );
        let (e, dropped) = p.feed(huge.as_bytes());
        assert_eq!((e.len(), dropped), (1, 1));
    }

    #[test]
    fn a_stream_cut_anywhere_gives_the_same_events_and_comment_floods_pass() {
        let stream = b":hi\nevent: update\r\ndata: {\"a\":1}\n\n:thump\nevent: delete\ndata: 7\n\n";
        let mut whole = SseParser::default();
        let (expected, _) = whole.feed(stream);
        assert_eq!(expected.len(), 2);
        let mut bytewise = SseParser::default();
        let got: Vec<SseEvent> = stream
            .iter()
            .flat_map(|b| bytewise.feed(std::slice::from_ref(b)).0)
            .collect();
        assert_eq!(got, expected);
        // Half a million comment lines in one chunk, then an event: each line is read once
        // (this took seconds of a core when every line moved the rest of the buffer).
        let mut p = SseParser::default();
        let mut flood = ":\n".repeat(MAX_EVENT_BYTES / 2).into_bytes();
        flood.extend_from_slice(b"event: update\ndata: 1\n\n");
        let (e, dropped) = p.feed(&flood);
        assert_eq!((e.len(), dropped), (1, 0));
        assert!(p.buffer.is_empty());
    }
}
