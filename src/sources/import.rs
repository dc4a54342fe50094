//! `pulse import FILE`: a file of events into the stream, for backfills and for data kept
//! elsewhere. JSON lines in Pulse's event format, or CSV with a column mapping (`--map
//! id=tweet_id,text=content,...`), each line checked as the ingester checks it; a refused line
//! is counted with its reason (the first few quoted with their line numbers) and the rest go
//! on. The position (byte offset, record and line) is stored in Redis with each batch, so an
//! interrupted import resumes where it stopped; what it appends twice is stored once because
//! posts carry their ids. A position is kept only for the same reading of the file (format and
//! mapping), and a run that accepted nothing keeps none past its first refused record, so the
//! corrected command reads what a wrong one refused. A last record with no line end is held back, as its writer may be
//! part way through it. A backlog ceiling keeps the stream from growing far ahead of the
//! pipeline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::records::{
    count_newlines, At, CsvRecords, Found, Lines, Record, MAX_CSV_FIELDS, MAX_RECORD_BYTES,
};
use crate::config::Settings;
use crate::models::event::MAX_EVENT_BYTES;
use crate::models::producer;
use crate::models::{Author, Event, EventError, Geo, Platform, Post};
use crate::streams::admission::Gate;
use crate::streams::producer::{append_with_cursor, read_cursor, MAX_PIPELINE};

/// Refused lines quoted in the summary.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One event per line, as producers write them to the stream.
    Jsonl,
    /// Comma-separated posts with a header row, read through `--map`.
    Csv,
}

/// `pulse import`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The file to import.
    pub file: PathBuf,
    /// Its format; by default from the extension (`.csv` is CSV, anything else JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// CSV columns for post fields, `field=column,...`: id, text and created_at are needed;
    /// author_id, author_followers, platform, lang, product, channel, city, country, url and
    /// parent_id are optional. A field named like its column needs no entry.
    #[arg(long, default_value = "")]
    pub map: String,
    /// Platform of CSV posts without a platform column.
    #[arg(long, default_value = "other")]
    pub platform: String,
    /// Start from the beginning even if an earlier import of this file stopped part way.
    #[arg(long)]
    pub restart: bool,
    /// The file is complete: its last record is read even with no line end after it (by
    /// default such a record is held back, as the writer may be part way through it).
    #[arg(long)]
    pub complete: bool,
    /// Pause while the consumer group has more than this many entries to read or
    /// acknowledge (0: never pause).
    #[arg(long, default_value_t = 200_000)]
    pub max_backlog: i64,
    /// Pause while the oldest entry the group has not acknowledged has waited more than this
    /// many seconds (0: never pause): an import fills what the pipeline drains and no more,
    /// so live posts arriving meanwhile wait at most about this long behind it.
    #[arg(long, default_value_t = 5.0)]
    pub max_backlog_secs: f64,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// What an import did, printed as JSON at the end.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub file: String,
    /// The line it started from (1 unless it resumed).
    pub started_at_line: u64,
    /// Why the position an earlier import of this path stored was not resumed from: the file
    /// starts otherwise, or it was read with another `--format`, `--map` or `--platform`, so
    /// its lines meant other posts then. `null` when it resumed, there was none, or
    /// `--restart` was given.
    pub started_over: Option<String>,
    /// Records read.
    pub lines: u64,
    pub accepted: u64,
    pub refused: u64,
    /// Refused lines by reason.
    pub refused_by_reason: BTreeMap<String, u64>,
    /// The first refused records: `line N: reason`, N the line the record starts on.
    pub examples: Vec<String>,
    /// The line of the file's last record when no line end follows it: held back, not read,
    /// as the writer may be part way through it. The next run reads it once its line end is
    /// there; `--complete` reads it now.
    pub held_back_line: Option<u64>,
    pub seconds: f64,
    pub lines_per_sec: f64,
}

/// The Redis key of a file's import position: the stream and the file's absolute path.
pub fn position_key(stream: &str, file: &Path) -> String {
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    let hex = crate::models::hex::hex(&digest[..8]);
    format!("{stream}:import:{hex}")
}

