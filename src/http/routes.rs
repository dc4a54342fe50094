//! Every endpoint of the API, declared once: its handler and the access it needs.
//!
//! A handler's method and path are written once, on the handler (`#[get("/health")]`), and its
//! documentation beside it (`#[utoipa::path]`). The table below names each handler and its
//! role; from it come the actix configuration ([`register`]), the OpenAPI document
//! ([`document`]) and the route policy ([`policy`]), so a new endpoint is one handler and one
//! line here, and none can be served undocumented or without a rule. The document and the
//! policy reach the handlers and the gate as data (app data, [`super::AppState::policy`]), so
//! nothing below this table imports it.

use std::sync::OnceLock;

use actix_web::web;

use super::openapi::ApiDocument;
use super::{
    alerts_api, analyze, auth_api, calibration, digests, events, export, export_jobs, forecast,
    health, labels, live, metrics_api, openapi, pipeline, posts, relevance, review, saved_searches,
    saved_views, search, stories, topics, virality_api, webhooks_api,
};
use crate::auth::policy::{Access, RoutePolicy, RouteRule, ADMIN, ANALYST, EDITOR, INGEST, PUBLIC};

/// Produces [`register`] and the endpoints' documents from one list of `handler => access`.
/// Each handler's document comes from its own `#[utoipa::path]` through a derive in a block of
/// its own, so its operation and the schemas it names travel together.
macro_rules! endpoints {
    ($($($handler:ident)::+ => $access:expr),* $(,)?) => {
        /// Registers every endpoint's handler, in the table's order, and the API's document
        /// for the handlers that serve it.
        pub fn register(cfg: &mut web::ServiceConfig) {
            cfg.app_data(document());
            $(cfg.service($($handler)::+);)*
        }

        /// Each endpoint's OpenAPI document (its operations and their schemas) with its access.
        fn declared() -> Vec<(utoipa::openapi::OpenApi, Access)> {
            vec![$({
                #[derive(utoipa::OpenApi)]
                #[openapi(paths($($handler)::+))]
                struct Endpoint;
                (<Endpoint as utoipa::OpenApi>::openapi(), $access)
            }),*]
        }
    };
}

endpoints! {
    health::health => PUBLIC,
    health::ready => PUBLIC,
    health::prometheus => PUBLIC,
    openapi::index => PUBLIC,
    openapi::openapi_json => PUBLIC,
    openapi::docs_page => PUBLIC,
    openapi::docs_script => PUBLIC,
    openapi::docs_style => PUBLIC,
    auth_api::auth_status => PUBLIC,
    auth_api::token => PUBLIC,
    export_jobs::download => PUBLIC,

    events::create => INGEST,

    live::connect => ANALYST,
    analyze::analyze => ANALYST,
    posts::list => ANALYST,
    search::search => ANALYST,
    export::export => ANALYST,
    export_jobs::create => ANALYST,
    export_jobs::list => ANALYST,
    export_jobs::get_one => ANALYST,
    export_jobs::remove => ANALYST,
    saved_searches::list => ANALYST,
    saved_searches::get_one => ANALYST,
    virality_api::post_virality => ANALYST,
    posts::get_one => ANALYST,
    metrics_api::overall => ANALYST,
    metrics_api::platforms => ANALYST,
    metrics_api::geo => ANALYST,
    metrics_api::products => ANALYST,
    metrics_api::channels => ANALYST,
    metrics_api::languages => ANALYST,
    metrics_api::timeseries => ANALYST,
    metrics_api::trending_terms => ANALYST,
    virality_api::trending_posts => ANALYST,
    stories::list => ANALYST,
    stories::get_one => ANALYST,
    virality_api::momentum => ANALYST,
    virality_api::score => ANALYST,
    forecast::forecast => ANALYST,
    virality_api::feedback => ANALYST,
    pipeline::pipeline => ANALYST,
    alerts_api::list_alerts => ANALYST,
    alerts_api::acknowledge => ANALYST,
    alerts_api::resolve => ANALYST,
    alerts_api::list_rules => ANALYST,
    alerts_api::get_rule => ANALYST,
    metrics_api::topics => ANALYST,
    topics::list => ANALYST,
    topics::get_one => ANALYST,
    topics::versions => ANALYST,
    topics::preview => ANALYST,
    topics::retags_of => ANALYST,
    topics::retag_one => ANALYST,
    digests::preview => ANALYST,
    digests::schedules::list => ANALYST,
    digests::schedules::get_one => ANALYST,
    saved_views::list => ANALYST,
    saved_views::get_one => ANALYST,
    saved_views::create => ANALYST,
    saved_views::update => ANALYST,
    saved_views::remove => ANALYST,
    labels::list => ANALYST,
    relevance::get_one => ANALYST,
    calibration::get_state => ANALYST,

    topics::create => EDITOR,
    saved_searches::create => EDITOR,
    saved_searches::remove => EDITOR,
    topics::update => EDITOR,
    topics::remove => EDITOR,
    topics::retag => EDITOR,
    topics::cancel_retag => EDITOR,
    digests::schedules::create => EDITOR,
    digests::schedules::update => EDITOR,
    digests::schedules::remove => EDITOR,
    digests::schedules::send_now => EDITOR,
    labels::create => EDITOR,
    labels::undo => EDITOR,
    review::next => EDITOR,
    relevance::update => EDITOR,

    calibration::choose => ADMIN,
    alerts_api::create_rule => ADMIN,
    alerts_api::update_rule => ADMIN,
    alerts_api::delete_rule => ADMIN,
    alerts_api::enable_rule => ADMIN,
    alerts_api::disable_rule => ADMIN,
    webhooks_api::list => ADMIN,
    webhooks_api::create => ADMIN,
    webhooks_api::remove => ADMIN,
    webhooks_api::deliveries => ADMIN,
    webhooks_api::test => ADMIN,
    auth_api::list_keys => ADMIN,
    auth_api::create_key => ADMIN,
    auth_api::revoke_key => ADMIN,
    auth_api::rotate_key => ADMIN,
    auth_api::set_key_scope => ADMIN,
    auth_api::audit_log => ADMIN,
}

