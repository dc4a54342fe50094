//! What a digest says about one period of one scope, each figure read through the same code
//! as the API endpoint that answers it, so a digest and the API never disagree:
//!
//! | digest field | endpoint, same scope and period |
//! |---|---|
//! | `stats`, `posts`, `negative_share` | `GET /api/v1/metrics/overall?from&to[&topic]` |
//! | `previous`, `history` | the same, for each earlier period |
//! | `series` | `GET /api/v1/metrics/timeseries?dimension=overall` (or `topic&key=`) |
//! | `stories` | `GET /api/v1/stories?sort=growing&from&to[&topic]` |
//! | `viral_posts`, `negative_posts` | `GET /api/v1/trending/posts?status=all&from&to[&sentiment=negative]` |
//! | `emerging_terms` | `GET /api/v1/trending/terms?from&to[&topic]`, this period and the previous |
//! | `alerts` | `GET /api/v1/alerts?from&to` (a topic's: `dimension=topic&key=`) |
//! | `share_of_voice`, `other_topics` | `GET /api/v1/metrics/topics?from&to`: its first ten, the rest summed |

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::alerts::{self as alerts_db, AlertFilter};
use crate::db::cascades::{self, ViralityView};
use crate::db::rollups;
use crate::db::stories::{self, StorySummary};
use crate::http::api::metrics::{
    self as metrics_api, Bucket, SeriesPoint, ShareOfVoice, TopicStats,
};
use crate::http::api::stories::StoryQuery;
use crate::http::api::virality::TrendingQuery;
use crate::http::error::ApiError;
use crate::models::alerts::AlertView;
use crate::models::metrics::{Dimension, Period, Stats, TermStats};
use crate::models::SentimentLabel;

/// Stories, posts, terms and alerts a digest lists at most.
pub const TOP: i64 = 5;
/// Terms read from each period to find the emerging ones.
const TERMS_READ: i64 = 200;
/// Emerging terms listed.
const EMERGING: usize = 10;
/// Fewest posts a term needs in the period to be called emerging.
const EMERGING_MIN_POSTS: i64 = 3;
/// Alerts listed at most.
const ALERTS: i64 = 20;
/// Topics the share of voice lists at most, most posts first; the others are summed. Listed
/// whole, a few hundred topics made a Teams card past the 28 KB Teams takes, and every
/// whole-stream digest to Teams failed.
pub const SHARE_OF_VOICE_TOPICS: usize = 10;
/// Earlier periods a change is weighed against.
pub const HISTORY: usize = 8;

/// What a digest covers: the whole stream or one topic.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DigestScope {
    /// The topic's id; null for the whole stream.
    pub topic: Option<i64>,
    /// The topic's name, or "All posts".
    pub name: String,
}

/// A period's figures as a digest shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodFigures {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub posts: i64,
    pub negative_share: f64,
}

/// How the period compares with the ones before it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Change {
    /// Posts against the previous period, as a fraction (0.25: a quarter more); null when the
    /// previous period had none.
    pub posts: Option<f64>,
    /// The negative share minus the previous period's, in points of share (0.05: five points).
    pub negative_share: f64,
    /// Standard scores of posts and negative share against the earlier periods that had
    /// posts (`history`); null with fewer than three.
    pub posts_z: Option<f64>,
    pub negative_share_z: Option<f64>,
    /// `usual`, `unusual` (a score of 2 or more either way), `very unusual` (3 or more) or
    /// `not enough history`.
    pub verdict: String,
}

/// An emerging term: frequent in the period, and more so than in the previous one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EmergingTerm {
    pub term: String,
    pub hashtag: bool,
    pub posts: i64,
    /// Posts of the previous period that contain it, when it was among that period's
    /// most frequent 200; null otherwise (then fewer than the 200th).
    pub previous_posts: Option<i64>,
    pub sentiment_mean: f64,
}