/// Bytes at the start of a file by which a stored position knows it is still the file it
/// was read from (another export written over the same path starts otherwise).
const HEAD_BYTES: u64 = 4096;

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
fn format_position(at: At, record: u64, head_len: u64, head: &str, reading: &str) -> String {
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
fn reading_digest(format: ImportFormat, mapping: Option<&CsvMapping>) -> String {
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
fn head_digest(path: &Path, len: u64) -> Option<String> {
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
struct Resume {
    at: At,
    /// The records before `at`.
    record: u64,
    /// Why an earlier import's position was not resumed from (see [`ImportSummary`]).
    started_over: Option<String>,
}

/// Where this run starts and how many records come before it: where an earlier import of
/// this file stopped, unless `--restart`, the file is shorter than that, it starts otherwise
/// (another file written over the same path), or it was read otherwise (`reading`, another
/// format or mapping); else the file's start.
async fn resume_from(
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

pub async fn run(settings: &Settings, args: ImportArgs) -> anyhow::Result<ImportSummary> {
    let format =
        args.format
            .unwrap_or_else(|| match args.file.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("csv") => ImportFormat::Csv,
                _ => ImportFormat::Jsonl,
            });
    let mapping = match format {
        ImportFormat::Csv => Some(CsvMapping::parse(&args.map, &args.platform)?),
        ImportFormat::Jsonl => None,
    };
    let mut file = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", args.file.display()))?;
    let size = file.metadata()?.len();
    let redis = crate::streams::connect(&settings.redis.url, "import").await?;
    let gate = Gate {
        settings: std::sync::Arc::new(settings.clone()),
        max_entries: args.max_backlog,
        max_age_secs: args.max_backlog_secs,
        // Redis's memory is the deployment's, whoever appends: the intake's bound holds.
        max_bytes: settings.ingest.max_backlog_bytes,
    };
    let stream = settings.redis.stream.as_str();
    let key = position_key(stream, &args.file);
    let head_len = size.min(HEAD_BYTES);
    let head = head_digest(&args.file, head_len).unwrap_or_default();
    let reading = reading_digest(format, mapping.as_ref());
    let resume = resume_from(&redis, &key, &args, size, &reading).await?;
    // `at` is just past the last record read, `ordinal` the number of records read.
    let (mut at, mut ordinal) = (resume.at, resume.record);
    let mut summary = ImportSummary {
        file: args.file.display().to_string(),
        started_at_line: if ordinal == 0 { 1 } else { at.newlines + 1 },
        started_over: resume.started_over,
        ..ImportSummary::default()
    };
    if let Some(why) = &summary.started_over {
        tracing::warn!("{why}");
    }
    if ordinal > 0 {
        tracing::info!(
            line = summary.started_at_line,
            "resuming an earlier import of this file"
        );
    }
    let started = Instant::now();
    let mut progress = Progress::new(size, args.quiet);
    let mut batch: Vec<String> = Vec::with_capacity(MAX_PIPELINE);
    // The position of the first record refused as not UTF-8, stored in place of the run's
    // own: the file saved as UTF-8 and imported again is read from that record on (what
    // follows it is appended again and stored once), not from past its converted records.
    let mut pinned: Option<(At, u64)> = None;
    // The position of this run's first refused record, stored in place of the run's own while
    // it has accepted nothing: a run that refused everything (the wrong column mapped, the
    // wrong format, posts from a clock ahead) leaves its records to the corrected run rather
    // than marking them read. From the file's start that stores no record read at all.
    let mut first_refused: Option<(At, u64)> = None;
    let mut records = Records::open(&mut file, format, at, args.complete)?;
    if let (Records::Csv { headers, .. }, Some(mapping)) = (&records, &mapping) {
        mapping.check_headers(headers)?;
    }
    loop {
        let done = match records.next_record()? {
            None => true,
            Some(Next {
                body: Body::Unterminated,
                line,
                ..
            }) => {
                summary.held_back_line = Some(line);
                true
            }
            Some(Next { body, line, end }) => {
                let before = (at, ordinal);
                (at, ordinal) = (end, ordinal + 1);
                summary.lines += 1;
                match judge(&body, ordinal, mapping.as_ref()) {
                    Ok(json) => {
                        summary.accepted += 1;
                        batch.push(String::from_utf8(json).unwrap_or_default());
                    }
                    Err((class, reason)) => {
                        first_refused.get_or_insert(before);
                        if class == "invalid_utf8" {
                            pinned.get_or_insert(before);
                        }
                        summary.refuse(class, line, reason);
                    }
                }
                false
            }
        };
        if batch.len() >= MAX_PIPELINE || (done && ordinal > 0) {
            gate.wait(&redis, producer::IMPORT).await?;
            let kept = if summary.accepted == 0 {
                first_refused
            } else {
                pinned
            };
            let (stop, stop_ordinal) = kept.unwrap_or((at, ordinal));
            let position = format_position(stop, stop_ordinal, head_len, &head, &reading);
            append_with_cursor(
                &redis,
                stream,
                &batch,
                &[(producer::PRODUCER_FIELD, producer::IMPORT.to_string())],
                &key,
                Some(&position),
            )
            .await?;
            batch.clear();
            progress.show(at.offset, &summary, started);
        }
        if done {
            break;
        }
    }
    progress.finish();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.lines_per_sec = summary.lines as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

impl ImportSummary {
    /// Counts a refused record starting on `line`.
    fn refuse(&mut self, class: &str, line: u64, reason: String) {
        self.refused += 1;
        *self.refused_by_reason.entry(class.to_string()).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("line {line}: {reason}"));
        }
    }
}

/// The stream entry of a record, the `ordinal`-th of its file, or the class and reason it is
/// refused for.
fn judge(
    body: &Body,
    ordinal: u64,
    mapping: Option<&CsvMapping>,
) -> Result<Vec<u8>, (&'static str, String)> {
    match (body, mapping) {
        (Body::Line(bytes), _) => Event::from_slice(bytes)
            .and_then(|event| match with_record_id(event, ordinal, bytes) {
                Some(named) => encode(&named),
                None => Ok(bytes.clone()),
            })
            .map_err(|e| (e.class(), e.to_string())),
        (Body::Csv(row), Some(m)) => m
            .event(row)
            .and_then(|e| encode(&e))
            .map_err(|e| (e.class(), e.to_string())),
        (Body::Csv(_), None) => unreachable!("CSV rows come with a mapping"),
        (Body::NotUtf8, _) => Err((
            "invalid_utf8",
            "the record is not UTF-8 text; save the file as CSV UTF-8".to_string(),
        )),
        (Body::TooLong, _) => Err((
            "record_too_long",
            format!(
                "the record is longer than {MAX_RECORD_BYTES} bytes or {MAX_CSV_FIELDS} \
                 fields; skipped whole"
            ),
        )),
        (Body::Unterminated, _) => unreachable!("a record held back is not judged"),
    }
}

/// The stream entry of an event read from the file, refused as the ingester would refuse it
/// when its JSON is larger than an event may be: a CSV text of control characters is written
/// with a six-byte escape for each, and an engagement given an id grows.
fn encode(event: &Event) -> Result<Vec<u8>, EventError> {
    let json = serde_json::to_vec(event).map_err(|e| EventError::Malformed(e.to_string()))?;
    if json.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge(json.len()));
    }
    Ok(json)
}

