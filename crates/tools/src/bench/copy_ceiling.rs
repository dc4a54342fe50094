//! The physical limit of the store: PostgreSQL's own `COPY` of the benchmark's analysed posts
//! into a table of the posts table's shape (its columns, constraints and indexes), with no
//! conflict checks and no rollups. It comes from outside Pulse's code, so it does not slow down
//! when Pulse's statement does; Pulse's insert path and end-to-end figures are printed as
//! fractions of it, and a drop in a fraction shows whatever the machine.

use std::fmt::Write as _;
use std::time::Instant;

use futures::SinkExt;

use crate::actors::messages::AnalyzedPost;

/// The columns Pulse's batch statement writes, in its order.
const COLUMNS: &str = "id, platform, author_id, author_followers, text, created_at, lang, city, \
    country, product, channel, parent_id, url, sentiment_label, sentiment_score, emotions, emotion, \
    toxicity, churn_risk, model, stream_id, hate, lang_source, language_support, producer";

/// Bytes sent per `COPY` message.
const CHUNK_BYTES: usize = 1 << 20;

/// Rows per second `COPY` writes `posts` into a fresh table shaped like `posts`, through
/// `db_url`; the table is dropped afterwards.
pub async fn copy_rows_per_sec(db_url: &str, posts: &[AnalyzedPost]) -> anyhow::Result<f64> {
    let pool = crate::db::pool(db_url, 1)?;
    let client = pool.get().await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench_copy_ceiling; \
             CREATE TABLE bench_copy_ceiling \
                 (LIKE posts INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)",
        )
        .await?;
    let data = csv(posts);
    let started = Instant::now();
    let sink = client
        .copy_in(&format!(
            "COPY bench_copy_ceiling ({COLUMNS}) FROM STDIN (FORMAT csv)"
        ))
        .await?;
    futures::pin_mut!(sink);
    for chunk in data.as_bytes().chunks(CHUNK_BYTES) {
        sink.send(bytes::Bytes::copy_from_slice(chunk)).await?;
    }
    let rows = sink.finish().await?;
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    client
        .batch_execute("DROP TABLE bench_copy_ceiling")
        .await?;
    Ok(rate)
}

/// `posts` as CSV rows of [`COLUMNS`]; a missing value is an unquoted empty field (NULL).
fn csv(posts: &[AnalyzedPost]) -> String {
    let mut out = String::with_capacity(posts.len() * 400);
    for p in posts {
        let (post, a) = (&p.post, &p.analysis);
        let emotions = serde_json::to_string(&a.emotions).unwrap_or_default();
        let dominant = a.emotions.dominant().map(|e| e.as_str());
        let texts: [Option<&str>; 13] = [
            Some(&post.id),
            Some(post.platform.as_str()),
            Some(&post.author.id),
            None,
            Some(&post.text),
            None,
            a.lang.as_deref(),
            post.city(),
            post.country(),
            post.product.as_deref(),
            post.channel.as_deref(),
            post.parent_id.as_deref(),
            post.url.as_deref(),
        ];
        for (i, field) in texts.iter().enumerate() {
            match i {
                3 => {
                    let _ = write!(out, "{}", post.author.followers);
                }
                5 => {
                    let _ = write!(out, "{}", post.created_at.to_rfc3339());
                }
                _ => quoted(&mut out, *field),
            }
            out.push(',');
        }
        quoted(&mut out, Some(a.sentiment_label.as_str()));
        let _ = write!(out, ",{},", a.sentiment_score.get());
        quoted(&mut out, Some(&emotions));
        out.push(',');
        quoted(&mut out, dominant);
        let _ = write!(out, ",{},{},", a.toxicity.get(), a.churn_risk.get());
        quoted(&mut out, Some(&a.model));
        out.push(',');
        quoted(&mut out, Some(&p.entry_id));
        let _ = write!(out, ",{},", a.hate.get());
        quoted(&mut out, Some(a.lang_source.as_str()));
        out.push(',');
        quoted(&mut out, Some(a.language_support.as_str()));
        out.push(',');
        quoted(&mut out, Some(&p.producer));
        out.push('\n');
    }
    out
}

fn quoted(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    }
}
