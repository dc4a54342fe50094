//! The review queue: `POST /api/v1/review/next` hands a reviewer the posts most worth a look,
//! each to one reviewer at a time.
//!
//! - A topic's queue (`topic_id`): the posts its query matched (counted or filtered) that no one
//!   has labelled for it, least certain first: nearest the topic's threshold under its learned
//!   relevance, or, before it has one, in a random but repeatable order (by a hash of the id), as
//!   `pulse eval relevance` chooses them.
//! - The queue of every post (no topic): posts whose sentiment no one has labelled, those an
//!   alert of the last week showed as evidence first, then those where the analysis model and the
//!   lexicon disagree, then the least polar.
//!
//! A post handed out is claimed for `topics.review_claim_secs`: no one else is handed it while
//! the claim stands, unless its reviewer moved on (asked for more), and its reviewer is not
//! handed it again while it stands, so nobody gets the same post twice in a row. The queue is
//! read (each text only as far as ranking reads it) and ranked with no lock and no connection
//! held; claiming from one queue is serialised (a transaction-scoped advisory lock), and under
//! it the ranked posts are checked again, so two reviewers asking at once get different posts.

use std::sync::{LazyLock, Mutex};

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::lexicon::{self, LexiconAnalyzer};
use crate::db::review::{self as db, Candidate};
use crate::http::answer::Answer;
use crate::http::documented::CostlyReadBusy;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::locks::lock;
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::label::Label;
use crate::models::views::PostView;
use crate::topics::relevance::{self, key_of, Features, Post};

/// Most posts handed out at once.
pub const MAX_COUNT: usize = 20;
/// Newest unlabelled posts of a queue the choice is made among.
const POOL: i64 = 2_000;

/// `POST /api/v1/review/next`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextInput {
    /// A live topic: its queue; none: the queue of every post.
    pub topic_id: Option<i64>,
    /// 1 to 20 (default 5).
    pub count: Option<usize>,
}

/// Why a post is in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Its topic's learned relevance is least sure of it.
    UncertainRelevance,
    /// Its topic has no learned relevance yet: a random sample to learn from.
    Sample,
    /// An alert fired in the last week shows it as evidence.
    AlertEvidence,
    /// The analysis model and the lexicon give it different sentiment.
    ModelLexiconDisagree,
    /// Its sentiment score is among the least polar: nearest the line between labels.
    LowConfidence,
}

/// A post handed to the reviewer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewItem {
    pub post: PostView,
    pub reason: Reason,
    /// The topic's learned probability that the post is about it, where it has a model.
    pub relevance: Option<f32>,
    /// The sentiment the lexicon gives it, in the queue of every post.
    pub lexicon_sentiment: Option<String>,
    /// The labels that count on it now.
    pub labels: Vec<Label>,
}

/// The posts handed out.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewBatch {
    pub items: Vec<ReviewItem>,
    /// Until when they are the reviewer's alone.
    pub claimed_until: chrono::DateTime<chrono::Utc>,
}

static LEXICON: LazyLock<Mutex<LexiconAnalyzer>> =
    LazyLock::new(|| Mutex::new(LexiconAnalyzer::new()));

/// Hands the caller the next posts to review.
#[utoipa::path(
    tag = "review", operation_id = "review_next", summary = "The next posts to review",
    request_body = NextInput,
    responses(
        (status = 200, description = "Posts claimed for the caller, most worth a look first \
            (empty when the queue is)", body = ReviewBatch),
        (status = 400, description = "A count out of range or a topic that is not live \
            (`invalid_label`), or a body that is not a request (`invalid_json`)", body = ErrorBody),
        CostlyReadBusy, PostgresUnavailable,
    )
)]
#[post("/api/v1/review/next")]
pub async fn next(state: State, input: web::Json<NextInput>) -> Answer {
    let count = input.count.unwrap_or(5);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLabel,
            format!("count must be 1 to {MAX_COUNT}"),
        ));
    }
    // Up to 2,000 posts' openings read and ranked: one at a time a caller, as other costly
    // reads are.
    let _costly = state.costly_read().await?;
    let reviewer = state.owner();
    let claim_secs = state.settings.topics.review_claim_secs as f64;
    let queue = input.topic_id.unwrap_or(0);
    // Read and ranked without the queue's lock and with the connection given back: the queue
    // is serialised, and its lock and connection held, only for the claim.
    let candidates = {
        let client = state.db().await?;
        if let Some(topic) = input.topic_id {
            if crate::db::topics::get(&**client, topic).await?.is_none() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidLabel,
                    format!("no live topic with id {topic}"),
                ));
            }
        }
        let text_bytes = match input.topic_id {
            Some(_) => relevance::TEXT_BYTES,
            None => lexicon::MAX_ANALYZED_BYTES,
        };
        db::candidates(&**client, input.topic_id, &reviewer, POOL, text_bytes).await?
    };
    let filter = input.topic_id.and_then(|topic| {
        state
            .review
            .topics()
            .and_then(|live| live.with_filters().1.get(topic).cloned())
    });
    let mut ranked = tokio::task::spawn_blocking(move || rank(candidates, filter.as_ref()))
        .await
        .map_err(ApiError::internal)?;
    let mut client = state.db().await?;
    let tx = client.transaction().await?;
    db::lock_queue(&tx, queue).await?;
    db::release(&tx, queue, &reviewer).await?;
    // Another reviewer may have claimed or labelled some of them since they were read.
    let order: Vec<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    let free = db::claimable(&tx, input.topic_id, &reviewer, &order, count as i64).await?;
    let mut chosen = Vec::with_capacity(free.len());
    for id in &free {
        if let Some(at) = ranked.iter().position(|r| &r.id == id) {
            chosen.push(ranked.swap_remove(at));
        }
    }
    let ids: Vec<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
    let claimed_until = db::claim(&tx, queue, &reviewer, &ids, claim_secs).await?;
    tx.commit().await?;
    let ids: Vec<String> = chosen.iter().map(|c| c.id.clone()).collect();
    let mut posts = crate::db::posts::by_ids(&client, &ids).await?;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut labels = crate::db::labels::current_of(&**client, &refs).await?;
    let mut items = Vec::with_capacity(chosen.len());
    for c in chosen {
        let Some(at) = posts.iter().position(|p| p.id == c.id) else {
            continue;
        };
        let post = posts.swap_remove(at);
        let (own, rest): (Vec<Label>, Vec<Label>) =
            labels.into_iter().partition(|l| l.post_id == c.id);
        labels = rest;
        items.push(ReviewItem {
            post,
            reason: c.reason,
            relevance: c.relevance,
            lexicon_sentiment: c.lexicon,
            labels: own,
        });
    }
    Ok(HttpResponse::Ok().json(ReviewBatch {
        items,
        claimed_until,
    }))
}