/// An engagement without an id, given one made of its record's number (`ordinal`: blank lines
/// are not counted, so it is not its line's) and bytes; `None` for every other event. An
/// engagement without an id is known by the stream entry it came in, so importing a file
/// again (or after Redis lost the import's position) would count it twice; with this id it is
/// the same engagement each time. Two identical lines of a file are two engagements (their
/// numbers differ).
fn with_record_id(event: Event, ordinal: u64, bytes: &[u8]) -> Option<Event> {
    let Event::Engagement(mut engagement) = event else {
        return None;
    };
    if engagement.id.is_some() {
        return None;
    }
    let mut hash = Sha256::new();
    hash.update(ordinal.to_le_bytes());
    hash.update(bytes);
    let digest = crate::models::hex::hex(&hash.finalize()[..12]);
    engagement.id = Some(format!("import:{ordinal}:{digest}"));
    Some(Event::Engagement(engagement))
}

/// Records of the file from a byte offset (see [`super::records`]), CSV ones keyed by the
/// header's column names.
enum Records<'a> {
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
enum Body {
    Line(Vec<u8>),
    Csv(BTreeMap<String, String>),
    TooLong,
    NotUtf8,
    /// The last record, with no line end after it: held back.
    Unterminated,
}

/// One record, the line it starts on and the position just past it.
struct Next {
    body: Body,
    line: u64,
    end: At,
}

