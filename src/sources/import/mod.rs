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

mod mapping;
mod position;
mod reader;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::records::{At, MAX_CSV_FIELDS, MAX_RECORD_BYTES};
use crate::config::Settings;
use crate::models::event::MAX_EVENT_BYTES;
use crate::models::producer;
use crate::models::{Event, EventError};
use crate::streams::admission::Gate;
use crate::streams::producer::{append_with_cursor, MAX_PIPELINE};
use mapping::CsvMapping;
pub use position::position_key;
use position::{format_position, head_digest, reading_digest, resume_from, HEAD_BYTES};
use reader::{Body, Next, Records};

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
}
