//! `pulse bench --only refit`: what refitting the reach forecast on one platform's finished
//! cascades costs the virality leader, on a platform at the size a refit reads (its 10,000
//! most recent finished cascades, each author with a track record), beside a bare read of the
//! same posts.

use std::time::Instant;

use serde::Serialize;

use crate::actors::virality::refit_platforms;
use crate::db::forecast::{finished_posts, record_finished_cascades, RECORD_BATCH};
use crate::virality::forecast::ForecastModel;
use crate::virality::forecast_fit;

/// Options of the refit part.
#[derive(Debug, Clone, clap::Args)]
pub struct RefitBenchArgs {
    /// Finished cascades seeded on the platform.
    #[arg(long, default_value_t = 10_000)]
    pub refit_cascades: i64,
}

/// The refit part's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RefitReport {
    pub cascades: usize,
    /// Reading the posts with their authors' records, as a refit does.
    pub read_ms: f64,
    /// A bare `SELECT` of the same posts' columns, no records: the floor of that read.
    pub bare_read_ms: f64,
    /// The fit on one core: penalty, residuals, held-out effects, weights.
    pub fit_ms: f64,
    /// One whole pass as the leader runs it (read, fit, store).
    pub pass_ms: f64,
    pub spearman: f64,
    pub shipped_spearman: f64,
    pub adopted: bool,
}

pub async fn run(db_url: &str, args: &RefitBenchArgs) -> anyhow::Result<RefitReport> {
    let (mut client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    eprintln!("refit: seeding {} finished cascades", args.refit_cascades);
    // 2,000 authors posting every 8 minutes over about two months; reach follows the
    // audience, with the text's topic and noise on top.
    client
        .execute(
            "WITH p AS (
                 INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                     sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model,
                     stream_id)
                 SELECT 'refit-' || g, 'bluesky', 'author-' || (g % 2000),
                     10 * (1 + (g * 7919) % 5000),
                     'post ' || g || ' about ' ||
                         (ARRAY['the launch', 'an outage', 'a price rise', 'a meme',
                                'the weather'])[1 + g % 5] || ' #pulse https://example.com/' || g,
                     now() - make_interval(mins => 8 * g::int), 'neutral', 0, '{}', 0, 0,
                     'bench', '0-0'
                 FROM generate_series(1, $1::int8) g
                 RETURNING id, created_at, author_followers)
             INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status,
                 shares, model_name, model_version, params_hash, updated_at)
             SELECT id, 'bluesky', created_at, created_at, 'finished',
                 author_followers / 200 * (1 + abs(hashtext(id)) % 7) / 3, 'm', '1', 'h',
                 now() - interval '1 minute'
             FROM p",
            &[&args.refit_cascades],
        )
        .await?;
    while record_finished_cascades(&mut client).await? >= RECORD_BATCH {}

    let started = Instant::now();
    let posts = finished_posts(&client, "bluesky").await?;
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let bare = client
        .query(
            "SELECT p.author_id, p.text, p.author_followers, p.created_at, p.sentiment_score,
                 p.toxicity, p.emotions, c.shares
             FROM virality_cascades c JOIN posts p ON p.id = c.post_id
             WHERE c.status = 'finished' AND c.platform = 'bluesky'",
            &[],
        )
        .await?;
    let bare_read_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(bare.len() == posts.len(), "the two reads differ");

    let started = Instant::now();
    let refit = forecast_fit::refit("bluesky", &posts, ForecastModel::built_in())
        .ok_or_else(|| anyhow::anyhow!("no refit"))?;
    let fit_ms = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let adopted = refit_platforms(&client, 500).await?;
    let pass_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(RefitReport {
        cascades: posts.len(),
        read_ms,
        bare_read_ms,
        fit_ms,
        pass_ms,
        spearman: refit.spearman,
        shipped_spearman: refit.replaced_spearman,
        adopted: adopted == 1,
    })
}