/// Every endpoint's operations and the schemas they use, merged into one document.
fn documented() -> utoipa::openapi::OpenApi {
    let mut merged = utoipa::openapi::OpenApi::default();
    for (document, _) in declared() {
        merged.merge(document);
    }
    merged
}

/// The API's OpenAPI document, built once.
pub fn document() -> web::Data<ApiDocument> {
    static DOCUMENT: OnceLock<web::Data<ApiDocument>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| web::Data::new(ApiDocument::new(documented())))
        .clone()
}

/// The route policy: each endpoint's method and pattern, as the router matches them, and the
/// access it needs.
pub fn policy() -> &'static RoutePolicy {
    static POLICY: OnceLock<RoutePolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut rules = Vec::new();
        for (mut document, access) in declared() {
            for (pattern, item) in document.paths.paths.iter_mut() {
                for (method, _) in openapi::operations_mut(item) {
                    rules.push(RouteRule {
                        method: method.parse().expect("an HTTP method"),
                        pattern: pattern.clone(),
                        access,
                    });
                }
            }
        }
        RoutePolicy::new(rules).expect("every endpoint is declared once")
    })
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use super::*;
    use crate::auth::policy::Access;

    fn needs(method: Method, pattern: &str) -> Access {
        policy().required(&method, Some(pattern), pattern)
    }

    #[test]
    fn the_table_gives_each_route_its_role() {
        assert_eq!(needs(Method::GET, "/health"), PUBLIC);
        assert_eq!(needs(Method::POST, "/api/v1/auth/token"), PUBLIC);
        assert_eq!(needs(Method::POST, "/api/v1/events"), INGEST);
        assert_eq!(needs(Method::GET, "/api/v1/posts/{id}"), ANALYST);
        assert_eq!(needs(Method::GET, "/ws"), ANALYST);
        assert_eq!(needs(Method::POST, "/api/v1/alerts/{id}/ack"), ANALYST);
        assert_eq!(needs(Method::POST, "/api/v1/alert-rules"), ADMIN);
        assert_eq!(needs(Method::GET, "/api/v1/admin/audit"), ADMIN);
        assert_eq!(needs(Method::GET, "/api/v1/alert-rules"), ANALYST);
    }

    /// One rule per operation the table declares: the handlers' own methods and paths, each
    /// endpoint with one method.
    #[test]
    fn every_declared_operation_has_exactly_one_rule() {
        let operations: usize = declared()
            .iter_mut()
            .map(|(document, _)| {
                document
                    .paths
                    .paths
                    .values_mut()
                    .map(|item| openapi::operations_mut(item).len())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(operations, declared().len());
        assert_eq!(policy().rules().len(), operations);
    }

    #[test]
    fn admin_changes_are_audited_and_reads_are_not() {
        let policy = policy();
        assert!(policy.audited(&Method::POST, "/api/v1/alert-rules"));
        assert!(policy.audited(&Method::PATCH, "/api/v1/alert-rules/{id}"));
        assert!(policy.audited(&Method::DELETE, "/api/v1/webhooks/{id}"));
        assert!(policy.audited(&Method::POST, "/api/v1/admin/keys"));
        assert!(!policy.audited(&Method::GET, "/api/v1/admin/audit"));
        assert!(!policy.audited(&Method::POST, "/api/v1/alerts/{id}/ack"));
        assert!(!policy.audited(&Method::PUT, "/api/v1/admin/keys"));
    }
}
