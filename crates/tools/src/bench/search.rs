//! `pulse bench --only search`: a store of `--search-posts` posts over `--search-days` days
//! (the generator's posts, a third of them real texts of every language given with
//! `--search-texts`, each written with its search vector as the store writes it), then, through
//! the HTTP API of a running Pulse: word, phrase, Boolean, wildcard and Japanese queries over
//! the last 30 days, without and with facets, and an export streamed to the end with the
//! process's memory sampled throughout.
//!
//! The store is seeded by one `INSERT ... SELECT` per chunk from `--search-distinct` analysed
//! posts repeated with new ids and times, and the search index is built once afterwards, as a
//! migration on an existing store builds it; the terms queried are drawn from the seeded texts'
//! own vocabulary at several frequencies, so every query finds posts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use serde::Serialize;

use super::ceilings::{analyze_all, generate_posts};
use super::{bench_settings, machine_description, rss_mb_of};
use crate::config::Settings;
use crate::db::search::TsVector;
use crate::models::text::prefix_chars;
use crate::search::vector::encode;
use crate::topics::text::{is_spaceless, TokenKind, Tokens};
use crate::topics::PostFields;

#[derive(Debug, Clone, clap::Args)]
pub struct SearchBenchArgs {
    /// Posts in the seeded store.
    #[arg(long, default_value_t = 1_000_000)]
    pub search_posts: i64,
    /// Days the seeded posts span, ending now.
    #[arg(long, default_value_t = 90)]
    pub search_days: i64,
    /// Distinct analysed posts the store repeats.
    #[arg(long, default_value_t = 50_000)]
    pub search_distinct: usize,
    /// Real texts, one per line; every third distinct post reads one.
    #[arg(long)]
    pub search_texts: Option<std::path::PathBuf>,
    /// Queries of each kind.
    #[arg(long, default_value_t = 20)]
    pub search_queries: usize,
    /// Rows the export aims at (it exports whole platforms until it reaches them).
    #[arg(long, default_value_t = 2_000_000)]
    pub search_export_rows: i64,
}

/// Latencies of one kind of query.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueryKind {
    pub kind: String,
    pub example: String,
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub facets_p50_ms: f64,
    pub facets_p95_ms: f64,
    pub facets_max_ms: f64,
    /// Queries whose facets were estimated from a sample (more matches than
    /// `search.exact_facets_up_to`).
    pub sampled: usize,
    /// The same facets with `exact=true`: every match counted.
    pub exact_p50_ms: f64,
    pub exact_p95_ms: f64,
    pub exact_max_ms: f64,
    /// Of those, answered 504 after the API's statement timeout.
    pub exact_timeouts: usize,
    /// Largest error of a sampled total against the exact one, in percent.
    pub sample_total_error_pct: f64,
    /// Largest error of a sampled share (of a sentiment, platform or language among the
    /// matches) against the exact one, in percentage points.
    pub sample_share_error_pp: f64,
    /// Median matches over the 30 days (the facets' total, estimated where sampled).
    pub median_matches: i64,
    /// The simple baseline: the same words as `text ILIKE` patterns over the same 30 days,
    /// newest first, 20 rows, straight to PostgreSQL (substrings, so not the same matches).
    pub ilike_queries: usize,
    pub ilike_p50_ms: f64,
    pub ilike_max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchReport {
    pub date: String,
    pub machine: String,
    pub posts: i64,
    pub days: i64,
    pub distinct: usize,
    pub seed_rows_per_sec: f64,
    pub index_build_secs: f64,
    pub index_mb: f64,
    pub table_mb: f64,
    pub kinds: Vec<QueryKind>,
    pub export_query: String,
    pub export_rows: i64,
    pub export_rows_per_sec: f64,
    pub export_csv_rows_per_sec: f64,
    pub export_csv_mb: f64,
    pub export_rss_before_mb: f64,
    pub export_rss_peak_mb: f64,
    /// PostgreSQL's own `COPY` of the same rows, newest first, as CSV: the ceiling from outside.
    pub export_copy_rows_per_sec: f64,
    /// The same export as a job: from its creation to its end.
    pub export_job_rows_per_sec: f64,
    /// The job's file downloaded.
    pub export_download_rows_per_sec: f64,
}

