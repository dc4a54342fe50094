//! Records of an import file, each bounded in size: a JSON line or a CSV record longer than
//! [`MAX_RECORD_BYTES`] (or a CSV record of more than [`MAX_CSV_FIELDS`] fields) is reported
//! as [`Record::TooLong`] and skipped whole, without ever being held. Reading a fixed slice of
//! a long line and the rest as the next line would judge the two parts as two events (a line
//! padded past the slice hid the event after the padding); a CSV reader that grows its buffer
//! to the record held a 300 MB quoted field whole.

use std::io::BufRead;

/// Longest record read, in bytes: events are at most 64 KiB, so this leaves room for any
/// whitespace or CSV quoting around one.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Most fields of a CSV record.
pub const MAX_CSV_FIELDS: usize = 256;

/// One record.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A JSON line, trimmed.
    Line(Vec<u8>),
    /// A CSV record's fields.
    Fields(Vec<String>),
    /// A record over the limits, skipped.
    TooLong,
    /// A CSV record that is not UTF-8 (a spreadsheet saved in a legacy code page), skipped
    /// rather than stored with its letters replaced.
    NotUtf8,
    /// The file's last record, with no line end after it: the writer may be part way through
    /// it (a CSV row cut in its last field reads as a whole row), so it is held back, its end
    /// being its start. Nothing follows it. A JSON line that is a whole object is read even
    /// so, and any record is when the reader is told the file is complete.
    Unterminated,
}

/// A position in a file: a byte offset and the line ends (`\n`) before it, by which the
/// line a record starts on is told.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub offset: u64,
    pub newlines: u64,
}

/// One record read and where it lies.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub record: Record,
    /// The line (from 1) its first byte is on; a CSV record may run over several.
    pub line: u64,
    /// Just past it and its line end.
    pub end: At,
}

pub fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

/// Whether a line with no line end after it is a whole JSON object, which no byte the writer
/// may still add can make another.
fn is_json_object(line: &[u8]) -> bool {
    line.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

/// JSON lines from `input`, starting at `at`; blank lines are skipped.
pub struct Lines<R> {
    input: R,
    at: At,
    complete: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// `complete`: the file is whole, and a last line without a line end is read as any other.
    pub fn new(input: R, at: At, complete: bool) -> Self {
        Lines {
            input,
            at,
            complete,
            buf: Vec::new(),
        }
    }

    /// The next record; `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<Found>> {
        loop {
            let start = self.at;
            let Some((terminated, over)) = self.read_line()? else {
                return Ok(None);
            };
            let text = self.buf.trim_ascii();
            if !over && text.is_empty() {
                if terminated {
                    continue;
                }
                return Ok(None);
            }
            let read = |record| Found {
                record,
                line: start.newlines + 1,
                end: start,
            };
            if !terminated && !self.complete && (over || !is_json_object(text)) {
                return Ok(Some(read(Record::Unterminated)));
            }
            let record = match over {
                true => Record::TooLong,
                false => Record::Line(text.to_vec()),
            };
            return Ok(Some(Found {
                end: self.at,
                ..read(record)
            }));
        }
    }

    /// One line into `buf` (emptied when it is over the limit, and read on to its end); whether
    /// a line end closed it and whether it was over; `None` at the end of the input.
    fn read_line(&mut self) -> std::io::Result<Option<(bool, bool)>> {
        self.buf.clear();
        let (mut over, mut read_any) = (false, false);
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(read_any.then_some((false, over)));
            }
            read_any = true;
            let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
                Some(at) => (&available[..=at], true),
                None => (available, false),
            };
            let n = chunk.len();
            if !over && self.buf.len() + n <= MAX_RECORD_BYTES + 1 {
                self.buf.extend_from_slice(chunk);
            } else if !over {
                over = true;
                self.buf = Vec::new();
            }
            self.input.consume(n);
            self.at.offset += n as u64;
            if done {
                self.at.newlines += 1;
                return Ok(Some((true, over)));
            }
        }
    }
}