/// The chart's points: volume and sentiment per bucket over the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DigestSeries {
    pub bucket: Bucket,
    /// Buckets with posts, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// One digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct Digest {
    pub scope: DigestScope,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Posts of the period.
    pub posts: i64,
    /// Share of the period's posts that are negative (0 to 1).
    pub negative_share: f64,
    /// Every figure of the period, as `GET /api/v1/metrics/overall` answers it.
    pub stats: Stats,
    /// The period before, as long as this one.
    pub previous: PeriodFigures,
    /// The earlier periods, newest first (the previous one first).
    pub history: Vec<PeriodFigures>,
    pub change: Change,
    pub series: DigestSeries,
    pub stories: Vec<StorySummary>,
    /// Posts of the period by virality score, highest first.
    pub viral_posts: Vec<ViralityView>,
    /// Negative posts of the period by virality score (their reach), highest first.
    pub negative_posts: Vec<ViralityView>,
    pub emerging_terms: Vec<EmergingTerm>,
    /// Alerts fired in the period, newest first.
    pub alerts: Vec<AlertView>,
    /// The live topics' shares of the period, the ten with the most posts (the whole stream's
    /// digest only).
    pub share_of_voice: Vec<TopicStats>,
    /// The live topics past those listed, summed; null when every one is listed.
    pub other_topics: Option<OtherTopics>,
    /// The dashboard showing this period and scope.
    pub link: String,
}

/// The live topics a digest's share of voice does not list, together: with the listed ones,
/// their shares add up to the whole.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OtherTopics {
    /// How many topics.
    pub topics: usize,
    /// Their posts (a post that matched two of them counts in both).
    pub posts: i64,
    /// Their shares summed.
    pub share_of_voice: ShareOfVoice,
}

/// `items` (most posts first) as a digest lists them: the first [`SHARE_OF_VOICE_TOPICS`], and
/// the rest summed.
fn share_of_voice(mut items: Vec<TopicStats>) -> (Vec<TopicStats>, Option<OtherTopics>) {
    if items.len() <= SHARE_OF_VOICE_TOPICS {
        return (items, None);
    }
    let rest = items.split_off(SHARE_OF_VOICE_TOPICS);
    let sum = |f: fn(&ShareOfVoice) -> f64| rest.iter().map(|t| f(&t.share_of_voice)).sum();
    let other = OtherTopics {
        topics: rest.len(),
        posts: rest.iter().map(|t| t.stats.posts).sum(),
        share_of_voice: ShareOfVoice {
            volume: sum(|s| s.volume),
            positive: sum(|s| s.positive),
            negative: sum(|s| s.negative),
        },
    };
    (items, Some(other))
}

/// The inputs of one digest.
pub struct DigestInput<'a> {
    pub scope: DigestScope,
    pub period: Period,
    /// The earlier periods, newest first; for a schedule, its own local periods.
    pub history: Vec<Period>,
    pub high_churn: f32,
    pub dashboard_url: &'a str,
    /// A saved view the link opens, instead of the scope and period alone.
    pub view: Option<i64>,
}

/// `n` periods as long as `period`, each ending where the next starts, newest first.
pub fn equal_periods_before(period: Period, n: usize) -> Vec<Period> {
    let mut out = Vec::with_capacity(n);
    let mut at = period;
    for _ in 0..n {
        match at.previous() {
            Some(p) => {
                out.push(p);
                at = p;
            }
            None => break,
        }
    }
    out
}

