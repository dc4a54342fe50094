//! `pulse bench --only refit`: what the reach forecast's upkeep costs the virality leader, on a
//! platform at the size a refit reads (its 10,000 most recent finished cascades, each author
//! with a track record, each cascade with its predictions): a refit, beside a bare read of the
//! same posts; the passes recording 10,000 finished cascades (every author new) and 10,000
//! growing ones in their authors' records, each beside a bare read of the same cascades; and
//! learning the viral thresholds, each producer's over its own most recent finished cascades,
//! beside one bare quantile over the platform's.

use std::time::Instant;

use serde::Serialize;

use crate::actors::virality::refit_platforms;
use crate::db::forecast::{
    finished_posts, platforms_to_refit, record_finished_cascades, record_growing_cascades,
    RefitScope, PERCENTILE_HISTORY, RECORD_BATCH,
};
use crate::db::virality::{learned_thresholds, THRESHOLD_HISTORY};
use crate::models::producer::{default_trust, Trust};
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
    /// Judging whether the refit ranks one producer's cascades surely worse, where it reads
    /// lower on them: the resampling of its authors, here over every cascade read (the most
    /// one producer can hold), on one core.
    pub producer_judgement_ms: f64,
    /// One whole pass as the leader runs it (read, fit, store).
    pub pass_ms: f64,
    pub spearman: f64,
    pub shipped_spearman: f64,
    pub adopted: bool,
    /// The check between passes for platforms come to enough cascades without a refit, after
    /// the pass (so finding none).
    pub new_platform_check_ms: f64,
    /// The first pass recording finished cascades in their authors' records: up to 10,000
    /// of them, every author new, so each one's owner is looked up and set.
    pub finished_pass_ms: f64,
    /// A bare `SELECT` of the same cascades with their posts' authors and producers: the floor
    /// of that pass.
    pub finished_bare_read_ms: f64,
    /// Growing cascades seeded for the recording pass.
    pub growing: i64,
    /// The pass recording them, all new to their authors' records.
    pub growing_pass_ms: f64,
    /// The same pass again, nothing changed since.
    pub growing_unchanged_ms: f64,
    /// A bare `SELECT` of the same cascades with their posts' authors: the floor of that pass.
    pub growing_bare_read_ms: f64,
    /// Producers the finished cascades are spread over: one with most, the rest a few each.
    pub threshold_producers: i64,
    /// Learning the thresholds as the leader and the API do each minute (every producer's).
    pub thresholds_ms: f64,
    /// A bare `percentile_disc` over the platform's most recent finished cascades, as many
    /// as one producer's history: the floor of that learning.
    pub thresholds_bare_ms: f64,
}

