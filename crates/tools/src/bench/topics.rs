//! `pulse bench --only topics`: what topics cost.
//!
//! - Matching one post against 0, 100, 1,000 and 10,000 generated topics of 5 to 30 terms, on
//!   one core, beside the simplest alternative measured in the same run (each topic's query
//!   evaluated on its own, post by post) and the lexicon's analysis of the same posts; the
//!   set's build time and memory.
//! - The pipeline end to end with `--pipeline-topics` active topics and with none, alternated.
//! - Re-tagging `--retag-posts` stored posts for a new topic, alone and while the pipeline
//!   takes 2,000 posts/s, with the pipeline's latency beside the same run without it.
//!
//! Topics are generated from a seed as listening teams write them: brand names (rare words,
//! some hashtags and handles), context words and phrases from the posts' own vocabulary,
//! wildcards, exclusions, now and then a `NEAR` or a field; a few in a hundred are anchored on a
//! common word, so some posts match many topics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::ceilings::generate_posts;
use super::{
    connect, end_to_end, posts_only, produce_beside, rss_mb_of, start_recorded, wait_recorded,
    LATENCY_WARM_UP_SECS,
};
use crate::analysis::{lexicon::LexiconAnalyzer, Analyzer};
use crate::models::event::{Event, Post};
use crate::models::text::prefix_chars;
use crate::models::topic::TopicStatus;
use crate::topics::text::Tokens;
use crate::topics::{PostFields, TopicDef, TopicSet};

/// Options of the topics part.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicsBenchArgs {
    /// Posts matched at each number of topics.
    #[arg(long, default_value_t = 20_000)]
    pub topic_posts: usize,
    /// Real texts, one per line, mixed in with the generated posts (a share of every
    /// language Pulse reads makes the matching honest about spaceless scripts and accents).
    #[arg(long)]
    pub topic_texts: Option<std::path::PathBuf>,
    /// Active topics in the pipeline run.
    #[arg(long, default_value_t = 1_000)]
    pub pipeline_topics: usize,
    /// Pipeline runs of each kind, alternated (none, with, none, with, ...).
    #[arg(long, default_value_t = 3)]
    pub pipeline_rounds: usize,
    /// Stored posts re-tagged.
    #[arg(long, default_value_t = 1_000_000)]
    pub retag_posts: i64,
    /// Length of each latency window beside the re-tagging, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub retag_latency_secs: f64,
    /// Rounds of a window without and one with a re-tagging.
    #[arg(long, default_value_t = 3)]
    pub retag_rounds: usize,
    /// The new topic's query.
    #[arg(long, default_value = "battery OR charger OR \"pulse buds\"")]
    pub retag_query: String,
}

/// Matching at one number of topics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchRow {
    pub topics: usize,
    pub build_ms: f64,
    pub micros_per_post: f64,
    /// Topics evaluated per post (those one of whose required parts the post holds).
    pub candidates_per_post: f64,
    /// Topics matched per post.
    pub matches_per_post: f64,
    /// Posts that matched at least one topic.
    pub matched_share: f64,
    /// The set's own estimate of what it holds, and the process's resident memory it added.
    pub set_mb: f64,
    pub rss_added_mb: f64,
    /// Each topic evaluated on its own, post by post: the simplest alternative.
    pub one_by_one_micros_per_post: Option<f64>,
}

/// The topics part's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TopicsReport {
    pub machine: String,
    pub posts: usize,
    pub real_texts: usize,
    pub matching: Vec<MatchRow>,
    /// The lexicon's analysis of the same posts, one core.
    pub analysis_micros_per_post: f64,
    /// A post through one topic's learned relevance filter (reading it and scoring it), one
    /// core, and the model's non-zero weights.
    pub filter_micros_per_post: f64,
    pub filter_weights: usize,
    pub pipeline_topics: usize,
    /// End to end (posts/s), alternated: none, with, none, with, ...
    pub pipeline_without: Vec<f64>,
    pub pipeline_with: Vec<f64>,
    /// Posts of the pipeline run that matched at least one topic.
    pub pipeline_matched_share: f64,
    pub retag: Option<RetagReport>,
}