/// Reads every figure of the digest described by `input`.
pub async fn compute(
    client: &tokio_postgres::Client,
    input: DigestInput<'_>,
) -> Result<Digest, ApiError> {
    let period = input.period;
    let high_churn = input.high_churn;
    let to = period
        .to
        .ok_or_else(|| ApiError::internal("a digest needs an end"))?;
    let topic = input.scope.topic;
    let filters: Vec<(&'static str, String)> = topic
        .map(|t| vec![("topics", t.to_string())])
        .unwrap_or_default();
    let overall = |p: Period| {
        let filters = filters.clone();
        async move {
            let items =
                rollups::by_dimension(client, Dimension::Overall, p, &filters, high_churn).await?;
            Ok::<Stats, ApiError>(
                items
                    .into_iter()
                    .next()
                    .map(|k| k.stats)
                    .unwrap_or_default(),
            )
        }
    };
    let stats = overall(period).await?;
    let mut history = Vec::with_capacity(input.history.len());
    for p in &input.history {
        let s = overall(*p).await?;
        history.push(PeriodFigures {
            from: p.from,
            to: p.to.unwrap_or(p.from),
            posts: s.posts,
            negative_share: s.sentiment.negative_share,
        });
    }
    let previous = history.first().cloned().unwrap_or(PeriodFigures {
        from: period.from,
        to: period.from,
        posts: 0,
        negative_share: 0.0,
    });
    let change = change(&stats, &previous, &history);

    let (dimension, key) = match topic {
        Some(t) => (Dimension::Topic, t.to_string()),
        None => (Dimension::Overall, String::new()),
    };
    let bucket = bucket_for(to - period.from);
    let points = rollups::series(client, dimension, &key, period.from, to, bucket.minutes())
        .await?
        .into_iter()
        .map(|(at, stats)| SeriesPoint { at, stats })
        .collect();

    let story_query = StoryQuery {
        topic,
        from: Some(period.from),
        to: Some(to),
        sort: Some("growing".into()),
        window_secs: Some((to - period.from).num_seconds().clamp(60, 7 * 86_400)),
        limit: Some(TOP),
        ..Default::default()
    };
    let stories = stories::list(client, story_query.selection()?).await?;

    let trending = |sentiment: Option<SentimentLabel>| TrendingQuery {
        topic,
        sentiment,
        status: Some("all".into()),
        from: Some(period.from),
        to: Some(to),
        limit: Some(TOP),
        ..Default::default()
    };
    let (c, limit) = trending(None).conditions()?;
    let viral_posts = cascades::trending(client, c, limit).await?;
    let (c, limit) = trending(Some(SentimentLabel::Negative)).conditions()?;
    let negative_posts = cascades::trending(client, c, limit).await?;

    let now_terms = terms(client, topic, period).await?;
    let before_terms = match input.history.first() {
        Some(p) => terms(client, topic, *p).await?,
        None => Vec::new(),
    };
    let emerging_terms = emerging(now_terms, &before_terms);

    let alerts = alerts_db::alerts(
        client,
        AlertFilter {
            dimension: topic.map(|_| "topic".to_string()),
            key: topic.map(|t| t.to_string()),
            fired_from: Some(period.from),
            fired_before: Some(to),
            ..Default::default()
        },
        ALERTS,
    )
    .await?;

    let (share_of_voice, other_topics) = match topic {
        Some(_) => (Vec::new(), None),
        None => share_of_voice(metrics_api::topic_items(client, period, &[], high_churn).await?),
    };

    Ok(Digest {
        link: link(input.dashboard_url, topic, period.from, to, input.view),
        scope: input.scope,
        from: period.from,
        to,
        posts: stats.posts,
        negative_share: stats.sentiment.negative_share,
        stats,
        previous,
        history,
        change,
        series: DigestSeries { bucket, points },
        stories,
        viral_posts,
        negative_posts,
        emerging_terms,
        alerts,
        share_of_voice,
        other_topics,
    })
}

async fn terms(
    client: &tokio_postgres::Client,
    topic: Option<i64>,
    period: Period,
) -> Result<Vec<TermStats>, ApiError> {
    metrics_api::terms_of(client, topic, period, TERMS_READ).await
}

/// The widest bucket that still draws the period with a few dozen points or more.
pub fn bucket_for(length: TimeDelta) -> Bucket {
    if length >= TimeDelta::days(1) {
        Bucket::OneHour
    } else if length >= TimeDelta::hours(2) {
        Bucket::FiveMinutes
    } else {
        Bucket::OneMinute
    }
}

/// The period's change against the previous one and its standing among the earlier ones.
pub fn change(stats: &Stats, previous: &PeriodFigures, history: &[PeriodFigures]) -> Change {
    let posts =
        (previous.posts > 0).then(|| (stats.posts - previous.posts) as f64 / previous.posts as f64);
    let with_posts: Vec<&PeriodFigures> = history.iter().filter(|p| p.posts > 0).collect();
    // A flat history still has noise: the spread is taken as at least `floor`, a tenth of the
    // mean volume (and one post) for volumes, two points for shares, so one post more is not
    // a "very unusual" change.
    let z = |now: f64, values: Vec<f64>, floor: f64| -> Option<f64> {
        if values.len() < 3 {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Some((now - mean) / var.sqrt().max(floor))
    };
    let volumes: Vec<f64> = with_posts.iter().map(|p| p.posts as f64).collect();
    let mean_volume = volumes.iter().sum::<f64>() / volumes.len().max(1) as f64;
    let posts_z = z(stats.posts as f64, volumes, (mean_volume * 0.1).max(1.0));
    let negative_share_z = z(
        stats.sentiment.negative_share,
        with_posts.iter().map(|p| p.negative_share).collect(),
        0.02,
    );
    let verdict = match (posts_z, negative_share_z) {
        (None, None) => "not enough history",
        (a, b) => {
            let worst = a.unwrap_or(0.0).abs().max(b.unwrap_or(0.0).abs());
            if worst >= 3.0 {
                "very unusual"
            } else if worst >= 2.0 {
                "unusual"
            } else {
                "usual"
            }
        }
    };
    Change {
        posts,
        negative_share: stats.sentiment.negative_share - previous.negative_share,
        posts_z,
        negative_share_z,
        verdict: verdict.into(),
    }
}

/// Terms of the period that grew most against the previous period, by the ratio of their
/// counts (each plus one), then by count.
pub fn emerging(now: Vec<TermStats>, before: &[TermStats]) -> Vec<EmergingTerm> {
    let floor = before.last().map_or(0, |t| t.posts);
    let full = before.len() as i64 >= TERMS_READ;
    let mut terms: Vec<(f64, EmergingTerm)> = now
        .into_iter()
        .filter(|t| t.posts >= EMERGING_MIN_POSTS)
        .map(|t| {
            let previous_posts = before.iter().find(|b| b.term == t.term).map(|b| b.posts);
            // Unseen among a full list: at most the last one's count.
            let assumed = previous_posts.unwrap_or(if full { floor } else { 0 });
            let lift = (t.posts + 1) as f64 / (assumed + 1) as f64;
            (
                lift,
                EmergingTerm {
                    term: t.term,
                    hashtag: t.hashtag,
                    posts: t.posts,
                    previous_posts,
                    sentiment_mean: t.sentiment_mean,
                },
            )
        })
        .filter(|(lift, _)| *lift > 1.0)
        .collect();
    terms.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.posts.cmp(&a.1.posts))
            .then(a.1.term.cmp(&b.1.term))
    });
    terms.into_iter().take(EMERGING).map(|(_, t)| t).collect()
}