pub async fn run(run: &super::Run, args: &RefitBenchArgs) -> anyhow::Result<RefitReport> {
    let db_url = &run.db_url;
    let mut client = super::connect(db_url).await?;
    eprintln!("refit: seeding {} finished cascades", args.refit_cascades);
    // 500 authors posting every 8 minutes over about two months, so each posts every three
    // days and a post's record holds cascades still growing when it went out; reach follows
    // the audience, with the text's topic and noise on top; five predictions a cascade.
    client
        .execute(
            "WITH p AS (
                 INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                     sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model,
                     stream_id)
                 SELECT 'refit-' || g, 'bluesky', 'author-' || (g % 500),
                     10 * (1 + (g * 7919) % 5000),
                     'post ' || g || ' about ' ||
                         (ARRAY['the launch', 'an outage', 'a price rise', 'a meme',
                                'the weather'])[1 + g % 5] || ' #pulse https://example.com/' || g,
                     now() - make_interval(mins => 8 * g::int), 'neutral', 0, '{}', 0, 0,
                     'bench', '0-0'
                 FROM generate_series(1, $1::int8) g
                 RETURNING id, created_at, author_followers)
             INSERT INTO virality_cascades (post_id, platform, producer, created_at, observed_at,
                 status, shares, model_name, model_version, params_hash, updated_at)
             SELECT id, 'bluesky',
                 -- Nine in ten from the main feed, the rest from 100 small producers.
                 CASE WHEN hashtext(id) % 10 = 0 THEN 'key:k' || abs(hashtext(id)) % 100
                      ELSE 'source:main' END,
                 created_at, created_at, 'finished',
                 author_followers / 200 * (1 + abs(hashtext(id)) % 7) / 3, 'm', '1', 'h',
                 now() - interval '1 minute'
             FROM p",
            &[&args.refit_cascades],
        )
        .await?;
    client
        .execute(
            "INSERT INTO virality_predictions (post_id, observed_at, age_secs, shares,
                 virality_score, virality_probability, viral, predicted_final_shares, ci_lower,
                 ci_upper, dynamics, structural_virality, velocity, acceleration, params_hash)
             SELECT c.post_id, c.created_at + make_interval(hours => 12 * k), 43200 * k,
                 c.shares * k / 5, 0, 0, false, c.shares, 0, 0, 'broad', 0, 0, 0, 'h'
             FROM virality_cascades c, generate_series(1, 5) k
             WHERE c.platform = 'bluesky'",
            &[],
        )
        .await?;
    client.batch_execute("ANALYZE").await?;
    let started = Instant::now();
    let bare = client
        .query(
            "SELECT c.post_id, c.updated_at, c.shares, p.platform, p.author_id, p.created_at,
                 p.producer
             FROM virality_cascades c JOIN posts p ON p.id = c.post_id
             WHERE c.status = 'finished'
             ORDER BY c.updated_at, c.post_id LIMIT $1",
            &[&RECORD_BATCH],
        )
        .await?;
    let finished_bare_read_ms = started.elapsed().as_secs_f64() * 1e3;
    let trust = Trust::new(&default_trust());
    let started = Instant::now();
    let finished = record_finished_cascades(&mut client, trust.pairs()).await?;
    let finished_pass_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        finished == bare.len() as i64,
        "recorded {finished} of {} finished cascades",
        bare.len()
    );
    while record_finished_cascades(&mut client, trust.pairs()).await? >= RECORD_BATCH {}

    let started = Instant::now();
    let posts = finished_posts(&mut client, "bluesky").await?;
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let bare = client
        .query(
            "SELECT p.author_id, p.text, p.author_followers, p.created_at, p.sentiment_score,
                 p.toxicity, p.emotions, c.shares
             FROM (SELECT post_id, shares FROM virality_cascades
                   WHERE status = 'finished' AND platform = 'bluesky'
                   ORDER BY last_activity_at DESC LIMIT $1) c
             JOIN posts p ON p.id = c.post_id",
            &[&PERCENTILE_HISTORY],
        )
        .await?;
    let bare_read_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(bare.len() == posts.len(), "the two reads differ");

    let started = Instant::now();
    let refit = forecast_fit::refit("bluesky", &posts, ForecastModel::built_in())
        .ok_or_else(|| anyhow::anyhow!("no refit"))?;
    let fit_ms = started.elapsed().as_secs_f64() * 1e3;
    let forecasts = |model: &ForecastModel| -> Vec<f64> {
        posts
            .iter()
            .map(|p| model.forecast(&p.draft(), None, None).log_shares)
            .collect()
    };
    let (refitted, shipped) = (
        forecasts(&refit.model),
        forecasts(ForecastModel::built_in()),
    );
    let y: Vec<f64> = posts
        .iter()
        .map(|p| (p.final_shares as f64).ln_1p())
        .collect();
    let authors: Vec<&str> = posts.iter().map(|p| p.author.as_str()).collect();
    let started = Instant::now();
    let upper = forecast_fit::upper_difference(&authors, &refitted, &shipped, &y);
    let producer_judgement_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(upper.is_finite(), "no difference resampled");

    let started = Instant::now();
    let adopted = refit_platforms(&mut client, 500, &RefitScope::Every)
        .await?
        .adopted;
    let pass_ms = started.elapsed().as_secs_f64() * 1e3;
    // What the leader pays each minute between passes once every platform with enough
    // cascades has its refit.
    let started = Instant::now();
    let unfitted =
        platforms_to_refit(&client, 500, &RefitScope::NeverFitted { except: vec![] }).await?;
    let new_platform_check_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(unfitted.is_empty(), "the refitted platform was found again");

    let threshold_producers: i64 = client
        .query_one(
            "SELECT count(DISTINCT producer) FROM virality_cascades WHERE status = 'finished'",
            &[],
        )
        .await?
        .get(0);
    let started = Instant::now();
    // Every producer's is learned, however few its cascades: the most work a pass can do.
    let learned = learned_thresholds(&client, 0.99, 1).await?;
    let thresholds_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let bare: Option<i64> = client
        .query_one(
            "SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY shares)
             FROM (SELECT shares FROM virality_cascades
                   WHERE status = 'finished' AND platform = 'bluesky'
                   ORDER BY last_activity_at DESC LIMIT $1) h",
            &[&THRESHOLD_HISTORY],
        )
        .await?
        .get(0);
    let thresholds_bare_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        bare.is_some() && learned.get("bluesky", Some("source:main")).is_some(),
        "no threshold learned"
    );

    eprintln!("refit: seeding {RECORD_BATCH} growing cascades");
    client
        .execute(
            "WITH p AS (
                 INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                     sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model,
                     stream_id)
                 SELECT 'growing-' || g, 'bluesky', 'author-' || (g % 500), 100, 'post ' || g,
                     now() - make_interval(secs => g::int), 'neutral', 0, '{}', 0, 0, 'bench',
                     '0-0'
                 FROM generate_series(1, $1::int8) g
                 RETURNING id, created_at)
             INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status,
                 shares, model_name, model_version, params_hash, last_activity_at)
             SELECT id, 'bluesky', created_at, created_at, 'active', 1 + abs(hashtext(id)) % 50,
                 'm', '1', 'h', created_at
             FROM p",
            &[&RECORD_BATCH],
        )
        .await?;
    client.batch_execute("ANALYZE").await?;
    let started = Instant::now();
    let bare = client
        .query(
            "SELECT c.post_id, c.shares, p.platform, p.author_id, p.created_at
             FROM (SELECT post_id, shares FROM virality_cascades WHERE status = 'active'
                   ORDER BY last_activity_at DESC LIMIT $1) c
             JOIN posts p ON p.id = c.post_id",
            &[&RECORD_BATCH],
        )
        .await?;
    let growing_bare_read_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let growing = record_growing_cascades(&client, trust.pairs()).await?;
    let growing_pass_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        growing == bare.len() as i64,
        "recorded {growing} of {} growing cascades",
        bare.len()
    );
    let started = Instant::now();
    let again = record_growing_cascades(&client, trust.pairs()).await?;
    let growing_unchanged_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(again == 0, "an unchanged cascade was written again");
    Ok(RefitReport {
        cascades: posts.len(),
        read_ms,
        bare_read_ms,
        fit_ms,
        producer_judgement_ms,
        pass_ms,
        spearman: refit.spearman,
        shipped_spearman: refit.replaced_spearman,
        adopted: adopted == 1,
        new_platform_check_ms,
        finished_pass_ms,
        finished_bare_read_ms,
        growing,
        growing_pass_ms,
        growing_unchanged_ms,
        growing_bare_read_ms,
        threshold_producers,
        thresholds_ms,
        thresholds_bare_ms,
    })
}

