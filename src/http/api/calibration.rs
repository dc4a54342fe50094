//! The deployment's sentiment calibration: `GET`, `PUT /api/v1/calibration`. Which calibration
//! is in use, every one trained with its out-of-fold figures, and the choice of another, of none
//! (the shipped models as they are) or of following training again.

use actix_web::{get, put, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::db::calibration::{self as db, CalibrationState, Refused};
use crate::db::ApiConnection;
use crate::http::answer::Answer;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::errors::ErrorCode;

/// `PUT /api/v1/calibration`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationChoice {
    /// The calibration to use; null or absent: the shipped models as they are.
    #[serde(default)]
    pub active_id: Option<i64>,
    /// Whether each new calibration that beats the shipped models is put in use as it is
    /// trained (default false: this choice holds).
    #[serde(default)]
    pub automatic: bool,
}

/// The sentiment calibration in use and those trained.
#[utoipa::path(
    tag = "review", operation_id = "get_calibration",
    summary = "The sentiment calibration in use and those trained",
    responses(
        (status = 200, description = "What is in use and the newest calibrations", body = CalibrationState),
        PostgresUnavailable,
    )
)]
#[get("/api/v1/calibration")]
pub async fn get_state(state: State) -> Answer {
    in_use(state.db().await?).await
}

/// Puts a calibration in use, or none; every process applies it to the posts it analyses from
/// then on (within `analyzer.calibration_every_ms`).
#[utoipa::path(
    tag = "review", operation_id = "choose_calibration",
    summary = "Choose the sentiment calibration in use", request_body = CalibrationChoice,
    responses(
        (status = 200, description = "What is in use now", body = CalibrationState),
        (status = 400, description = "No such calibration, or one that did not beat the \
            shipped models (`invalid_calibration`); a malformed body (`invalid_request`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[put("/api/v1/calibration")]
pub async fn choose(state: State, input: actix_web::web::Json<CalibrationChoice>) -> Answer {
    let who = state.owner();
    let mut client = state.db().await?;
    let tx = client.transaction().await?;
    match db::choose(&tx, input.active_id, input.automatic, &who).await? {
        Ok(()) => {}
        Err(refused) => {
            let id = input.active_id.unwrap_or_default();
            let message = match refused {
                Refused::Unknown => format!("no sentiment calibration {id}"),
                Refused::NotBetter => format!(
                    "calibration {id} did not beat the shipped models out of fold; it is kept \
                     only as a record"
                ),
            };
            return Err(ApiError::bad_request(
                ErrorCode::InvalidCalibration,
                message,
            ));
        }
    }
    tx.commit().await?;
    in_use(client).await
}

/// Both endpoints' answer: what is in use and the newest calibrations.
async fn in_use(client: ApiConnection) -> Answer {
    Ok(HttpResponse::Ok().json(db::state(&**client).await?))
}