/// Runs the part against the run's database (migrated and empty).
pub async fn run(run: &super::Run, args: &SearchBenchArgs) -> anyhow::Result<SearchReport> {
    let (db_url, run_id) = (&run.db_url, &run.id);
    let mut settings = run.lexicon.clone();
    settings.limits.rate_limits = false;
    let mut report = SearchReport {
        date: Utc::now().format("%Y-%m-%d").to_string(),
        machine: machine_description(),
        posts: args.search_posts,
        days: args.search_days,
        distinct: args.search_distinct,
        ..Default::default()
    };
    let distinct = distinct_posts(&settings, args)?;
    eprintln!("search: seeding {} posts", args.search_posts);
    seed(db_url, &distinct, args, &mut report).await?;

    let stream = format!("pulse:bench:{run_id}:search");
    let app = crate::app::Application::build(
        bench_settings(&settings, db_url, &stream),
        crate::app::ServeOptions::default(),
    )
    .await?;
    let base = format!("http://{}", app.address());
    let http = reqwest::Client::new();
    let terms = Terms::of(&distinct);
    // The API's connections rest in proportion to their use (`database.api_busy_share`): each
    // query is sent once the previous one's rest is over, so it measures a search, not a wait.
    let rest = 1.0 / settings.database.api_busy_share.clamp(0.01, 1.0) - 1.0;
    let from = (Utc::now() - TimeDelta::days(30)).to_rfc3339();
    for (kind, queries) in terms.queries(args.search_queries) {
        if queries.is_empty() {
            continue;
        }
        eprintln!("search: {kind}");
        let mut measured = measure(&http, &base, &from, kind, &queries, rest).await?;
        ilike_baseline(db_url, &from, &queries, &mut measured).await?;
        report.kinds.push(measured);
    }
    let (query, expected) = export_query(&distinct, args);
    eprintln!("search: exporting `{query}` (about {expected} rows)");
    report.export_query = query.clone();
    export(&http, &base, &query, &mut report).await?;
    copy_ceiling(db_url, &query, &mut report).await?;
    export_job(&http, &base, &query, &mut report).await?;
    app.shutdown().await;
    Ok(report)
}

/// The distinct posts, analysed, each with its vector.
fn distinct_posts(
    settings: &Settings,
    args: &SearchBenchArgs,
) -> anyhow::Result<Vec<crate::models::AnalyzedPost>> {
    let mut events: Vec<serde_json::Value> = generate_posts(args.search_distinct as u64, "search-")
        .iter()
        .map(|e| serde_json::from_str(e).expect("generated events are JSON"))
        .collect();
    if let Some(path) = &args.search_texts {
        let texts = std::fs::read_to_string(path).context("reading --search-texts")?;
        let real: Vec<&str> = texts.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, text) in real.iter().take(events.len() / 3).enumerate() {
            let e = &mut events[i * 3];
            e["text"] = serde_json::json!(prefix_chars(text, 2_000));
            if let Some(o) = e.as_object_mut() {
                o.remove("lang");
            }
        }
    }
    let encoded: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let (mut posts, _) = analyze_all(settings, &encoded)?;
    for p in &mut posts {
        p.search = encode(&PostFields::of(p));
    }
    Ok(posts)
}