/// The report as a Markdown table.
pub fn markdown(r: &RefitReport) -> String {
    format!(
        "\n| forecast refit | figure |\n|---|---|\n| finished cascades | {} |\n| reading them with their authors' records | {:.0} ms |\n| a bare read of the same posts | {:.0} ms |\n| the fit, one core | {:.0} ms |\n| a producer judged by resampling its authors, one core | {:.0} ms |\n| a whole pass (read, fit, store) | {:.0} ms |\n| Spearman out of fold: refit / shipped | {:.3} / {:.3} |\n| adopted | {} |\n| the check for new platforms between passes | {:.1} ms |\n| recording up to 10,000 finished cascades, authors new / a bare read of them | {:.0} / {:.0} ms |\n| growing cascades recorded in one pass | {} |\n| that pass / again, nothing changed | {:.0} / {:.0} ms |\n| a bare read of the same cascades and authors | {:.0} ms |\n| viral thresholds learned for {} producers / a bare quantile of the platform | {:.1} / {:.1} ms |",
        r.cascades, r.read_ms, r.bare_read_ms, r.fit_ms, r.producer_judgement_ms, r.pass_ms, r.spearman,
        r.shipped_spearman, r.adopted, r.new_platform_check_ms, r.finished_pass_ms,
        r.finished_bare_read_ms, r.growing, r.growing_pass_ms,
        r.growing_unchanged_ms,
        r.growing_bare_read_ms,
        r.threshold_producers,
        r.thresholds_ms,
        r.thresholds_bare_ms
    )
}
