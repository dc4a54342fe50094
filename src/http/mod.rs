//! The HTTP API (actix-web): health, readiness, Prometheus metrics, event intake, post
//! queries, the WebSocket upgrade (`GET /ws`, see [`crate::ws`]) and the dashboard at `/`
//! ([`api::dashboard`]). Every error uses the one shape of [`error::ApiError`]; every response carries
//! `x-request-id`. Before any handler, [`middleware::guard`] refuses second spellings of paths and foreign
//! Hosts, then authenticates, authorizes on the matched route, rate-limits, bounds bodies and
//! audits admin changes; handlers receive the application through [`state::State`], which
//! checks the matched route's policy again after routing; [`middleware::security_headers`] sets browser
//! protections.

pub mod answer;
pub mod api;
pub mod cursor;
pub mod documented;
pub mod error;
pub mod filters;
pub mod locks;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::ingester::IngestContext;
use crate::config::Settings;

/// What every handler may use.
pub struct AppState {
    pub settings: Arc<Settings>,
    /// The API's own connections, under a statement timeout and a duty cycle (see
    /// [`crate::db::ApiPool`]).
    pub pool: crate::db::ApiPool,
    /// The pipeline's connections: only readiness looks at them from here, so an API at its
    /// limit never makes the process look unready.
    pub pipeline_pool: Pool,
    pub redis: fred::clients::Client,
    pub metrics: PrometheusHandle,
    pub consumer: String,
    pub ingest: Option<Arc<IngestContext>>,
    /// Live subscriptions (`GET /ws`); `None` where a process serves none.
    pub ws: Option<crate::ws::Hub>,
    /// Checks credentials; `None` on an open server (`auth.open`).
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// Per-key and per-address request budgets.
    pub limiter: Arc<middleware::rate_limit::RateLimiter>,
    /// What request bodies may hold, per client and in total.
    pub bodies: Arc<middleware::body_budget::BodyBudget>,
    /// The consumer group's backlog, which `POST /api/v1/events` refuses to grow past
    /// `ingest.max_backlog` entries or `ingest.max_backlog_secs`.
    pub backlog: api::events::backlog::Backlog,
    /// What each producer appending over HTTP asks and gets while the group is behind.
    pub fair: api::events::fair_share::FairShare,
    /// What each producer appending over HTTP has waiting in the stream.
    pub outstanding: api::events::outstanding::Outstanding,
    /// Whether the HTTP intake shares what the group drains, and how much.
    pub sharing: api::events::fair_share::Controller,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub proxies: middleware::peer::TrustedProxies,
    /// Learned viral thresholds for the score endpoint.
    pub thresholds: api::virality::ThresholdCache,
    /// The sources this process runs.
    pub sources: Vec<Arc<crate::sources::SourceStatus>>,
    /// Spans of requests (off unless `traces.otlp_endpoint` is set).
    pub traces: crate::telemetry::traces::Traces,
    /// The access each route needs ([`routes::policy`]).
    pub policy: &'static crate::auth::policy::RoutePolicy,
    /// Callers with a topic preview running (one each, `topics.preview_max_running` in all).
    pub previews: crate::actors::analyzer::share::Callers,
    /// Callers with a costly read running (a search counting facets, a digest previewed or
    /// sent on request), one each: each holds an API connection for many statements, and
    /// the connections are few.
    pub costly_reads: crate::actors::analyzer::share::Callers,
    /// Reviewers' label budgets and the topics' learned relevance.
    pub review: api::labels::Review,
    /// Exports running (one per caller, a few in all).
    pub exports: std::sync::Arc<api::search::export::Exports>,
    /// The downloads of export jobs running, under the same limits as `exports` but apart, so
    /// slow readers of shared links cannot take the streamed exports' places.
    pub downloads: std::sync::Arc<api::search::export::Exports>,
    /// Wakes this process's export workers when a job is created.
    pub export_wake: std::sync::Arc<tokio::sync::Notify>,
    /// The last readiness check, shared by the probes of the next second.
    pub readiness: api::health::ReadyCache,
    /// The dashboard's files as last read.
    pub dashboard: api::dashboard::Files,
}

impl AppState {
    /// The state of an API over `settings` and its connections, with nothing else running in
    /// the process: no pipeline (intake, topics, traces), live subscriptions, sources, trusted
    /// proxies or authentication (an open server). A serving process sets those it has.
    pub fn new(
        settings: Arc<Settings>,
        pipeline_pool: Pool,
        redis: fred::clients::Client,
        metrics: PrometheusHandle,
        consumer: String,
    ) -> anyhow::Result<AppState> {
        Ok(AppState {
            pool: crate::db::ApiPool::new(&settings.database)?,
            pipeline_pool,
            redis,
            metrics,
            consumer,
            ingest: None,
            ws: None,
            auth: None,
            limiter: Arc::new(middleware::rate_limit::RateLimiter::new(
                &settings.limits,
                crate::db::api_pool_size(&settings.database),
            )),
            bodies: middleware::body_budget::BodyBudget::new(&settings.limits),
            backlog: Default::default(),
            fair: Default::default(),
            outstanding: Default::default(),
            sharing: Default::default(),
            proxies: Default::default(),
            thresholds: Default::default(),
            sources: Vec::new(),
            traces: Default::default(),
            policy: routes::policy(),
            previews: Default::default(),
            costly_reads: Default::default(),
            review: api::labels::Review::new(&settings.topics, None),
            exports: Default::default(),
            downloads: Default::default(),
            export_wake: Default::default(),
            readiness: Default::default(),
            dashboard: Default::default(),
            settings,
        })
    }

    /// Entries this process has read and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.ingest.as_ref().map_or(0, |i| i.in_flight())
    }
}

/// Registers every route (see [`routes`]) and the shared error handlers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(error::json_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .configure(routes::register);
}

/// Builds the actix-web app for `state`.
pub fn app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(state)
        .wrap(from_fn(middleware::guard::guard))
        .wrap(from_fn(middleware::security_headers::security_headers))
        .wrap(from_fn(middleware::request_id::request_id))
        // Outermost, so it sees every response whole: gzip or brotli as the client accepts,
        // skipping WebSocket upgrades and what is already encoded (precompressed dashboard
        // files) or must not be (credentials, see `api::auth`).
        .wrap(actix_web::middleware::Compress::default())
        .configure(configure)
        .default_service(web::to(api::dashboard::fallback))
}
