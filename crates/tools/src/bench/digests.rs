//! `pulse bench --only digests`: a weekly digest over a week of stored posts (1,000,000 by
//! default), of the whole stream and of a topic holding a third of them, as a schedule makes
//! it: every figure and the eight weeks before. Beside it, from outside Pulse's code: a bare
//! read of the same weeks' overall rollups (the least any weekly figure reads), and a count of
//! the week's stored posts (what a digest without rollups would read at least).

use std::time::Instant;

use chrono::{TimeDelta, Utc};
use serde::Serialize;

use super::{analyze_all, generate_posts};
use crate::http::api::digests::content::{self, equal_periods_before, DigestInput, DigestScope};
use crate::models::metrics::{minute_of, Period};
use crate::models::topic::TopicMatch;

/// Options of the digests part.
#[derive(Debug, Clone, clap::Args)]
pub struct DigestBenchArgs {
    /// Posts stored over the week before the digest.
    #[arg(long, default_value_t = 1_000_000)]
    pub digest_posts: u64,
    /// Digests computed of each scope; the median and the slowest are reported.
    #[arg(long, default_value_t = 5)]
    pub digest_runs: usize,
}

/// The digests part's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DigestReport {
    pub posts: u64,
    pub topic_posts: u64,
    /// Finished cascades stored beside the posts (a third of them).
    pub cascades: u64,
    pub runs: usize,
    /// Computing the whole stream's weekly digest: median and slowest, ms.
    pub all_median_ms: f64,
    pub all_max_ms: f64,
    /// The topic's.
    pub topic_median_ms: f64,
    pub topic_max_ms: f64,
    /// Drawing the chart and rendering every form of the whole stream's digest, ms.
    pub render_ms: f64,
    /// A bare `SELECT sum(...)` of the overall rollups of the nine weeks, ms.
    pub bare_rollups_ms: f64,
    /// A bare `count(*)` of the week's stored posts (those a figure counts), ms.
    pub bare_count_ms: f64,
}

/// Posts written per batch while seeding.
const SEED_CHUNK: u64 = 50_000;

