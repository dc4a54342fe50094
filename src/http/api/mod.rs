//! The endpoints' handlers. A module is named for the path it serves: the first segment after
//! `/api/v1/` in snake case (`alert-rules` and `alerts` are [`alerts`], `admin/keys` and
//! `auth/token` are [`auth`], `views` are the saved views), or the path itself outside the API
//! (`/health`, `/ready` and `/metrics` are [`health`], `/ws` is [`live`], `/` is [`dashboard`]).
//! A path below another's is a module below it (`/search/export` is [`search::export`]), and
//! what one endpoint alone uses lives beside it (the intake's admission in [`events`], the export
//! jobs' runner in [`exports`]). What every request passes through is in
//! [`super::middleware`]; what handlers share (state, the error shape, common answers, filters,
//! cursors, the route table and the OpenAPI document) is in [`super`].

pub mod alerts;
pub mod analyze;
pub mod auth;
pub mod calibration;
pub mod dashboard;
pub mod digests;
pub mod events;
pub mod exports;
pub mod forecast;
pub mod health;
pub mod labels;
pub mod live;
pub mod metrics;
pub mod pipeline;
pub mod posts;
pub mod review;
pub mod saved_searches;
pub mod search;
pub mod stories;
pub mod topics;
pub mod views;
pub mod virality;
pub mod webhooks;