/// The dashboard's address for the period and scope, opening the saved view when there is
/// one (`since` and `until` are the dashboard's fixed period; `from` and `to` are its Search
/// view's).
pub fn link(
    dashboard_url: &str,
    topic: Option<i64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    view: Option<i64>,
) -> String {
    let base = dashboard_url.trim_end_matches('/');
    let mut query = format!(
        "since={}&until={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ")
    );
    if let Some(topic) = topic {
        query.push_str(&format!("&topic={topic}"));
    }
    if let Some(view) = view {
        query.push_str(&format!("&saved_view={view}"));
    }
    format!("{base}/?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(t: &str, posts: i64) -> TermStats {
        TermStats {
            term: t.into(),
            hashtag: t.starts_with('#'),
            posts,
            sentiment_mean: 0.0,
        }
    }

    fn figures(posts: i64, negative_share: f64) -> PeriodFigures {
        PeriodFigures {
            from: Utc::now(),
            to: Utc::now(),
            posts,
            negative_share,
        }
    }

    #[test]
    fn emerging_terms_are_those_that_grew_most() {
        let now = vec![
            term("battery", 50),
            term("fire", 30),
            term("#new", 4),
            term("x", 2),
        ];
        let before = vec![term("battery", 60), term("fire", 3)];
        let got = emerging(now, &before);
        let names: Vec<&str> = got.iter().map(|t| t.term.as_str()).collect();
        // battery fell; x is under the minimum; #new was unseen (a short list: zero before).
        assert_eq!(names, ["fire", "#new"]);
        assert_eq!(got[0].previous_posts, Some(3));
        assert_eq!(got[1].previous_posts, None);
    }

    #[test]
    fn a_change_is_weighed_against_the_history() {
        let mut stats = Stats {
            posts: 200,
            ..Default::default()
        };
        stats.sentiment.negative_share = 0.5;
        let history: Vec<PeriodFigures> = [100, 110, 90, 105, 95]
            .iter()
            .map(|&p| figures(p, 0.2))
            .collect();
        let c = change(&stats, &history[0], &history);
        assert_eq!(c.posts, Some(1.0));
        assert!((c.negative_share - 0.3).abs() < 1e-9);
        assert!(c.posts_z.unwrap() > 3.0, "{c:?}");
        assert_eq!(c.verdict, "very unusual");
        let short = change(&stats, &history[0], &history[..2]);
        assert_eq!(short.verdict, "not enough history");
        assert_eq!(change(&stats, &figures(0, 0.0), &[]).posts, None);
    }

    #[test]
    fn earlier_periods_are_as_long_and_end_where_the_next_starts() {
        let from = "2026-11-02T00:00:00Z".parse().unwrap();
        let to = "2026-11-09T00:00:00Z".parse().unwrap();
        let periods = equal_periods_before(Period::between(from, to), 3);
        assert_eq!(periods.len(), 3);
        assert_eq!(periods[0].to, Some(from));
        assert_eq!(periods[2].from, to - TimeDelta::days(28));
        assert_eq!(bucket_for(to - from), Bucket::OneHour);
    }
}