/// Re-tagging stored posts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetagReport {
    pub posts: i64,
    pub matched: i64,
    /// With no pipeline load.
    pub idle_posts_per_sec: f64,
    /// While the pipeline takes the latency run's rate, one per round.
    pub loaded_posts_per_sec: Vec<f64>,
    pub latency_rate: f64,
    /// The pipeline's latency in each round's window without and with a re-tagging.
    pub p50_without_ms: Vec<f64>,
    pub p99_without_ms: Vec<f64>,
    pub p50_with_ms: Vec<f64>,
    pub p99_with_ms: Vec<f64>,
}

/// Runs the part; the pipeline's runs, `--events` posts each, with the lexicon.
pub async fn run(run: &super::Run, args: &TopicsBenchArgs) -> anyhow::Result<TopicsReport> {
    let (db_url, run_id) = (&run.db_url, &run.id);
    let mut report = TopicsReport {
        machine: super::machine_description(),
        pipeline_topics: args.pipeline_topics,
        ..Default::default()
    };
    let posts = bench_posts(args)?;
    report.posts = posts.len();
    report.real_texts = posts.iter().filter(|p| p.id.starts_with("real-")).count();
    let vocabulary = vocabulary(&posts);
    matching(&posts, &vocabulary, &mut report);

    eprintln!("topics: pipeline with {} topics", args.pipeline_topics);
    let queries = generate_topics(args.pipeline_topics, &vocabulary, 3);
    for round in 0..args.pipeline_rounds {
        set_topics(db_url, &[]).await?;
        report
            .pipeline_without
            .push(end_to_end(run, &format!("{run_id}n{round}"), run.events).await?);
        set_topics(db_url, &queries).await?;
        let with = end_to_end_counting(run, &format!("{run_id}t{round}")).await?;
        report.pipeline_with.push(with.0);
        report.pipeline_matched_share = with.1;
        eprintln!(
            "pipeline: {:.0}/s without, {:.0}/s with {} topics",
            report.pipeline_without[round], report.pipeline_with[round], args.pipeline_topics
        );
    }
    set_topics(db_url, &[]).await?;
    if args.retag_posts > 0 {
        report.retag = Some(retag(run, &posts, args).await?);
    }
    Ok(report)
}

/// The generated posts, with the real texts of `--topic-texts` in place of some.
fn bench_posts(args: &TopicsBenchArgs) -> anyhow::Result<Vec<Post>> {
    let mut posts: Vec<Post> = generate_posts(args.topic_posts as u64, "topics-bench-")
        .iter()
        .filter_map(|json| match Event::from_slice(json.as_bytes()) {
            Ok(Event::Post(p)) => Some(p),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!posts.is_empty(), "the generator made no posts");
    if let Some(path) = &args.topic_texts {
        let texts = std::fs::read_to_string(path)?;
        let real: Vec<&str> = texts.lines().filter(|l| !l.trim().is_empty()).collect();
        // Every third post reads a real text.
        for (i, text) in real.iter().take(posts.len() / 3).enumerate() {
            let slot = &mut posts[i * 3];
            slot.id = format!("real-{i}");
            slot.text = prefix_chars(text, 2_000).to_string();
            slot.lang = None;
        }
    }
    Ok(posts)
}

fn fields(p: &Post) -> PostFields<'_> {
    PostFields {
        text: &p.text,
        author: &p.author.id,
        platform: p.platform.as_str(),
        lang: p.lang.as_deref(),
        country: p.country(),
        city: p.city(),
        product: p.product.as_deref(),
        channel: p.channel.as_deref(),
        url: p.url.as_deref(),
    }
}