/// Inserts `args.search_posts` rows repeating `distinct`, then builds the search index.
async fn seed(
    db_url: &str,
    distinct: &[crate::models::AnalyzedPost],
    args: &SearchBenchArgs,
    report: &mut SearchReport,
) -> anyhow::Result<()> {
    let client = super::connect(db_url).await?;
    let texts: Vec<&str> = distinct.iter().map(|p| p.post.text.as_str()).collect();
    let platforms: Vec<&str> = distinct.iter().map(|p| p.post.platform.as_str()).collect();
    let authors: Vec<&str> = distinct.iter().map(|p| p.post.author.id.as_str()).collect();
    let langs: Vec<Option<&str>> = distinct
        .iter()
        .map(|p| p.analysis.lang.as_deref())
        .collect();
    let products: Vec<Option<&str>> = distinct.iter().map(|p| p.post.product.as_deref()).collect();
    let countries: Vec<Option<&str>> = distinct.iter().map(|p| p.post.country()).collect();
    let cities: Vec<Option<&str>> = distinct.iter().map(|p| p.post.city()).collect();
    let urls: Vec<Option<&str>> = distinct.iter().map(|p| p.post.url.as_deref()).collect();
    let labels: Vec<&str> = distinct
        .iter()
        .map(|p| p.analysis.sentiment_label.as_str())
        .collect();
    let scores: Vec<f32> = distinct
        .iter()
        .map(|p| p.analysis.sentiment_score.get())
        .collect();
    let vectors: Vec<TsVector> = distinct.iter().map(|p| TsVector(&p.search)).collect();
    // The search index is built after the seeding, as the migrations define it.
    let index: String = client
        .query_one("SELECT pg_get_indexdef('posts_search_idx'::regclass)", &[])
        .await?
        .get(0);
    client.batch_execute("DROP INDEX posts_search_idx").await?;
    // The distinct posts go into a table of their own once; each chunk joins it by number (an
    // array subscript per row would walk the array each time).
    client
        .execute(
            "CREATE TEMP TABLE seed AS SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
                 $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
                 $10::float4[], $11::tsvector[]) WITH ORDINALITY AS u (text, platform, author, \
                 lang, city, country, product, url, label, score, search, i)",
            &[
                &texts, &platforms, &authors, &langs, &cities, &countries, &products, &urls,
                &labels, &scores, &vectors,
            ],
        )
        .await
        .context("staging the distinct posts")?;
    client
        .batch_execute("CREATE UNIQUE INDEX ON seed (i); ANALYZE seed")
        .await?;
    let n = distinct.len() as i64;
    let span_secs = (args.search_days * 86_400) as f64;
    let step = span_secs / args.search_posts.max(1) as f64;
    let started = Instant::now();
    let chunk = 250_000i64;
    let mut from = 0i64;
    while from < args.search_posts {
        let to = (from + chunk).min(args.search_posts);
        client
            .execute(
                "INSERT INTO posts (id, platform, author_id, author_followers, text, created_at, \
                     lang, city, country, product, url, sentiment_label, sentiment_score, \
                     emotions, toxicity, churn_risk, model, stream_id, search) \
                 SELECT 'b-' || g, s.platform, s.author, 100, s.text, \
                     now() - make_interval(secs => g * $3::float8), s.lang, s.city, s.country, \
                     s.product, s.url, s.label, s.score, '{}', 0, 0, 'lexicon', '0-0', s.search \
                 FROM generate_series($1::int8, $2::int8 - 1) AS g \
                 JOIN seed s ON s.i = 1 + g % $4::int8",
                &[&from, &to, &step, &n],
            )
            .await
            .context("seeding posts")?;
        from = to;
        eprintln!("search: {from} posts");
    }
    report.seed_rows_per_sec = args.search_posts as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    client
        .batch_execute(&format!("SET maintenance_work_mem = '1GB'; {index}"))
        .await
        .context("building the search index")?;
    report.index_build_secs = started.elapsed().as_secs_f64();
    for statement in ["VACUUM ANALYZE posts", "CHECKPOINT"] {
        client.batch_execute(statement).await?;
    }
    let sizes = client
        .query_one(
            "SELECT pg_relation_size('posts_search_idx')::float8 / 1048576, \
                    pg_total_relation_size('posts')::float8 / 1048576",
            &[],
        )
        .await?;
    report.index_mb = sizes.get(0);
    report.table_mb = sizes.get(1);
    Ok(())
}

/// The seeded texts' vocabulary by frequency.
struct Terms {
    /// Latin words of four letters or more, most frequent first.
    words: Vec<String>,
    /// Pairs of such words side by side, most frequent first.
    pairs: Vec<(String, String)>,
    /// Pairs of characters of Japanese posts side by side, most frequent first.
    japanese: Vec<String>,
}