/// CSV records from `input`, which starts at `at` in its file.
pub struct CsvRecords<R> {
    core: csv_core::Reader,
    input: R,
    at: At,
    complete: bool,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> CsvRecords<R> {
    /// `complete`: the file is whole, and a last record without a line end is read as any
    /// other.
    pub fn new(input: R, at: At, complete: bool) -> Self {
        CsvRecords {
            core: csv_core::Reader::new(),
            input,
            at,
            complete,
            out: vec![0; MAX_RECORD_BYTES],
            ends: vec![0; MAX_CSV_FIELDS],
        }
    }

    /// Just past the last record read.
    pub fn at(&self) -> At {
        self.at
    }

    /// The input, positioned wherever reading ahead left it.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The next record; `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<Found>> {
        use csv_core::ReadRecordResult::*;
        let start = self.at;
        let (mut nout, mut nend, mut over) = (0, 0, false);
        // The line of the record's first byte, once read: csv_core passes over empty lines
        // before a record.
        let mut line = None;
        loop {
            let input = self.input.fill_buf()?;
            let at_end = input.is_empty();
            let (result, nin, wrote, ended) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            let consumed = &input[..nin];
            if line.is_none() {
                line = first_line(consumed, self.at.newlines);
            }
            self.at.newlines += count_newlines(consumed);
            let ended_by_cr = consumed.last() == Some(&b'\r');
            self.input.consume(nin);
            self.at.offset += nin as u64;
            nout += wrote;
            nend += ended;
            let read = |record, end| Found {
                record,
                line: line.unwrap_or(start.newlines + 1),
                end,
            };
            match result {
                InputEmpty => {}
                // Too long or too many fields: parse on to the record's end, keeping nothing.
                OutputFull | OutputEndsFull => {
                    over = true;
                    nout = 0;
                    nend = 0;
                }
                Record if at_end && !self.complete => {
                    return Ok(Some(read(self::Record::Unterminated, start)))
                }
                Record => {
                    if ended_by_cr {
                        self.take_lf()?;
                    }
                    let record = match over {
                        true => self::Record::TooLong,
                        false => self.fields(nout, nend),
                    };
                    return Ok(Some(read(record, self.at)));
                }
                End => return Ok(None),
            }
        }
    }

    /// The fields of the record just read into `out`, or [`Record::NotUtf8`].
    fn fields(&self, nout: usize, nend: usize) -> Record {
        let mut fields = Vec::with_capacity(nend);
        let mut start = 0;
        for &end in &self.ends[..nend] {
            let end = end.min(nout);
            match std::str::from_utf8(&self.out[start..end]) {
                Ok(field) => fields.push(field.to_string()),
                Err(_) => return Record::NotUtf8,
            }
            start = end;
        }
        Record::Fields(fields)
    }

    /// The `\n` of a `\r\n` after a record, taken with it (csv_core ends the record at the
    /// `\r`), so that the position after it is the next line's start.
    fn take_lf(&mut self) -> std::io::Result<()> {
        if self.input.fill_buf()?.first() == Some(&b'\n') {
            self.input.consume(1);
            self.at.offset += 1;
            self.at.newlines += 1;
        }
        Ok(())
    }
}