/// The posts' words of three letters or more, most frequent first.
fn vocabulary(posts: &[Post]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in posts {
        let tokens = Tokens::read(&p.text);
        for i in 0..tokens.len() {
            let word = tokens.text(i);
            if word.chars().count() >= 3 && word.chars().all(char::is_alphabetic) {
                *counts.entry(word.to_string()).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.into_iter().map(|(w, _)| w).collect()
}

/// `n` topic queries of 5 to 30 terms, from `seed` (see the module documentation).
pub fn generate_topics(n: usize, vocabulary: &[String], seed: u64) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let syllables = [
        "zor", "vex", "lum", "kai", "dra", "pix", "nov", "qua", "tem", "ryo",
    ];
    (0..n)
        .map(|i| {
            let brand = format!(
                "{}{}{}",
                syllables[i % 10],
                syllables[(i / 10) % 10],
                i / 100
            );
            let word = |rng: &mut SmallRng| -> String {
                // Mostly the long tail of the vocabulary: teams name specific things.
                let at = (rng.random::<f64>().powi(2) * vocabulary.len() as f64) as usize;
                vocabulary[at.min(vocabulary.len() - 1)].clone()
            };
            let terms = rng.random_range(5..=30usize);
            let anchors = rng.random_range(1..=3usize).min(terms - 2);
            let exclusions = rng.random_range(0..=(terms - anchors - 1).min(6));
            let context = terms - anchors - exclusions;
            let mut anchor_terms: Vec<String> = (0..anchors)
                .map(|k| match k {
                    0 if rng.random_bool(0.03) => word(&mut rng),
                    0 => brand.clone(),
                    1 => format!("#{brand}"),
                    _ => format!("\"{brand} app\""),
                })
                .collect();
            if rng.random_bool(0.05) {
                anchor_terms.push(format!("@{brand}"));
            }
            let context_terms: Vec<String> = (0..context)
                .map(|_| match rng.random_range(0..10) {
                    0 => format!("\"{} {}\"", word(&mut rng), word(&mut rng)),
                    1 => {
                        let w = word(&mut rng);
                        let cut: String = w.chars().take(4.max(w.chars().count() - 2)).collect();
                        format!("{cut}*")
                    }
                    _ => word(&mut rng),
                })
                .collect();
            let exclusion_terms: Vec<String> = (0..exclusions).map(|_| word(&mut rng)).collect();
            let mut query = format!("({})", anchor_terms.join(" OR "));
            if rng.random_bool(0.1) && !context_terms.is_empty() {
                query = format!("({query} NEAR/5 {})", context_terms[0]);
            }
            if !context_terms.is_empty() {
                query = format!("{query} AND ({})", context_terms.join(" OR "));
            }
            if !exclusion_terms.is_empty() {
                query = format!("{query} NOT ({})", exclusion_terms.join(" OR "));
            }
            if rng.random_bool(0.05) {
                query = format!("{query} platform:reddit");
            }
            query
        })
        .collect()
}

fn matching(posts: &[Post], vocabulary: &[String], report: &mut TopicsReport) {
    let mut lexicon = LexiconAnalyzer::new();
    let started = Instant::now();
    for chunk in posts.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.text.as_str()).collect();
        std::hint::black_box(lexicon.analyze_batch(&texts));
    }
    report.analysis_micros_per_post = micros_per(started, posts.len());
    relevance_filter(posts, report);
    for n in [0, 100, 1_000, 10_000] {
        let defs = TopicDef::numbered(&generate_topics(n, vocabulary, 1));
        let rss_before = rss_mb_of(std::process::id());
        let started = Instant::now();
        let (set, refused) = TopicSet::build(defs.clone());
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        assert!(refused.is_empty(), "generated queries parse: {refused:?}");
        let rss_added_mb = rss_mb_of(std::process::id()) - rss_before;
        // Warm the per-thread working memory, then time.
        for p in posts.iter().take(100) {
            std::hint::black_box(set.matches(&fields(p)));
        }
        let (mut matched, mut any) = (0usize, 0usize);
        let started = Instant::now();
        for p in posts {
            let m = set.matches(&fields(p));
            matched += m.len();
            any += usize::from(!m.is_empty());
        }
        let micros = micros_per(started, posts.len());
        let one_by_one = (n > 0 && n <= 1_000).then(|| one_by_one(&defs, posts));
        let row = MatchRow {
            topics: n,
            build_ms,
            micros_per_post: micros,
            candidates_per_post: set.candidates_per_post(posts.iter().map(fields)),
            matches_per_post: matched as f64 / posts.len() as f64,
            matched_share: any as f64 / posts.len() as f64,
            set_mb: set.approx_bytes() as f64 / 1e6,
            rss_added_mb,
            one_by_one_micros_per_post: one_by_one,
        };
        eprintln!(
            "topics {n}: {:.2} µs/post (one by one {:?}), {:.1} candidates, build {:.0} ms, {:.1} MB",
            row.micros_per_post, row.one_by_one_micros_per_post, row.candidates_per_post, build_ms, row.set_mb
        );
        report.matching.push(row);
    }
}

