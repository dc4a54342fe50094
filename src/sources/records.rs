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

/// One record and the byte offset just past it.
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
}

/// JSON lines from `input`, starting at byte `offset`; blank lines are skipped.
pub struct Lines<R> {
    input: R,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R, offset: u64) -> Self {
        Lines {
            input,
            offset,
            buf: Vec::new(),
        }
    }

    /// The next record and the offset just past it; `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<(Record, u64)>> {
        loop {
            self.buf.clear();
            let mut over = false;
            let mut read_any = false;
            loop {
                let available = self.input.fill_buf()?;
                if available.is_empty() {
                    break;
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
                self.offset += n as u64;
                if done {
                    break;
                }
            }
            if !read_any {
                return Ok(None);
            }
            if over {
                return Ok(Some((Record::TooLong, self.offset)));
            }
            let line = self.buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            return Ok(Some((Record::Line(line.to_vec()), self.offset)));
        }
    }
}

/// CSV records from `input`, which starts at byte `offset` of its file.
pub struct CsvRecords<R> {
    core: csv_core::Reader,
    input: R,
    offset: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> CsvRecords<R> {
    pub fn new(input: R, offset: u64) -> Self {
        CsvRecords {
            core: csv_core::Reader::new(),
            input,
            offset,
            out: vec![0; MAX_RECORD_BYTES],
            ends: vec![0; MAX_CSV_FIELDS],
        }
    }

    /// The byte offset just past the last record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The input, positioned wherever reading ahead left it.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The next record and the offset just past it; `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<(Record, u64)>> {
        use csv_core::ReadRecordResult::*;
        let (mut nout, mut nend, mut over) = (0, 0, false);
        loop {
            let input = self.input.fill_buf()?;
            let (result, nin, wrote, ended) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            self.input.consume(nin);
            self.offset += nin as u64;
            nout += wrote;
            nend += ended;
            match result {
                InputEmpty => {}
                // Too long or too many fields: parse on to the record's end, keeping nothing.
                OutputFull | OutputEndsFull => {
                    over = true;
                    nout = 0;
                    nend = 0;
                }
                Record if over => return Ok(Some((self::Record::TooLong, self.offset))),
                Record => {
                    let mut fields = Vec::with_capacity(nend);
                    let mut start = 0;
                    for &end in &self.ends[..nend] {
                        let end = end.min(nout);
                        match std::str::from_utf8(&self.out[start..end]) {
                            Ok(field) => fields.push(field.to_string()),
                            Err(_) => return Ok(Some((self::Record::NotUtf8, self.offset))),
                        }
                        start = end;
                    }
                    return Ok(Some((self::Record::Fields(fields), self.offset)));
                }
                End => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Vec<(Record, u64)> {
        let mut reader = Lines::new(std::io::BufReader::with_capacity(64, text), 0);
        std::iter::from_fn(|| reader.next_record().unwrap()).collect()
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
            got.iter().map(|g| &g.0).collect::<Vec<_>>()
        );
        assert_eq!(got[0], (Record::Line(br#"{"a":1}"#.to_vec()), 8));
        assert_eq!(got[1].0, Record::TooLong);
        assert_eq!(got[2].0, Record::Line(br#"{"b":2}"#.to_vec()));
        assert_eq!(got[2].1, text.len() as u64);
    }

    #[test]
    fn csv_records_with_quotes_and_a_field_too_long() {
        let huge = "x".repeat(MAX_RECORD_BYTES + 5);
        let text = format!("id,text\n1,\"hello, \"\"world\"\"\nagain\"\n2,\"{huge}\"\n3,ok\n");
        let mut reader = CsvRecords::new(std::io::BufReader::with_capacity(64, text.as_bytes()), 0);
        let mut got = Vec::new();
        while let Some((record, _)) = reader.next_record().unwrap() {
            got.push(record);
        }
        assert_eq!(
            got,
            vec![
                Record::Fields(vec!["id".into(), "text".into()]),
                Record::Fields(vec!["1".into(), "hello, \"world\"\nagain".into()]),
                Record::TooLong,
                Record::Fields(vec!["3".into(), "ok".into()]),
            ]
        );
    }

    #[test]
    fn a_csv_record_with_too_many_fields_is_skipped() {
        let wide = vec!["f"; MAX_CSV_FIELDS + 1].join(",");
        let text = format!("a,b\n{wide}\nc,d\n");
        let mut reader = CsvRecords::new(text.as_bytes(), 0);
        let mut got = Vec::new();
        while let Some((record, end)) = reader.next_record().unwrap() {
            got.push((record, end));
        }
        assert_eq!(got[1].0, Record::TooLong);
        assert_eq!(got[2].0, Record::Fields(vec!["c".into(), "d".into()]));
        assert_eq!(got[2].1, text.len() as u64);
    }

    #[test]
    fn a_csv_record_in_a_legacy_code_page_is_skipped_not_mangled() {
        // "Café" as Windows-1252 writes it: é is the single byte 0xE9.
        let text = b"id,text\n1,Caf\xe9\n2,ok\n";
        let mut reader = CsvRecords::new(&text[..], 0);
        let mut got = Vec::new();
        while let Some((record, _)) = reader.next_record().unwrap() {
            got.push(record);
        }
        assert_eq!(got[1], Record::NotUtf8);
        assert_eq!(got[2], Record::Fields(vec!["2".into(), "ok".into()]));
    }
}
