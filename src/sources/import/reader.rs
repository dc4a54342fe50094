//! The file's records from a byte offset on, as JSON lines or as CSV rows keyed by the
//! header's column names.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use super::ImportFormat;
use crate::sources::records::{At, CsvRecords, Found, Lines, Record};

/// Records of the file from a byte offset (see [`crate::sources::records`]), CSV ones keyed by the
/// header's column names.
pub(super) enum Records<'a> {
    Lines(Lines<BufReader<&'a mut std::fs::File>>),
    Csv {
        records: Box<CsvRecords<BufReader<&'a mut std::fs::File>>>,
        headers: Vec<String>,
    },
}

/// The length of the UTF-8 byte order mark `file` starts with (as spreadsheet programs write
/// it), 0 without one: the first record starts after it.
fn bom_len(file: &mut std::fs::File) -> anyhow::Result<u64> {
    let mut start = [0u8; 3];
    file.seek(SeekFrom::Start(0))?;
    let mut read = 0;
    while read < start.len() {
        match file.read(&mut start[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(if start[..read] == [0xEF, 0xBB, 0xBF] {
        3
    } else {
        0
    })
}

/// One record of the file, as the mapping reads it.
pub(super) enum Body {
    Line(Vec<u8>),
    Csv(BTreeMap<String, String>),
    TooLong,
    NotUtf8,
    /// The last record, with no line end after it: held back.
    Unterminated,
}

/// One record, the line it starts on and the position just past it.
pub(super) struct Next {
    pub(super) body: Body,
    pub(super) line: u64,
    pub(super) end: At,
}

impl<'a> Records<'a> {
    /// Records from `at` on; `complete`: the last one is read even with no line end after it.
    pub(super) fn open(
        file: &'a mut std::fs::File,
        format: ImportFormat,
        at: At,
        complete: bool,
    ) -> anyhow::Result<Self> {
        let bom = bom_len(file)?;
        let from_start = At {
            offset: bom,
            newlines: 0,
        };
        match format {
            ImportFormat::Jsonl => {
                let at = if at.offset > bom { at } else { from_start };
                file.seek(SeekFrom::Start(at.offset))?;
                let reader = BufReader::with_capacity(1 << 20, file);
                Ok(Records::Lines(Lines::new(reader, at, complete)))
            }
            ImportFormat::Csv => {
                file.seek(SeekFrom::Start(bom))?;
                // A header alone is no record to hold back: none is read after it.
                let input = BufReader::with_capacity(1 << 20, file);
                let mut records = CsvRecords::new(input, from_start, true);
                let headers = read_headers(&mut records)?;
                let header_end = records.at();
                let at = if at.offset > header_end.offset {
                    at
                } else {
                    header_end
                };
                let file = records.into_inner().into_inner();
                file.seek(SeekFrom::Start(at.offset))?;
                let input = BufReader::with_capacity(1 << 20, file);
                let records = CsvRecords::new(input, at, complete);
                Ok(Records::Csv {
                    records: Box::new(records),
                    headers,
                })
            }
        }
    }

    /// The next record.
    pub(super) fn next_record(&mut self) -> anyhow::Result<Option<Next>> {
        let read = match self {
            Records::Lines(lines) => lines.next_record()?,
            Records::Csv { records, .. } => records.next_record()?,
        };
        let Some(Found { record, line, end }) = read else {
            return Ok(None);
        };
        let body = match record {
            Record::Line(line) => Body::Line(line),
            Record::TooLong => Body::TooLong,
            Record::NotUtf8 => Body::NotUtf8,
            Record::Unterminated => Body::Unterminated,
            Record::Fields(fields) => {
                let Records::Csv { headers, .. } = self else {
                    unreachable!("only CSV records have fields")
                };
                Body::Csv(headers.iter().cloned().zip(fields).collect())
            }
        };
        Ok(Some(Next { body, line, end }))
    }
}

/// The column names of a CSV header; none in an empty file.
fn read_headers<R: BufRead>(records: &mut CsvRecords<R>) -> anyhow::Result<Vec<String>> {
    match records.next_record()?.map(|read| read.record) {
        // `id, text` names the columns `id` and `text`.
        Some(Record::Fields(headers)) => Ok(headers.iter().map(|h| h.trim().to_string()).collect()),
        Some(Record::TooLong) => anyhow::bail!("the CSV header is longer than its limits"),
        Some(Record::NotUtf8) => {
            anyhow::bail!("the CSV header is not UTF-8 text; save the file as CSV UTF-8")
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_before_the_first_record_is_skipped() {
        let dir = std::env::temp_dir().join(format!("pulse-bom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = |name: &str, body: &[u8], format: ImportFormat| {
            let path = dir.join(name);
            std::fs::write(&path, [&[0xEF, 0xBB, 0xBF][..], body].concat()).unwrap();
            let mut file = std::fs::File::open(&path).unwrap();
            let mut records = Records::open(&mut file, format, At::default(), false).unwrap();
            match records.next_record().unwrap() {
                Some(Next {
                    body: Body::Line(line),
                    end,
                    ..
                }) => (String::from_utf8(line).unwrap(), end.offset),
                Some(Next {
                    body: Body::Csv(row),
                    end,
                    ..
                }) => (format!("{row:?}"), end.offset),
                _ => panic!("no record"),
            }
        };
        let (line, end) = first("a.jsonl", b"{\"id\":1}\n{\"id\":2}\n", ImportFormat::Jsonl);
        assert_eq!((line.as_str(), end), ("{\"id\":1}", 12));
        let (row, _) = first("a.csv", b"id,text\nt1,hello\n", ImportFormat::Csv);
        assert_eq!(row, r#"{"id": "t1", "text": "hello"}"#);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