/// A learned relevance filter trained on 200 of the posts (labelled at random, so the model is
/// as dense as labels make it), applied to every post as the analyzer applies it: the post is
/// read once and scored for the one topic it matched.
fn relevance_filter(posts: &[Post], report: &mut TopicsReport) {
    use crate::topics::relevance::{self, Features, Filter, Filters, Model};
    fn read(p: &Post) -> relevance::Post<'_> {
        relevance::Post {
            text: &p.text,
            author: Some(&p.author.id),
            lang: p.lang.as_deref(),
            matched: true,
        }
    }
    let sample: Vec<Features> = posts
        .iter()
        .take(200)
        .map(|p| Features::of(&read(p)))
        .collect();
    let labelled: Vec<(&Features, bool)> = sample
        .iter()
        .zip(posts)
        .map(|(f, p)| (f, relevance::key_of(&p.id).is_multiple_of(2)))
        .collect();
    let model = Model::train(&labelled);
    report.filter_weights = match &model {
        Model::Learned { weights, .. } => weights.len(),
        Model::Constant(_) => 0,
    };
    let filters = Filters::new([(
        1,
        Filter {
            model_id: 1,
            model: Arc::new(model),
            threshold: 0.5,
        },
    )]);
    let matched = [crate::models::topic::TopicMatch { id: 1, version: 1 }];
    let started = Instant::now();
    for p in posts {
        std::hint::black_box(filters.split(matched.to_vec(), &read(p)));
    }
    report.filter_micros_per_post = micros_per(started, posts.len());
    eprintln!(
        "relevance filter: {:.2} µs/post ({} weights)",
        report.filter_micros_per_post, report.filter_weights
    );
}

/// Each topic's query on its own, post by post, over the first 2,000 posts.
fn one_by_one(defs: &[TopicDef], posts: &[Post]) -> f64 {
    let singles: Vec<TopicSet> = defs
        .iter()
        .map(|d| TopicSet::build([d.clone()]).0)
        .collect();
    let sample = &posts[..posts.len().min(2_000)];
    let started = Instant::now();
    for p in sample {
        for set in &singles {
            std::hint::black_box(set.matches(&fields(p)));
        }
    }
    micros_per(started, sample.len())
}

fn micros_per(started: Instant, n: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64
}

/// Makes `queries` the only live topics.
async fn set_topics(db_url: &str, queries: &[String]) -> anyhow::Result<()> {
    let client = connect(db_url).await?;
    client
        .batch_execute("UPDATE topics SET deleted_at = now() WHERE deleted_at IS NULL")
        .await?;
    for (i, query) in queries.iter().enumerate() {
        client
            .execute(
                "INSERT INTO topics (name, query, status) VALUES ($1, $2, $3)",
                &[
                    &format!("bench {i} {}", uuid::Uuid::new_v4().simple()),
                    query,
                    &TopicStatus::Active.as_str(),
                ],
            )
            .await?;
    }
    crate::db::topics::note_change(&client).await?;
    Ok(())
}

/// [`end_to_end`] of `--events` posts, and the share of the posts it stored that matched a
/// topic.
async fn end_to_end_counting(run: &super::Run, run_id: &str) -> anyhow::Result<(f64, f64)> {
    // The posts are truncated at the end of the run: count what matched from the rollups,
    // which stay.
    let client = connect(&run.db_url).await?;
    client.batch_execute("DELETE FROM metric_rollups").await?;
    let rate = end_to_end(run, run_id, run.events).await?;
    let sums = client
        .query_one(
            "SELECT COALESCE(sum(posts) FILTER (WHERE dimension = 'overall'), 0)::int8, \
                 COALESCE(sum(posts) FILTER (WHERE dimension = 'topic'), 0)::int8 \
             FROM metric_rollups",
            &[],
        )
        .await?;
    let (overall, topics): (i64, i64) = (sums.get(0), sums.get(1));
    Ok((rate, topics as f64 / overall.max(1) as f64))
}