/// The line of the first byte of `consumed` that is no line end, `newlines` line ends coming
/// before `consumed`; `None` when it holds only line ends.
fn first_line(consumed: &[u8], newlines: u64) -> Option<u64> {
    let at = consumed.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
    Some(newlines + count_newlines(&consumed[..at]) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &[u8], complete: bool) -> Vec<Found> {
        let input = std::io::BufReader::with_capacity(64, text);
        let mut reader = Lines::new(input, At::default(), complete);
        std::iter::from_fn(|| reader.next_record().unwrap()).collect()
    }

    fn lines(text: &[u8]) -> Vec<Found> {
        lines_of(text, false)
    }

    fn csv_of(text: &[u8], complete: bool) -> Vec<Found> {
        let input = std::io::BufReader::with_capacity(64, text);
        let mut reader = CsvRecords::new(input, At::default(), complete);
        std::iter::from_fn(|| reader.next_record().unwrap()).collect()
    }

    fn csv(text: &[u8]) -> Vec<Record> {
        csv_of(text, false).into_iter().map(|r| r.record).collect()
    }

    fn fields(values: &[&str]) -> Record {
        Record::Fields(values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn a_line_too_long_is_skipped_whole_with_what_it_hides() {
        let padded = [
            b" ".repeat(MAX_RECORD_BYTES + 10),
            br#"{"hidden":1}"#.to_vec(),
        ]
        .concat();
        let text = [b"{\"a\":1}\n\n".to_vec(), padded, b"\n{\"b\":2}".to_vec()].concat();
        let got = lines(&text);
        assert_eq!(
            got.len(),
            3,
            "{:?}",
            got.iter().map(|g| &g.record).collect::<Vec<_>>()
        );
        assert_eq!(got[0].record, Record::Line(br#"{"a":1}"#.to_vec()));
        assert_eq!(got[0].end.offset, 8);
        assert_eq!(got[1].record, Record::TooLong);
        assert_eq!(got[1].line, 3);
        assert_eq!(got[2].record, Record::Line(br#"{"b":2}"#.to_vec()));
        assert_eq!((got[2].line, got[2].end.offset), (4, text.len() as u64));
    }

    /// A last line with no line end was read as a whole one: a writer's half line was refused
    /// and the position moved past it, so the line it completed was never read.
    #[test]
    fn a_last_line_without_its_end_is_held_back_unless_whole_or_the_file_complete() {
        let text = b"{\"a\":1}\n\n{\"type\":\"post\",\"id\":\"p9\",\"te";
        let got = lines(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].record, Record::Unterminated);
        assert_eq!(
            (got[1].line, got[1].end),
            (
                3,
                At {
                    offset: 9,
                    newlines: 2
                }
            )
        );
        let cut = lines_of(text, true);
        assert_eq!(cut[1].record, Record::Line(text[9..].to_vec()));
        assert_eq!(cut[1].end.offset, text.len() as u64);
        // A whole object is read; spaces after the last line end are nothing.
        let whole = lines(b"{\"a\":1}\n{\"b\":2}");
        assert_eq!(whole[1].record, Record::Line(br#"{"b":2}"#.to_vec()));
        assert_eq!(lines(b"{\"a\":1}\n  ").len(), 1);
    }

    #[test]
    fn csv_records_with_quotes_and_a_field_too_long() {
        let huge = "x".repeat(MAX_RECORD_BYTES + 5);
        let text = format!("id,text\n1,\"hello, \"\"world\"\"\nagain\"\n2,\"{huge}\"\n3,ok\n");
        assert_eq!(
            csv(text.as_bytes()),
            vec![
                fields(&["id", "text"]),
                fields(&["1", "hello, \"world\"\nagain"]),
                Record::TooLong,
                fields(&["3", "ok"]),
            ]
        );
    }

    /// Line numbers counted records: the header, empty lines and the lines of a quoted
    /// field were not counted.
    #[test]
    fn csv_records_know_the_line_they_start_on() {
        let text = b"id,text\r\n1,\"two\nlines\"\r\n\r\n\n3,ok\r\n4,end\n";
        let got = csv_of(text, false);
        let starts: Vec<u64> = got.iter().map(|r| r.line).collect();
        assert_eq!(starts, vec![1, 2, 6, 7]);
        // The position after a record ended by `\r\n` is the next line's start.
        assert_eq!(
            got[0].end,
            At {
                offset: 9,
                newlines: 1
            }
        );
        assert_eq!(
            got[3].end,
            At {
                offset: text.len() as u64,
                newlines: 7
            }
        );
    }

    /// A row cut by a writer still writing it (`Broke aft`) was read as a whole row.
    #[test]
    fn a_last_csv_row_without_its_end_is_held_back_unless_the_file_is_complete() {
        let text = b"id,created_at,text\nc8,1700000000,ok\nc9,1700000000,Broke aft";
        let got = csv_of(text, false);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].record, Record::Unterminated);
        assert_eq!(got[2].line, 3);
        assert_eq!(got[2].end, got[1].end);
        let complete = csv_of(text, true);
        assert_eq!(
            complete[2].record,
            fields(&["c9", "1700000000", "Broke aft"])
        );
        // A quoted field open at the end is cut too.
        assert_eq!(csv(b"id\n\"a\nb")[1], Record::Unterminated);
    }

    #[test]
    fn a_csv_record_with_too_many_fields_is_skipped() {
        let wide = vec!["f"; MAX_CSV_FIELDS + 1].join(",");
        let text = format!("a,b\n{wide}\nc,d\n");
        let got = csv_of(text.as_bytes(), false);
        assert_eq!(got[1].record, Record::TooLong);
        assert_eq!(got[2].record, fields(&["c", "d"]));
        assert_eq!(got[2].end.offset, text.len() as u64);
    }

    #[test]
    fn a_csv_record_in_a_legacy_code_page_is_skipped_not_mangled() {
        // "Café" as Windows-1252 writes it: é is the single byte 0xE9.
        let got = csv(b"id,text\n1,Caf\xe9\n2,ok\n");
        assert_eq!(got[1], Record::NotUtf8);
        assert_eq!(got[2], fields(&["2", "ok"]));
    }
}
