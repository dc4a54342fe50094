//! The HTTP API (actix-web): health, readiness, Prometheus metrics, event intake, post
//! queries, the WebSocket upgrade (`GET /ws`, see [`crate::ws`]) and the dashboard at `/`
//! ([`dashboard`]). Every error uses the one shape of [`error::ApiError`]; every response carries
//! `x-request-id`. Before any handler, [`guard`] refuses second spellings of paths and foreign
//! Hosts, then authenticates, authorizes on the matched route, rate-limits, bounds bodies and
//! audits admin changes; handlers receive the application through [`state::State`], which
//! checks the matched route's policy again after routing; [`security_headers`] sets browser
//! protections.

pub mod alerts_api;
pub mod analyze;
pub mod auth_api;
pub mod backlog;
pub mod body_budget;
pub mod body_limits;
pub mod canonical;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod filters;
pub mod guard;
pub mod health;
pub mod live;
pub mod metrics_api;
pub mod openapi;
pub mod peer;
pub mod pipeline;
pub mod posts;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
pub mod state;
pub mod virality_api;
pub mod webhooks_api;

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
    pub limiter: Arc<rate_limit::RateLimiter>,
    /// What request bodies may hold, per client and in total.
    pub bodies: Arc<body_budget::BodyBudget>,
    /// The consumer group's backlog, which `POST /api/v1/events` refuses to grow past
    /// `ingest.max_backlog`.
    pub backlog: backlog::Backlog,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub proxies: peer::TrustedProxies,
    /// Learned viral thresholds for the score endpoint.
    pub thresholds: virality_api::ThresholdCache,
    /// The sources this process runs.
    pub sources: Vec<Arc<crate::sources::SourceStatus>>,
    /// Spans of requests (off unless `traces.otlp_endpoint` is set).
    pub traces: crate::telemetry::traces::Traces,
}

impl AppState {
    /// Entries this process has read and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.ingest.as_ref().map_or(0, |i| i.in_flight())
    }
}

/// Registers every route and the shared error handlers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(error::json_error))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .service(openapi::index)
        .service(health::health)
        .service(health::ready)
        .service(health::prometheus)
        .service(auth_api::auth_status)
        .service(auth_api::token)
        .service(auth_api::list_keys)
        .service(auth_api::create_key)
        .service(auth_api::revoke_key)
        .service(auth_api::audit_log)
        .service(openapi::openapi_json)
        .service(openapi::docs_page)
        .service(openapi::docs_script)
        .service(openapi::docs_style)
        .service(events::create)
        .service(analyze::analyze)
        .service(posts::list)
        .service(virality_api::post_virality)
        .service(posts::get_one)
        .service(metrics_api::overall)
        .service(metrics_api::platforms)
        .service(metrics_api::geo)
        .service(metrics_api::products)
        .service(metrics_api::channels)
        .service(metrics_api::languages)
        .service(metrics_api::timeseries)
        .service(metrics_api::trending_terms)
        .service(pipeline::pipeline)
        .service(alerts_api::list_rules)
        .service(alerts_api::create_rule)
        .service(alerts_api::get_rule)
        .service(alerts_api::update_rule)
        .service(alerts_api::delete_rule)
        .service(alerts_api::enable_rule)
        .service(alerts_api::disable_rule)
        .service(alerts_api::list_alerts)
        .service(alerts_api::acknowledge)
        .service(alerts_api::resolve)
        .service(webhooks_api::create)
        .service(webhooks_api::list)
        .service(webhooks_api::remove)
        .service(webhooks_api::deliveries)
        .service(webhooks_api::test)
        .service(virality_api::trending_posts)
        .service(virality_api::momentum)
        .service(virality_api::score)
        .service(virality_api::feedback)
        .route("/ws", web::get().to(live::connect));
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
        .wrap(from_fn(guard::guard))
        .wrap(from_fn(security_headers::security_headers))
        .wrap(from_fn(request_id::request_id))
        // Outermost, so it sees every response whole: gzip or brotli as the client accepts,
        // skipping WebSocket upgrades and what is already encoded (precompressed dashboard
        // files) or must not be (credentials, see `auth_api`).
        .wrap(actix_web::middleware::Compress::default())
        .configure(configure)
        .default_service(web::to(dashboard::fallback))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The route policy and the documented routes are the same set: a route cannot be served
    /// without a rule, and no rule names a route that does not exist.
    #[test]
    fn the_policy_lists_exactly_the_documented_routes() {
        let documented: BTreeSet<String> = super::openapi::endpoints().iter().cloned().collect();
        let ruled: BTreeSet<String> = crate::auth::policy::ROUTES
            .iter()
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        assert_eq!(
            documented.difference(&ruled).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented routes without a rule"
        );
        assert_eq!(
            ruled.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "rules for routes that are not documented"
        );
    }
}