/// Seeds stored posts, then re-tags them for a new topic alone and beside a latency run of
/// the lexicon.
async fn retag(
    run: &super::Run,
    posts: &[Post],
    args: &TopicsBenchArgs,
) -> anyhow::Result<RetagReport> {
    let (settings, db_url, redis, run_id) = (&run.lexicon, &run.db_url, &run.redis, &run.id);
    let client = connect(db_url).await?;
    eprintln!("retag: seeding {} stored posts", args.retag_posts);
    let texts: Vec<&str> = posts.iter().map(|p| p.text.as_str()).collect();
    client
        .execute(
            "INSERT INTO posts (id, platform, author_id, author_followers, text, created_at, \
                 sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id) \
             SELECT 'seed-' || g, 'twitter', 'a' || (g % 5000), 100, ($1::text[])[1 + g % cardinality($1::text[])], \
                 now() - make_interval(secs => g * 2.0), 'neutral', 0, '{}', 0, 0, 'seed', '0-0' \
             FROM generate_series(1, $2::int8) AS g",
            &[&texts, &args.retag_posts],
        )
        .await?;
    client.batch_execute("ANALYZE posts").await?;
    let query = args.retag_query.as_str();
    let days = (args.retag_posts as f64 * 2.0 / 86_400.0).ceil() as i64 + 1;
    let mut report = RetagReport {
        posts: args.retag_posts,
        ..Default::default()
    };

    // Alone: no process but the re-tagger's.
    let stream = format!("pulse:bench:{run_id}:retag");
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let app = start_recorded(settings, db_url, &stream, &histogram).await?;
    let topic = new_topic(&client, "retag idle", query).await?;
    let started = Instant::now();
    let job = start_retag(&client, topic, days).await?;
    let (scanned, matched) = wait_retag(&client, job).await?;
    report.idle_posts_per_sec = scanned as f64 / started.elapsed().as_secs_f64();
    report.matched = matched;
    eprintln!("retag alone: {:.0} posts/s", report.idle_posts_per_sec);

    // The latency of the pipeline at the rate, without and with a re-tagging.
    let offer = |secs: f64, prefix: &str| {
        let duration = Some(Duration::from_secs_f64(secs));
        posts_only(2_000.0, duration, 13, format!("{prefix}-{run_id}-"))
    };
    let measure = |prefix: &'static str| {
        let (histogram, url, stream) = (
            histogram.clone(),
            settings.redis.url.clone(),
            stream.clone(),
        );
        let secs = args.retag_latency_secs;
        async move {
            let warm = produce_beside(
                &url,
                &stream,
                offer(LATENCY_WARM_UP_SECS, &format!("w{prefix}")),
            )
            .await?;
            wait_recorded(&histogram, warm.posts, Duration::from_secs(60)).await;
            histogram.lock().unwrap_or_else(|p| p.into_inner()).reset();
            let sent = produce_beside(&url, &stream, offer(secs, prefix)).await?;
            wait_recorded(&histogram, sent.posts, Duration::from_secs(60)).await;
            let h = histogram.lock().unwrap_or_else(|p| p.into_inner());
            anyhow::Ok((
                sent.posts as f64 / sent.seconds,
                h.value_at_quantile(0.5) as f64,
                h.value_at_quantile(0.99) as f64,
            ))
        }
    };
    // Rounds alternate a window without and one with a re-tagging (a new one each time, ended
    // with its window), so a drift of the machine weighs on both alike.
    for round in 0..args.retag_rounds {
        let (rate, p50, p99) = measure("without").await?;
        report.latency_rate = rate;
        report.p50_without_ms.push(p50);
        report.p99_without_ms.push(p99);
        let topic = new_topic(&client, &format!("retag loaded {round}"), query).await?;
        let started = Instant::now();
        let job = start_retag(&client, topic, days).await?;
        let (_, p50, p99) = measure("with").await?;
        let scanned = progress(&client, job).await?.0;
        report
            .loaded_posts_per_sec
            .push(scanned as f64 / started.elapsed().as_secs_f64());
        report.p50_with_ms.push(p50);
        report.p99_with_ms.push(p99);
        client
            .execute(
                "UPDATE topic_retags SET status = 'cancelled' WHERE id = $1",
                &[&job],
            )
            .await?;
        eprintln!(
            "retag under load: {:.0} posts/s; p99 {p99:.0} ms, {:.0} ms without",
            report.loaded_posts_per_sec[round], report.p99_without_ms[round]
        );
    }
    app.shutdown().await;
    let _: i64 = fred::prelude::KeysInterface::del(redis, &stream).await?;
    client.batch_execute("TRUNCATE posts, engagements").await?;
    Ok(report)
}