impl<'a> Records<'a> {
    /// Records from `at` on; `complete`: the last one is read even with no line end after it.
    fn open(
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
    fn next_record(&mut self) -> anyhow::Result<Option<Next>> {
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

/// Post fields to CSV columns.
struct CsvMapping {
    columns: BTreeMap<&'static str, String>,
    platform: Platform,
}

const CSV_FIELDS: [&str; 13] = [
    "id",
    "text",
    "created_at",
    "author_id",
    "author_followers",
    "platform",
    "lang",
    "product",
    "channel",
    "city",
    "country",
    "url",
    "parent_id",
];

impl CsvMapping {
    /// Two columns of a name the mapping reads (a tweet's `id` and its author's): which is
    /// meant cannot be told, so the file is refused rather than one taken at random. Other
    /// names may repeat (Excel's empty trailing columns, two unused `notes`).
    fn check_headers(&self, headers: &[String]) -> anyhow::Result<()> {
        for column in self.columns.values() {
            if headers.iter().filter(|h| *h == column).count() > 1 {
                anyhow::bail!(
                    "the CSV header names the column {column:?} twice; rename one (and --map to it)"
                );
            }
        }
        Ok(())
    }

    fn parse(map: &str, platform: &str) -> anyhow::Result<CsvMapping> {
        let mut columns: BTreeMap<&'static str, String> =
            CSV_FIELDS.iter().map(|f| (*f, f.to_string())).collect();
        for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--map entry {pair:?} is not field=column"))?;
            let field = CSV_FIELDS
                .iter()
                .find(|f| **f == field.trim())
                .ok_or_else(|| {
                    anyhow::anyhow!("--map: unknown field {field:?}; the fields are {CSV_FIELDS:?}")
                })?;
            columns.insert(field, column.trim().to_string());
        }
        let platform = Platform::parse(platform)
            .ok_or_else(|| anyhow::anyhow!("--platform {platform:?} is not a known platform"))?;
        Ok(CsvMapping { columns, platform })
    }

    fn event(&self, row: &BTreeMap<String, String>) -> Result<Event, crate::models::EventError> {
        let get = |field: &str| {
            self.columns
                .get(field)
                .and_then(|c| row.get(c))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |field: &'static str| {
            get(field).ok_or(EventError::Invalid {
                field,
                reason: format!("column {:?} is missing or empty", self.columns[field]),
            })
        };
        let id = required("id")?;
        let created = required("created_at")?;
        let created_at = parse_time(&created).ok_or(EventError::Invalid {
            field: "created_at",
            reason: format!(
                "{created:?} is not a time (RFC 3339, `2026-11-20 10:00:00`, Twitter's \
                 `Fri Nov 20 10:00:00 +0000 2026`, or Unix seconds or milliseconds)"
            ),
        })?;
        let followers = match get("author_followers") {
            Some(f) => parse_count(&f).ok_or_else(|| EventError::Invalid {
                field: "author.followers",
                reason: format!("{f:?} is not a count"),
            })?,
            None => 0,
        };
        let platform = match get("platform") {
            Some(p) => Platform::parse(&p.to_lowercase()).unwrap_or(Platform::Other),
            None => self.platform,
        };
        let (city, country) = (get("city"), get("country"));
        let post = Post {
            author: Author {
                id: get("author_id").unwrap_or_else(|| "unknown".into()),
                followers,
            },
            id,
            platform,
            text: required("text")?,
            created_at,
            lang: get("lang"),
            geo: (city.is_some() || country.is_some()).then_some(Geo { city, country }),
            product: get("product"),
            channel: get("channel"),
            parent_id: get("parent_id"),
            url: get("url"),
            metrics: None,
        };
        let event = Event::Post(post);
        event.validate()?;
        Ok(event)
    }
}

/// A count as spreadsheets write one: `1200`; grouped by thousands with one separator
/// (`1,200`, `1 200`, `1_200`); or a whole float (`1200.0`, a column of counts with gaps).
/// What could be a decimal (`1,5`, `1.000` in a German sheet) is not a count.
fn parse_count(value: &str) -> Option<u64> {
    if let Ok(n) = value.parse::<u64>() {
        return Some(n);
    }
    if let Some(separator) = value
        .chars()
        .find(|c| matches!(c, ',' | '_' | ' ' | '\u{A0}' | '\u{202F}'))
    {
        let groups: Vec<&str> = value.split(separator).collect();
        let grouped = (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        return grouped.then(|| groups.concat().parse().ok()).flatten();
    }
    let (whole, fraction) = value.split_once('.')?;
    let whole_float =
        !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') && fraction.len() != 3;
    whole_float.then(|| whole.parse().ok()).flatten()
}

/// A time as exports write one: RFC 3339; `2026-11-20 10:00:00` (a space for the `T`, with or
/// without fractions and an offset; UTC without one); Twitter's `Fri Nov 20 10:00:00 +0000
/// 2026`; or Unix seconds, or milliseconds where the number is too large for seconds.
fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%a %b %d %H:%M:%S %z %Y",
    ] {
        if let Ok(t) = DateTime::parse_from_str(value, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, format) {
            return Some(t.and_utc());
        }
    }
    let number: f64 = value.parse().ok()?;
    // `nan` and `0` are what an export writes for a time it does not have.
    if !number.is_finite() || number == 0.0 {
        return None;
    }
    // 10^12 seconds is the year 33658: a number this large is milliseconds. One under 10^8
    // (1973) is a year, a date written as digits or a count, not a time.
    let seconds = if number.abs() >= 1e12 {
        number / 1e3
    } else {
        number
    };
    if seconds.abs() < 1e8 {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6) as i64)
}