impl Terms {
    fn of(posts: &[crate::models::AnalyzedPost]) -> Terms {
        let (mut words, mut pairs, mut japanese) = (HashMap::new(), HashMap::new(), HashMap::new());
        for p in posts {
            let t = Tokens::read(&p.post.text);
            let ja =
                p.analysis.lang.as_deref() == Some("ja") || p.post.lang.as_deref() == Some("ja");
            for i in 0..t.len() {
                let (kind, text) = (t.tokens[i].kind, t.text(i));
                let latin = kind == TokenKind::Word
                    && text.chars().count() >= 4
                    && text.chars().all(|c| c.is_ascii_lowercase());
                if latin {
                    *words.entry(text.to_string()).or_insert(0usize) += 1;
                    if i + 1 < t.len() {
                        let next = t.text(i + 1);
                        if next.chars().count() >= 3 && next.chars().all(|c| c.is_ascii_lowercase())
                        {
                            *pairs
                                .entry((text.to_string(), next.to_string()))
                                .or_insert(0usize) += 1;
                        }
                    }
                }
                if ja && i + 1 < t.len() {
                    let next = t.text(i + 1);
                    let cjk = |s: &str| s.chars().count() == 1 && s.chars().all(is_spaceless);
                    if cjk(text) && cjk(next) {
                        *japanese.entry(format!("{text}{next}")).or_insert(0usize) += 1;
                    }
                }
            }
        }
        fn ranked<K: Clone + Ord>(m: HashMap<K, usize>) -> Vec<K> {
            let mut v: Vec<(K, usize)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.into_iter().map(|(k, _)| k).collect()
        }
        Terms {
            words: ranked(words),
            pairs: ranked(pairs),
            japanese: ranked(japanese),
        }
    }

    /// `n` terms spread over ranks `from..to` of `list`.
    fn band<T: Clone>(list: &[T], from: usize, to: usize, n: usize) -> Vec<T> {
        let to = to.min(list.len());
        if from >= to {
            return Vec::new();
        }
        let step = ((to - from) as f64 / n.max(1) as f64).max(1.0);
        (0..n)
            .map(|k| from + (k as f64 * step) as usize)
            .filter(|&i| i < to)
            .map(|i| list[i].clone())
            .collect()
    }