/// A topic to re-tag for, paused: the pipeline's posts are not matched against it, so the
/// windows with a re-tagging measure the re-tagging alone.
async fn new_topic(
    client: &tokio_postgres::Client,
    name: &str,
    query: &str,
) -> anyhow::Result<i64> {
    Ok(client
        .query_one(
            "INSERT INTO topics (name, query, status) VALUES ($1, $2, 'paused') RETURNING id",
            &[&name, &query],
        )
        .await?
        .get(0))
}

async fn start_retag(
    client: &tokio_postgres::Client,
    topic: i64,
    days: i64,
) -> anyhow::Result<i64> {
    let to = chrono::Utc::now();
    let from = to - chrono::TimeDelta::days(days);
    let job = crate::db::retags::create(client, topic, from, to, 0, Some("bench"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the topic vanished"))?;
    Ok(job.id)
}

async fn progress(client: &tokio_postgres::Client, job: i64) -> anyhow::Result<(i64, i64, String)> {
    let row = client
        .query_one(
            "SELECT scanned, matched, status FROM topic_retags WHERE id = $1",
            &[&job],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Waits for re-tagging `job` to end; what it read and matched.
async fn wait_retag(client: &tokio_postgres::Client, job: i64) -> anyhow::Result<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(1_800);
    loop {
        let (scanned, matched, status) = progress(client, job).await?;
        match status.as_str() {
            "done" => return Ok((scanned, matched)),
            "queued" | "running" => {}
            other => anyhow::bail!("the re-tagging ended {other}"),
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the re-tagging did not finish in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The part's table.
pub fn markdown(r: &TopicsReport) -> String {
    let mut out = format!(
        "\n{} — {} posts ({} real texts); the lexicon's analysis of the same posts: {:.1} µs a post; \
         a post through a topic's learned relevance filter ({} weights): {:.2} µs\n\n\
         | topics | µs a post | one by one | evaluated / matched per post | posts matching any | build | set / RSS added |\n|---|---|---|---|---|---|---|\n",
        r.machine,
        r.posts,
        r.real_texts,
        r.analysis_micros_per_post,
        r.filter_weights,
        r.filter_micros_per_post
    );
    for m in &r.matching {
        out.push_str(&format!(
            "| {} | {:.2} | {} | {:.1} / {:.2} | {:.1}% | {:.0} ms | {:.1} / {:.1} MB |\n",
            m.topics,
            m.micros_per_post,
            m.one_by_one_micros_per_post
                .map_or("—".into(), |v| format!("{v:.1}")),
            m.candidates_per_post,
            m.matches_per_post,
            m.matched_share * 100.0,
            m.build_ms,
            m.set_mb,
            m.rss_added_mb
        ));
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "\n| pipeline end to end (posts/s, alternated) | runs |\n|---|---|\n| no topics | {} |\n| {} topics ({:.1}% of posts match one) | {} |\n",
        list(&r.pipeline_without),
        r.pipeline_topics,
        r.pipeline_matched_share * 100.0,
        list(&r.pipeline_with)
    ));
    if let Some(t) = &r.retag {
        let ratios: Vec<f64> = t
            .p99_with_ms
            .iter()
            .zip(&t.p99_without_ms)
            .map(|(w, o)| w / o.max(1.0))
            .collect();
        out.push_str(&format!(
            "\n| re-tagging {} stored posts ({} match) | figure |\n|---|---|\n| alone | {:.0} posts/s |\n| beside the pipeline at {:.0} posts/s, per round | {} posts/s |\n| pipeline p50 without / with, per round | {} / {} ms |\n| pipeline p99 without / with, per round | {} / {} ms |\n| p99 with / without, per round (median) | {} ({:.2}) |\n",
            t.posts, t.matched, t.idle_posts_per_sec, t.latency_rate,
            list(&t.loaded_posts_per_sec),
            list(&t.p50_without_ms), list(&t.p50_with_ms),
            list(&t.p99_without_ms), list(&t.p99_with_ms),
            ratios.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", "),
            median(&ratios)
        ));
    }
    out
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
