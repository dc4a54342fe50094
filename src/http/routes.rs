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

use super::api::{
    alerts, analyze, auth, calibration, digests, events, exports, forecast, health, labels, live,
    metrics, pipeline, posts, review, saved_searches, search, stories, topics, views, virality,
    webhooks,
};
use super::openapi::{self, ApiDocument};
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
    auth::auth_status => PUBLIC,
    auth::token => PUBLIC,
    exports::download => PUBLIC,

    events::create => INGEST,

    live::connect => ANALYST,
    analyze::analyze => ANALYST,
    posts::list => ANALYST,
    search::search => ANALYST,
    search::export::export => ANALYST,
    exports::create => ANALYST,
    exports::list => ANALYST,
    exports::get_one => ANALYST,
    exports::remove => ANALYST,
    saved_searches::list => ANALYST,
    saved_searches::get_one => ANALYST,
    virality::post_virality => ANALYST,
    posts::get_one => ANALYST,
    metrics::overall => ANALYST,
    metrics::platforms => ANALYST,
    metrics::geo => ANALYST,
    metrics::products => ANALYST,
    metrics::channels => ANALYST,
    metrics::languages => ANALYST,
    metrics::timeseries => ANALYST,
    metrics::trending_terms => ANALYST,
    virality::trending_posts => ANALYST,
    stories::list => ANALYST,
    stories::get_one => ANALYST,
    virality::momentum => ANALYST,
    virality::score => ANALYST,
    forecast::forecast => ANALYST,
    virality::feedback => ANALYST,
    pipeline::pipeline => ANALYST,
    alerts::list_alerts => ANALYST,
    alerts::acknowledge => ANALYST,
    alerts::resolve => ANALYST,
    alerts::list_rules => ANALYST,
    alerts::get_rule => ANALYST,
    metrics::topics => ANALYST,
    topics::list => ANALYST,
    topics::get_one => ANALYST,
    topics::versions => ANALYST,
    topics::preview => ANALYST,
    topics::retags_of => ANALYST,
    topics::retag_one => ANALYST,
    digests::preview => ANALYST,
    digests::schedules::list => ANALYST,
    digests::schedules::get_one => ANALYST,
    views::list => ANALYST,
    views::get_one => ANALYST,
    views::create => ANALYST,
    views::update => ANALYST,
    views::remove => ANALYST,
    labels::list => ANALYST,
    topics::relevance::get_one => ANALYST,
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
    topics::relevance::update => EDITOR,

    calibration::choose => ADMIN,
    alerts::create_rule => ADMIN,
    alerts::update_rule => ADMIN,
    alerts::delete_rule => ADMIN,
    alerts::enable_rule => ADMIN,
    alerts::disable_rule => ADMIN,
    webhooks::list => ADMIN,
    webhooks::create => ADMIN,
    webhooks::remove => ADMIN,
    webhooks::deliveries => ADMIN,
    webhooks::test => ADMIN,
    auth::list_keys => ADMIN,
    auth::create_key => ADMIN,
    auth::revoke_key => ADMIN,
    auth::rotate_key => ADMIN,
    auth::set_key_scope => ADMIN,
    auth::audit_log => ADMIN,
}

/// Every endpoint's operations and the schemas they use, merged into one document. A public
/// endpoint's operations declare the empty security requirement from the table, so the
/// document cannot ask for credentials the policy does not.
fn documented() -> utoipa::openapi::OpenApi {
    let mut merged = utoipa::openapi::OpenApi::default();
    for (mut document, access) in declared() {
        if access == PUBLIC {
            for item in document.paths.paths.values_mut() {
                for (_, operation) in openapi::operations_mut(item) {
                    operation.security = Some(vec![Default::default()]);
                }
            }
        }
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

    /// docs/SECURITY.md names, in the row of the role, every route an analyst or an editor may
    /// change something through: a route given to a role and not written there is one a
    /// reader of the roles table would not expect that role to reach.
    #[test]
    fn the_security_roles_table_names_every_change_an_analyst_or_editor_may_make() {
        let doc = include_str!("../../docs/SECURITY.md");
        let row = |role: &str| {
            doc.lines()
                .find(|l| l.starts_with(&format!("| `{role}` |")))
                .unwrap_or_else(|| panic!("no row for {role}"))
                .to_string()
        };
        let (analyst, editor) = (row("analyst"), row("editor"));
        for rule in policy().rules() {
            if rule.method == Method::GET || rule.pattern == "/ws" {
                continue;
            }
            let written = format!("`{} {}`", rule.method, rule.pattern);
            let row = match rule.access {
                ANALYST => &analyst,
                EDITOR => &editor,
                _ => continue,
            };
            assert!(row.contains(&written), "{written} is not in its role's row");
            let other = if rule.access == ANALYST {
                &editor
            } else {
                &analyst
            };
            assert!(
                !other.contains(&written),
                "{written} is in another role's row"
            );
        }
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