/// A candidate as ranked.
struct Ranked {
    id: String,
    reason: Reason,
    relevance: Option<f32>,
    lexicon: Option<String>,
    /// Lower first.
    order: (u8, f32, u64),
}

/// The candidates, most worth a look first.
fn rank(candidates: Vec<Candidate>, filter: Option<&relevance::Filter>) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates
        .into_iter()
        .map(|c| {
            let key = key_of(&c.id);
            match (&c.topic, filter) {
                (Some(_), Some(f)) => {
                    let p = f.model.probability(&Features::of(&Post {
                        text: &c.text,
                        author: Some(&c.author),
                        lang: c.lang.as_deref(),
                        matched: true,
                    }));
                    Ranked {
                        reason: Reason::UncertainRelevance,
                        relevance: Some(p),
                        lexicon: None,
                        order: (0, (p - f.threshold).abs(), key),
                        id: c.id,
                    }
                }
                (Some(_), None) => Ranked {
                    reason: Reason::Sample,
                    relevance: None,
                    lexicon: None,
                    order: (0, 0.0, key),
                    id: c.id,
                },
                (None, _) => {
                    // The lexicon reads English: a German post's "die" is a negative word to
                    // it. A post the lexicon analysed has nothing to disagree with.
                    let english = c.lang.as_deref().is_none_or(|l| l == "en");
                    let lexicon = (english && !c.model.starts_with("lexicon")).then(|| {
                        let mut lexicon = lock(&LEXICON);
                        lexicon
                            .analyze(&c.text)
                            .sentiment_label
                            .as_str()
                            .to_string()
                    });
                    let disagree = lexicon.as_deref().is_some_and(|l| l != c.sentiment_label);
                    let (reason, tier) = match (c.evidence, disagree) {
                        (true, _) => (Reason::AlertEvidence, 0),
                        (false, true) => (Reason::ModelLexiconDisagree, 1),
                        (false, false) => (Reason::LowConfidence, 2),
                    };
                    Ranked {
                        reason,
                        relevance: None,
                        lexicon,
                        order: (tier, c.sentiment_score.abs(), key),
                        id: c.id,
                    }
                }
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        (a.order.0, a.order.1)
            .partial_cmp(&(b.order.0, b.order.1))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.order.2.cmp(&b.order.2))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, text: &str, lang: &str, model: &str, label: &str) -> Candidate {
        Candidate {
            id: id.into(),
            text: text.into(),
            author: "a".into(),
            lang: Some(lang.into()),
            topic: None,
            model: model.into(),
            sentiment_label: label.into(),
            sentiment_score: 0.5,
            evidence: false,
        }
    }

    // A German post the model read as positive ranked first as a disagreement: the English
    // lexicon reads "die" as a negative word. And posts the lexicon analysed were analysed
    // again, to agree with themselves.
    #[test]
    fn the_lexicon_is_asked_only_of_english_posts_a_model_analysed() {
        let ranked = rank(
            vec![
                candidate(
                    "de",
                    "Die Lieferung kam pünktlich, danke!",
                    "de",
                    "e5",
                    "positive",
                ),
                candidate("lex", "I hate it", "en", "lexicon-vader@1", "positive"),
                candidate(
                    "en",
                    "I hate it, awful",
                    "en",
                    "twitter-roberta",
                    "positive",
                ),
            ],
            None,
        );
        let of = |id: &str| ranked.iter().find(|r| r.id == id).unwrap();
        assert_eq!(of("de").lexicon, None);
        assert_eq!(of("lex").lexicon, None);
        assert_eq!(of("en").lexicon.as_deref(), Some("negative"));
        assert_eq!(ranked[0].id, "en", "the English disagreement comes first");
    }
}