/// A progress line on stderr, at most once a second.
struct Progress {
    size: u64,
    quiet: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(size: u64, quiet: bool) -> Progress {
        Progress {
            size,
            quiet,
            last: None,
        }
    }

    fn show(&mut self, offset: u64, summary: &ImportSummary, started: Instant) {
        if self.quiet
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        let percent = 100.0 * offset as f64 / self.size.max(1) as f64;
        let rate = summary.lines as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r{percent:5.1}%  {} lines  {rate:.0}/s  accepted {}  refused {}   ",
            summary.lines, summary.accepted, summary.refused
        );
    }

    fn finish(&self) {
        if !self.quiet && self.last.is_some() {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_counts_are_read_as_exports_write_them() {
        let at = |v: &str| parse_time(v).map(|t| t.to_rfc3339());
        let expected = Some("2026-11-20T10:00:00+00:00".to_string());
        for written in [
            "2026-11-20T10:00:00Z",
            "2026-11-20 10:00:00",
            "2026-11-20 10:00:00.000",
            "2026-11-20 11:00:00+01:00",
            "2026-11-20T10:00:00",
            "Fri Nov 20 10:00:00 +0000 2026",
            "1795168800",
            "1795168800000",
        ] {
            assert_eq!(at(written), expected, "{written}");
        }
        for missing in ["nan", "NaN", "0", "inf", "yesterday", "2026", "20261120"] {
            assert_eq!(at(missing), None, "{missing}");
        }
        for (written, n) in [
            ("1200", 1200),
            ("1,200", 1200),
            ("1 200", 1200),
            ("1,200,000", 1_200_000),
            ("1200.0", 1200),
        ] {
            assert_eq!(parse_count(written), Some(n), "{written}");
        }
        for bad in [
            "-3", "1.5", "1,5", "1.000", "1,2,3,4", "1 200,5", "many", "nan",
        ] {
            assert_eq!(parse_count(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_rows_map_to_posts_and_bad_rows_say_why() {
        let m = CsvMapping::parse("id=tweet_id, text=content", "twitter").unwrap();
        let row = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let Event::Post(p) = m
            .event(&row(&[
                ("tweet_id", "t1"),
                ("content", "love it"),
                ("created_at", "1700000000"),
                ("country", "DE"),
            ]))
            .unwrap()
        else {
            panic!("not a post")
        };
        assert_eq!((p.id.as_str(), p.platform), ("t1", Platform::Twitter));
        assert_eq!(p.created_at.timestamp(), 1_700_000_000);
        assert_eq!(p.geo.unwrap().country.as_deref(), Some("DE"));
        let e = m
            .event(&row(&[("tweet_id", "t2"), ("created_at", "1700000000")]))
            .unwrap_err();
        assert!(e.to_string().contains("content"), "{e}");
        let e = m
            .event(&row(&[
                ("tweet_id", "t3"),
                ("content", "x"),
                ("created_at", "yesterday"),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
        assert!(CsvMapping::parse("nope=x", "twitter").is_err());
        assert!(CsvMapping::parse("id", "twitter").is_err());
        assert!(CsvMapping::parse("", "myspace").is_err());
    }

    #[test]
    fn a_csv_text_whose_json_outgrows_an_event_is_refused_as_too_large() {
        let m = CsvMapping::parse("", "other").unwrap();
        let row = |text: String| -> BTreeMap<String, String> {
            [
                ("id", "c1".to_string()),
                ("text", text),
                ("created_at", "1700000000".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        };
        let controls = m
            .event(&row("\u{1}".repeat(19_999) + "x"))
            .expect("its fields pass");
        let e = encode(&controls).expect_err("six bytes a character");
        assert_eq!(e.class(), "too_large", "{e}");
        let plain = m.event(&row("x".repeat(19_999))).unwrap();
        let json = encode(&plain).expect("fits");
        assert_eq!(Event::from_slice(&json).unwrap(), plain);
    }

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