/// Runs the part with the lexicon.
pub async fn run(run: &super::Run, args: &DigestBenchArgs) -> anyhow::Result<DigestReport> {
    let (settings, db_url, run_id) = (&run.lexicon, &run.db_url, &run.id);
    let pool = crate::db::pool(db_url, 4)?;
    let mut client = pool.get().await?;
    let topic = crate::db::topics::create(
        &mut client,
        "Battery",
        "battery",
        crate::models::topic::TopicStatus::Active,
        Some("bench"),
        crate::db::Caps {
            owner: None,
            per_owner: 1,
            total: 10,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the topic: {e}"))?;
    let to = minute_of(Utc::now());
    let from = to - TimeDelta::days(7);
    eprintln!("digests: seeding {} posts over a week", args.digest_posts);
    let mut topic_posts = 0u64;
    let admission =
        crate::db::rollup_keys::KeyAdmission::new(settings.metrics.max_keys_per_dimension);
    let step_ms = 7.0 * 86_400_000.0 / args.digest_posts.max(1) as f64;
    let mut done = 0u64;
    while done < args.digest_posts {
        let n = SEED_CHUNK.min(args.digest_posts - done);
        let events = generate_posts(n, &format!("dg-{run_id}-{done}-"));
        let (mut posts, _) = analyze_all(settings, &events)?;
        drop(events);
        for (i, p) in posts.iter_mut().enumerate() {
            let k = done + i as u64;
            p.post.created_at = to - TimeDelta::milliseconds((k as f64 * step_ms) as i64 + 1);
            if k.is_multiple_of(3) {
                p.topics = vec![TopicMatch {
                    id: topic.id,
                    version: 1,
                }];
                topic_posts += 1;
            }
        }
        for chunk in posts.chunks(2_000) {
            super::isolation::seed_batch(&pool, settings, &admission, chunk, Vec::new()).await?;
        }
        done += n;
    }
    // A third of the posts were shared: finished cascades with scores, as the tracker leaves
    // them, so the viral and negative posts are read from a full table.
    let cascades = client
        .execute(
            "INSERT INTO virality_cascades (post_id, platform, sentiment, created_at, observed_at, \
                 last_activity_at, status, shares, virality_score, model_name, model_version, \
                 params_hash) \
             SELECT id, platform, sentiment_label, created_at, created_at, created_at, 'finished', \
                 abs(hashtext(id)) % 1000, (abs(hashtext(id)) % 10000) / 100.0, 'seed', '1', 'seed' \
             FROM posts WHERE abs(hashtext(id)) % 3 = 0",
            &[],
        )
        .await?;
    eprintln!("digests: {cascades} cascades seeded");
    for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
        client.batch_execute(statement).await?;
    }

    let period = Period::between(from, to);
    let history = equal_periods_before(period, content::HISTORY);
    let timed = |scope: DigestScope| {
        let client = &client;
        let history = history.clone();
        async move {
            let mut times: Vec<f64> = Vec::new();
            let mut last = None;
            for _ in 0..args.digest_runs.max(1) {
                let started = Instant::now();
                let digest = content::compute(
                    client,
                    DigestInput {
                        scope: scope.clone(),
                        period,
                        history: history.clone(),
                        high_churn: settings.metrics.high_churn_threshold,
                        dashboard_url: &settings.webhooks.dashboard_url,
                        view: None,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("computing the digest: {}", e.message))?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                last = Some(digest);
            }
            times.sort_by(f64::total_cmp);
            Ok::<_, anyhow::Error>((times, last))
        }
    };
    eprintln!("digests: the whole stream's weekly digest");
    let (all, digest): (Vec<f64>, _) = timed(DigestScope {
        topic: None,
        name: "All posts".into(),
    })
    .await?;
    eprintln!("digests: the topic's weekly digest");
    let (of_topic, _): (Vec<f64>, _) = timed(DigestScope {
        topic: Some(topic.id),
        name: "Battery".into(),
    })
    .await?;
    let digest = digest.ok_or_else(|| anyhow::anyhow!("no digest computed"))?;
    let started = Instant::now();
    let png = crate::http::api::digests::chart::png(&digest.series, digest.from, digest.to)
        .map_err(anyhow::Error::msg)?;
    let _ = crate::http::api::digests::render::render(&digest, &png, false);
    let render_ms = started.elapsed().as_secs_f64() * 1000.0;

    let started = Instant::now();
    for p in std::iter::once(period).chain(history.iter().copied()) {
        client
            .query_one(
                "SELECT sum(posts)::int8, sum(negative)::int8 FROM metric_rollups \
                 WHERE dimension = 'overall' AND minute >= $1 AND minute < $2",
                &[&p.from, &p.to],
            )
            .await?;
    }
    let bare_rollups_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    // Posts no model understands count in no figure but the languages'.
    let counted: i64 = client
        .query_one(
            "SELECT count(*) FILTER (WHERE language_support <> 'unsupported') FROM posts \
             WHERE created_at >= $1 AND created_at < $2",
            &[&from, &to],
        )
        .await?
        .get(0);
    let bare_count_ms = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        digest.posts == counted,
        "the digest counts {} posts, the store {counted}",
        digest.posts
    );

    let median = |t: &[f64]| t[t.len() / 2];
    Ok(DigestReport {
        posts: args.digest_posts,
        topic_posts,
        cascades,
        runs: all.len(),
        all_median_ms: median(&all),
        all_max_ms: *all.last().unwrap_or(&0.0),
        topic_median_ms: median(&of_topic),
        topic_max_ms: *of_topic.last().unwrap_or(&0.0),
        render_ms,
        bare_rollups_ms,
        bare_count_ms,
    })
}

/// The report as a Markdown table.
pub fn markdown(d: &DigestReport) -> String {
    format!(
        "\n| weekly digest over {} posts ({} in the topic, {} cascades), {} runs each | median / slowest |\n|---|---|\n| the whole stream's digest: every figure, eight weeks of history | {:.0} / {:.0} ms |\n| the topic's digest | {:.0} / {:.0} ms |\n| drawing its chart and rendering every form | {:.0} ms |\n| bare read of the nine weeks' overall rollups | {:.0} ms |\n| bare count of the week's stored posts | {:.0} ms |\n| machine | {} |",
        d.posts,
        d.topic_posts,
        d.cascades,
        d.runs,
        d.all_median_ms,
        d.all_max_ms,
        d.topic_median_ms,
        d.topic_max_ms,
        d.render_ms,
        d.bare_rollups_ms,
        d.bare_count_ms,
        super::machine_description()
    )
}