    fn queries(&self, n: usize) -> Vec<(&'static str, Vec<String>)> {
        let common = Self::band(&self.words, 0, 40, n);
        let mid = Self::band(&self.words, 100, 600, n);
        let rare = Self::band(&self.words, 1_000, 5_000, n);
        let pairs = Self::band(&self.pairs, 0, 200, n);
        let boolean = (0..n)
            .filter_map(|k| {
                let (a, b, c) = (common.get(k)?, mid.get(k)?, common.get((k + 7) % n)?);
                Some(if k % 2 == 0 {
                    format!("{a} AND {b} NOT {c}")
                } else {
                    format!("({a} OR {b}) AND NOT {c}")
                })
            })
            .collect();
        let wildcard = mid
            .iter()
            .filter(|w| w.len() >= 6)
            .map(|w| format!("{}*", &w[..5]))
            .collect();
        vec![
            ("a common word", common.clone()),
            ("a word of middling frequency", mid),
            ("a rare word", rare),
            (
                "a phrase",
                pairs.iter().map(|(a, b)| format!("\"{a} {b}\"")).collect(),
            ),
            ("a Boolean query", boolean),
            ("a wildcard", wildcard),
            ("Japanese", Self::band(&self.japanese, 0, 200, n)),
        ]
    }
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    from: &str,
    kind: &str,
    queries: &[String],
    rest: f64,
) -> anyhow::Result<QueryKind> {
    let mut plain = Vec::new();
    let mut faceted = Vec::new();
    let mut exact = Vec::new();
    let mut matches = Vec::new();
    let (mut sampled, mut total_error, mut share_error) = (0, 0.0f64, 0.0f64);
    let mut exact_timeouts = 0;
    for q in queries {
        let mut estimated = serde_json::Value::Null;
        for facets in ["", "true", "exact"] {
            let mut url = reqwest::Url::parse(&format!("{base}/api/v1/search"))?;
            url.query_pairs_mut()
                .append_pair("q", q)
                .append_pair("from", from)
                .append_pair("limit", "20");
            if !facets.is_empty() {
                url.query_pairs_mut().append_pair("facets", "true");
            }
            if facets == "exact" {
                url.query_pairs_mut().append_pair("exact", "true");
            }
            let started = Instant::now();
            let response = http.get(url).send().await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            let took = started.elapsed();
            let ms = took.as_secs_f64() * 1000.0;
            // Exact facets of a word in most posts may run past the API's statement timeout:
            // counted, with the time they took to be refused.
            let timed_out = facets == "exact" && status == reqwest::StatusCode::GATEWAY_TIMEOUT;
            anyhow::ensure!(status.is_success() || timed_out, "`{q}`: {status} {body}");
            tokio::time::sleep(took.mul_f64(rest) + Duration::from_millis(20)).await;
            match facets {
                "" => plain.push(ms),
                "true" => {
                    faceted.push(ms);
                    estimated = body["facets"].clone();
                    matches.push(estimated["total"].as_i64().unwrap_or(0));
                }
                _ if timed_out => {
                    exact.push(ms);
                    exact_timeouts += 1;
                }
                _ => {
                    exact.push(ms);
                    let counted = &body["facets"];
                    if !estimated["sample"].is_null() {
                        sampled += 1;
                        let (t, e) = (total_of(counted), total_of(&estimated));
                        total_error = total_error.max((e - t).abs() / t.max(1.0) * 100.0);
                        for facet in ["sentiment", "platform", "lang"] {
                            let (a, b) = (shares(counted, facet), shares(&estimated, facet));
                            for (key, share) in &a {
                                let other = b.get(key).copied().unwrap_or(0.0);
                                share_error = share_error.max((share - other).abs() * 100.0);
                            }
                        }
                    }
                }
            }
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| -> f64 {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    matches.sort_unstable();
    Ok(QueryKind {
        kind: kind.to_string(),
        example: queries[0].clone(),
        queries: queries.len(),
        p50_ms: q(&mut plain, 0.5),
        p95_ms: q(&mut plain, 0.95),
        max_ms: q(&mut plain, 1.0),
        facets_p50_ms: q(&mut faceted, 0.5),
        facets_p95_ms: q(&mut faceted, 0.95),
        facets_max_ms: q(&mut faceted, 1.0),
        sampled,
        exact_p50_ms: q(&mut exact, 0.5),
        exact_p95_ms: q(&mut exact, 0.95),
        exact_max_ms: q(&mut exact, 1.0),
        exact_timeouts,
        sample_total_error_pct: total_error,
        sample_share_error_pp: share_error,
        median_matches: matches[matches.len() / 2],
        ..Default::default()
    })
}

/// A facets answer's total.
fn total_of(facets: &serde_json::Value) -> f64 {
    facets["total"].as_f64().unwrap_or(0.0)
}

/// Each key's share of a facet's counts.
fn shares(facets: &serde_json::Value, facet: &str) -> HashMap<String, f64> {
    let counts: Vec<(String, f64)> = facets[facet]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let key = c["key"].as_str().unwrap_or_default().to_string();
                    (key, c["count"].as_f64().unwrap_or(0.0))
                })
                .collect()
        })
        .unwrap_or_default();
    let sum: f64 = counts.iter().map(|(_, n)| n).sum::<f64>().max(1.0);
    counts.into_iter().map(|(k, n)| (k, n / sum)).collect()
}

/// Whole platforms, most posts first, until they hold `--search-export-rows` (estimated from
/// the distinct posts' shares).
fn export_query(distinct: &[crate::models::AnalyzedPost], args: &SearchBenchArgs) -> (String, i64) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in distinct {
        *counts.entry(p.post.platform.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let per = args.search_posts as f64 / distinct.len().max(1) as f64;
    let (mut names, mut rows) = (Vec::new(), 0.0);
    for (name, n) in ranked {
        if rows >= args.search_export_rows as f64 {
            break;
        }
        names.push(format!("platform:{name}"));
        rows += n as f64 * per;
    }
    (names.join(" OR "), rows as i64)
}

async fn export(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    report: &mut SearchReport,
) -> anyhow::Result<()> {
    let pid = std::process::id();
    report.export_rss_before_mb = rss_mb_of(pid);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_mb_of(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    for format in ["jsonl", "csv"] {
        let mut url = reqwest::Url::parse(&format!("{base}/api/v1/search/export"))?;
        url.query_pairs_mut()
            .append_pair("q", query)
            .append_pair("format", format);
        let started = Instant::now();
        let mut response = http.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "export: {}",
            response.status()
        );
        let (mut lines, mut bytes) = (0i64, 0usize);
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len();
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as i64;
        }
        let secs = started.elapsed().as_secs_f64();
        if format == "jsonl" {
            // One post per line: a line break inside a text is escaped in JSON.
            report.export_rows = lines;
            report.export_rows_per_sec = lines as f64 / secs;
        } else {
            report.export_csv_rows_per_sec = report.export_rows as f64 / secs;
            report.export_csv_mb = bytes as f64 / 1_048_576.0;
        }
        eprintln!("search: export {format}: {lines} lines, {secs:.1} s");
    }
    done.store(true, Ordering::Relaxed);
    report.export_rss_peak_mb = sampler.await?;
    Ok(())
}

