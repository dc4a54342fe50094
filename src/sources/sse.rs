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
    /// dropped.
    pub fn feed(&mut self, bytes: &[u8]) -> (Vec<SseEvent>, usize) {
        let mut events = Vec::new();
        let mut dropped = 0;
        self.buffer.extend_from_slice(bytes);
        while let Some(newline) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=newline).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.oversized {
                    dropped += 1;
                } else if !self.data.is_empty() || !self.event.is_empty() {
                    events.push(SseEvent {
                        event: std::mem::take(&mut self.event),
                        data: std::mem::take(&mut self.data),
                    });
                }
                self.event.clear();
                self.data.clear();
                self.oversized = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
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
        if self.buffer.len() > MAX_EVENT_BYTES {
            // A line without end: drop it and what it belonged to.
            self.buffer.clear();
            self.oversized = true;
        }
        (events, dropped)
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
}
