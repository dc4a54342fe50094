//! Where an import stopped, kept in Redis so that the next run of the same file resumes there,
//! and the checks that it is still the same file read the same way.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::mapping::CsvMapping;
use super::{ImportArgs, ImportFormat};
use crate::sources::records::{count_newlines, At};
use crate::streams::producer::read_cursor;

/// The Redis key of a file's import position: the stream and the file's absolute path.
pub fn position_key(stream: &str, file: &Path) -> String {
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    let hex = crate::models::hex::hex(&digest[..8]);
    format!("{stream}:import:{hex}")
}

/// Bytes at the start of a file by which a stored position knows it is still the file it
/// was read from (another export written over the same path starts otherwise).
pub(super) const HEAD_BYTES: u64 = 4096;

/// A stored position: `offset:record:head length:head digest:line ends:reading`, the record
/// being how many records come before `offset` (an engagement without an id is named by its
/// number), the line ends how many `\n` and the reading the digest of what made its records
/// posts ([`reading_digest`]); the fields at the end are missing when written before they
/// were kept.
struct Position {
    offset: u64,
    record: u64,
    head: Option<(u64, String)>,
    newlines: Option<u64>,
    reading: Option<String>,
}

fn parse_position(stored: &str) -> Option<Position> {
    let mut parts = stored.splitn(6, ':');
    let offset = parts.next()?.parse().ok()?;
    let record = parts.next()?.parse().ok()?;
    let head = match (parts.next(), parts.next()) {
        (Some(len), Some(digest)) => Some((len.parse().ok()?, digest.to_string())),
        (None, _) => None,
        _ => return None,
    };
    let newlines = match parts.next() {
        Some(newlines) => Some(newlines.parse().ok()?),
        None => None,
    };
    let reading = parts.next().map(str::to_string);
    Some(Position {
        offset,
        record,
        head,
        newlines,
        reading,
    })
}

/// The stored form of a position at `at`, after `record` records, in a file whose first
/// `head_len` bytes have the digest `head`, read as `reading` says.
pub(super) fn format_position(
    at: At,
    record: u64,
    head_len: u64,
    head: &str,
    reading: &str,
) -> String {
    format!(
        "{}:{record}:{head_len}:{head}:{}:{reading}",
        at.offset, at.newlines
    )
}

/// The digest of what makes the file's records posts: its format and, for CSV, the columns
/// each field is read from and the platform of rows without one (JSON lines name their own).
/// Stored with the position, so that a run with another `--format`, `--map` or `--platform`
/// (the corrected command after one that read the wrong column) reads the file from its start
/// rather than from where a reading that meant other posts stopped.
pub(super) fn reading_digest(format: ImportFormat, mapping: Option<&CsvMapping>) -> String {
    let reading = match (format, mapping) {
        (ImportFormat::Csv, Some(m)) => {
            serde_json::json!(["csv", m.columns, m.platform.as_str()])
        }
        (ImportFormat::Csv, None) => serde_json::json!(["csv"]),
        (ImportFormat::Jsonl, _) => serde_json::json!(["jsonl"]),
    };
    let digest = Sha256::digest(reading.to_string().as_bytes());
    crate::models::hex::hex(&digest[..8])
}

/// The digest of the first `len` bytes of `path`; `None` when it holds fewer.
pub(super) fn head_digest(path: &Path, len: u64) -> Option<String> {
    let mut head = Vec::with_capacity(len as usize);
    std::fs::File::open(path)
        .ok()?
        .take(len)
        .read_to_end(&mut head)
        .ok()?;
    if head.len() as u64 != len {
        return None;
    }
    let digest = Sha256::digest(&head);
    Some(crate::models::hex::hex(&digest[..16]))
}

/// The line ends in the first `offset` bytes of `path`, for a position stored without them.
fn newlines_before(path: &Path, offset: u64) -> std::io::Result<u64> {
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?.take(offset));
    let mut newlines = 0;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(newlines);
        }
        newlines += count_newlines(chunk);
        let n = chunk.len();
        input.consume(n);
    }
}

/// Where a run starts.
pub(super) struct Resume {
    pub(super) at: At,
    /// The records before `at`.
    pub(super) record: u64,
    /// Why an earlier import's position was not resumed from (see [`super::ImportSummary`]).
    pub(super) started_over: Option<String>,
}

/// Where this run starts and how many records come before it: where an earlier import of
/// this file stopped, unless `--restart`, the file is shorter than that, it starts otherwise
/// (another file written over the same path), or it was read otherwise (`reading`, another
/// format or mapping); else the file's start.
pub(super) async fn resume_from(
    redis: &fred::prelude::Client,
    key: &str,
    args: &ImportArgs,
    size: u64,
    reading: &str,
) -> anyhow::Result<Resume> {
    let start = |why: Option<&str>| Resume {
        at: At::default(),
        record: 0,
        started_over: why.map(str::to_string),
    };
    if args.restart {
        return Ok(start(None));
    }
    let stored = read_cursor(redis, key).await?;
    let Some(p) = stored.as_deref().and_then(parse_position) else {
        return Ok(start(None));
    };
    if p.offset > size || p.record == 0 {
        return Ok(start(None));
    }
    if let Some((len, digest)) = &p.head {
        if head_digest(&args.file, *len).as_ref() != Some(digest) {
            return Ok(start(Some(
                "the file starts otherwise than the one an earlier import of this path read: \
                 read from its start",
            )));
        }
    }
    if p.reading.as_deref().is_some_and(|r| r != reading) {
        return Ok(start(Some(
            "an earlier import of this file read it with another --format, --map or \
             --platform: read from its start",
        )));
    }
    let newlines = match p.newlines {
        Some(newlines) => newlines,
        None => newlines_before(&args.file, p.offset)?,
    };
    let at = At {
        offset: p.offset,
        newlines,
    };
    Ok(Resume {
        at,
        record: p.record,
        started_over: None,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_keys_differ_per_file() {
        let old = parse_position("120:7").unwrap();
        assert_eq!((old.offset, old.record, old.head), (120, 7, None));
        let headed = parse_position("120:7:4096:ab12").unwrap();
        assert_eq!(headed.head, Some((4096, "ab12".to_string())));
        assert_eq!(headed.newlines, None);
        let at = At {
            offset: 120,
            newlines: 9,
        };
        let new = parse_position(&format_position(at, 7, 4096, "ab12", "cd34")).unwrap();
        assert_eq!((new.offset, new.record, new.newlines), (120, 7, Some(9)));
        assert_eq!(new.head, Some((4096, "ab12".to_string())));
        assert_eq!(new.reading.as_deref(), Some("cd34"));
        let unread = parse_position("120:7:4096:ab12:9").unwrap();
        assert_eq!((unread.newlines, unread.reading), (Some(9), None));
        assert!(parse_position("garbage").is_none());
        assert!(parse_position("1:2:x:y").is_none());
        assert!(parse_position("1:2:3:y:z").is_none());
        let csv = |map: &str, platform: &str| {
            let mapping = CsvMapping::parse(map, platform).unwrap();
            reading_digest(ImportFormat::Csv, Some(&mapping))
        };
        assert_eq!(csv("", "other"), csv("id=id, text = text", "other"));
        assert_ne!(csv("", "other"), csv("text=body", "other"));
        assert_ne!(csv("", "other"), csv("", "twitter"));
        assert_ne!(csv("", "other"), reading_digest(ImportFormat::Jsonl, None));
        assert_ne!(
            position_key("s", Path::new("/tmp/a.jsonl")),
            position_key("s", Path::new("/tmp/b.jsonl"))
        );
    }
}