/// Queries of a kind that the baseline runs (a scan per rare word takes seconds).
const ILIKE_QUERIES: usize = 5;

/// The query's words as `ILIKE` patterns: those it needs and those it excludes (`NOT`). Only
/// what the benchmark's queries hold: words, "phrases", trailing wildcards, `AND` and `NOT`.
fn ilike_patterns(query: &str) -> (Vec<String>, Vec<String>) {
    let (mut need, mut exclude) = (Vec::new(), Vec::new());
    let mut negate = false;
    let mut rest = query.trim();
    while !rest.is_empty() {
        let (term, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        rest = after.trim_start();
        match term {
            "AND" => {}
            "NOT" => negate = true,
            _ => {
                let escaped = term
                    .trim_end_matches('*')
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let pattern = format!("%{escaped}%");
                if std::mem::take(&mut negate) {
                    exclude.push(pattern);
                } else {
                    need.push(pattern);
                }
            }
        }
    }
    (need, exclude)
}

/// The baseline of a kind: its first queries as `ILIKE` scans, straight to PostgreSQL.
async fn ilike_baseline(
    db_url: &str,
    from: &str,
    queries: &[String],
    kind: &mut QueryKind,
) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let from = chrono::DateTime::parse_from_rfc3339(from)?.with_timezone(&Utc);
    let mut times = Vec::new();
    for q in queries.iter().take(ILIKE_QUERIES) {
        let (need, exclude) = ilike_patterns(q);
        let started = Instant::now();
        client
            .query(
                "SELECT id FROM posts WHERE deleted_at IS NULL AND created_at >= $1 \
                   AND text ILIKE ALL($2) AND NOT text ILIKE ANY($3) \
                 ORDER BY created_at DESC, id DESC LIMIT 20",
                &[&from, &need, &exclude],
            )
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    kind.ilike_queries = times.len();
    kind.ilike_p50_ms = times.get(times.len() / 2).copied().unwrap_or_default();
    kind.ilike_max_ms = times.last().copied().unwrap_or_default();
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// `COPY` of the export's rows (`platform:a OR platform:b`), newest first.
async fn copy_ceiling(db_url: &str, query: &str, report: &mut SearchReport) -> anyhow::Result<()> {
    use futures::StreamExt;
    let platforms: Vec<String> = query
        .split(" OR ")
        .map(|p| p.trim_start_matches("platform:").replace('\'', "''"))
        .map(|p| format!("'{p}'"))
        .collect();
    let (client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let sql = format!(
        "COPY (SELECT * FROM posts WHERE platform IN ({}) AND deleted_at IS NULL \
         ORDER BY created_at DESC, id DESC) TO STDOUT WITH (FORMAT csv, HEADER)",
        platforms.join(", ")
    );
    let started = Instant::now();
    let stream = client.copy_out(sql.as_str()).await?;
    futures::pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    let secs = started.elapsed().as_secs_f64();
    report.export_copy_rows_per_sec = report.export_rows as f64 / secs;
    eprintln!(
        "search: COPY of the same rows: {:.1} MB, {secs:.1} s",
        bytes as f64 / 1_048_576.0
    );
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// The export as a job: created, followed to its end, then downloaded.
async fn export_job(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    report: &mut SearchReport,
) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/exports"))?;
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("format", "csv");
    let started = Instant::now();
    let response = http.post(url).send().await?;
    anyhow::ensure!(
        response.status().as_u16() == 202,
        "export job: {}",
        response.status()
    );
    let job: serde_json::Value = response.json().await?;
    let id = job["id"].as_i64().context("the job's id")?;
    let job = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let job: serde_json::Value = http
            .get(format!("{base}/api/v1/exports/{id}"))
            .send()
            .await?
            .json()
            .await?;
        match job["state"].as_str() {
            Some("done") => break job,
            Some("failed") => anyhow::bail!("the export job failed: {}", job["error"]),
            _ => {}
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let rows = job["rows"].as_i64().unwrap_or_default();
    report.export_job_rows_per_sec = rows as f64 / secs;
    eprintln!("search: export job: {rows} rows, {secs:.1} s");
    let link = job["download_url"].as_str().context("the job's link")?;
    let started = Instant::now();
    let mut response = http.get(format!("{base}{link}")).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "download: {}",
        response.status()
    );
    while response.chunk().await?.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    report.export_download_rows_per_sec = rows as f64 / secs;
    eprintln!("search: download: {secs:.1} s");
    Ok(())
}

/// The report as a Markdown table.
pub fn markdown(r: &SearchReport) -> String {
    let mut out = format!(
        "\n{} posts over {} days ({} distinct, repeated), {}; seeded at {:.0} rows/s, search \
         index built in {:.0} s ({:.0} MB; the posts table with every index {:.0} MB)\n\n\
         | query, last 30 days | example | p50 / p95 / max, ms | with facets: p50 / p95 / max, ms | facets sampled: queries, largest error of the total / of a share | facets with `exact=true`: p50 / p95 / max, ms (timed out) | median matches | baseline `ILIKE` scan: p50 / max, ms |\n|---|---|---|---|---|---|---|---|\n",
        r.posts, r.days, r.distinct, r.machine, r.seed_rows_per_sec, r.index_build_secs,
        r.index_mb, r.table_mb
    );
    for k in &r.kinds {
        out.push_str(&format!(
            "| {} ({}) | `{}` | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {}, {:.1}% / {:.1} pp | {:.0} / {:.0} / {:.0} ({}) | {} | {:.0} / {:.0} ({}) |\n",
            k.kind,
            k.queries,
            k.example,
            k.p50_ms,
            k.p95_ms,
            k.max_ms,
            k.facets_p50_ms,
            k.facets_p95_ms,
            k.facets_max_ms,
            k.sampled,
            k.sample_total_error_pct,
            k.sample_share_error_pp,
            k.exact_p50_ms,
            k.exact_p95_ms,
            k.exact_max_ms,
            k.exact_timeouts,
            k.median_matches,
            k.ilike_p50_ms,
            k.ilike_max_ms,
            k.ilike_queries
        ));
    }
    out.push_str(&format!(
        "\nexport of `{}`: {} rows; JSON lines {:.0} rows/s, CSV {:.0} rows/s ({:.0} MB); the \
         process's memory {:.0} MB before, {:.0} MB at most during (+{:.0} MB); PostgreSQL's \
         own `COPY` of the same rows {:.0} rows/s; as a job (CSV) {:.0} rows/s written, its file \
         downloaded at {:.0} rows/s\n",
        r.export_query,
        r.export_rows,
        r.export_rows_per_sec,
        r.export_csv_rows_per_sec,
        r.export_csv_mb,
        r.export_rss_before_mb,
        r.export_rss_peak_mb,
        r.export_rss_peak_mb - r.export_rss_before_mb,
        r.export_copy_rows_per_sec,
        r.export_job_rows_per_sec,
        r.export_download_rows_per_sec
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::ilike_patterns;

    #[test]
    fn queries_become_the_patterns_of_the_baseline() {
        let p = |q: &str| ilike_patterns(q);
        assert_eq!(p("pulse"), (vec!["%pulse%".into()], vec![]));
        assert_eq!(p("\"pulse phone\""), (vec!["%pulse phone%".into()], vec![]));
        assert_eq!(p("looki*"), (vec!["%looki%".into()], vec![]));
        assert_eq!(
            p("pulse AND looking NOT again"),
            (
                vec!["%pulse%".into(), "%looking%".into()],
                vec!["%again%".into()]
            )
        );
        assert_eq!(p("100%_x"), (vec!["%100\\%\\_x%".into()], vec![]));
    }
}
