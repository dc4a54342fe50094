//! The route policy: which role each route needs. Access is decided on the route the router
//! matched (its pattern, such as `/api/v1/admin/keys/{id}`), never on the text of the request
//! path, so no spelling of a path can reach a route under another route's rule. One table
//! for the whole API, read top to bottom; a method and pattern it does not list needs the
//! most privileged role, so a route nobody listed is closed by default, not open.

use actix_web::http::Method;

use super::Role;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, metrics, the token exchange, the documentation, the dashboard's files.
    Public,
    /// A caller whose role allows this role.
    Role(Role),
}

/// One route and the access it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    pub method: &'static str,
    /// The router's pattern, exactly as the route is registered.
    pub pattern: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, pattern: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        pattern,
        access,
    }
}

const PUBLIC: Access = Access::Public;
const INGEST: Access = Access::Role(Role::Ingest);
const ANALYST: Access = Access::Role(Role::Analyst);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every route Pulse serves. A test checks that this list and the registered routes are the
/// same set, so a new route cannot be served without a line here.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/health", PUBLIC),
    rule("GET", "/ready", PUBLIC),
    rule("GET", "/metrics", PUBLIC),
    rule("GET", "/api/v1", PUBLIC),
    rule("GET", "/api/openapi.json", PUBLIC),
    rule("GET", "/api/docs", PUBLIC),
    rule("GET", "/api/docs.js", PUBLIC),
    rule("GET", "/api/docs.css", PUBLIC),
    rule("GET", "/api/v1/auth/status", PUBLIC),
    rule("POST", "/api/v1/auth/token", PUBLIC),
    rule("POST", "/api/v1/events", INGEST),
    rule("GET", "/ws", ANALYST),
    rule("POST", "/api/v1/analyze", ANALYST),
    rule("GET", "/api/v1/posts", ANALYST),
    rule("GET", "/api/v1/posts/{id}", ANALYST),
    rule("GET", "/api/v1/posts/{id}/virality", ANALYST),
    rule("GET", "/api/v1/metrics/overall", ANALYST),
    rule("GET", "/api/v1/metrics/platforms", ANALYST),
    rule("GET", "/api/v1/metrics/geo", ANALYST),
    rule("GET", "/api/v1/metrics/products", ANALYST),
    rule("GET", "/api/v1/metrics/channels", ANALYST),
    rule("GET", "/api/v1/metrics/languages", ANALYST),
    rule("GET", "/api/v1/metrics/timeseries", ANALYST),
    rule("GET", "/api/v1/trending/terms", ANALYST),
    rule("GET", "/api/v1/trending/posts", ANALYST),
    rule("GET", "/api/v1/trending/momentum", ANALYST),
    rule("POST", "/api/v1/score", ANALYST),
    rule("POST", "/api/v1/feedback", ANALYST),
    rule("GET", "/api/v1/pipeline", ANALYST),
    rule("GET", "/api/v1/alerts", ANALYST),
    rule("POST", "/api/v1/alerts/{id}/ack", ANALYST),
    rule("POST", "/api/v1/alerts/{id}/resolve", ANALYST),
    rule("GET", "/api/v1/alert-rules", ANALYST),
    rule("GET", "/api/v1/alert-rules/{id}", ANALYST),
    rule("POST", "/api/v1/alert-rules", ADMIN),
    rule("PATCH", "/api/v1/alert-rules/{id}", ADMIN),
    rule("DELETE", "/api/v1/alert-rules/{id}", ADMIN),
    rule("POST", "/api/v1/alert-rules/{id}/enable", ADMIN),
    rule("POST", "/api/v1/alert-rules/{id}/disable", ADMIN),
    rule("GET", "/api/v1/webhooks", ADMIN),
    rule("POST", "/api/v1/webhooks", ADMIN),
    rule("DELETE", "/api/v1/webhooks/{id}", ADMIN),
    rule("GET", "/api/v1/webhooks/{id}/deliveries", ADMIN),
    rule("POST", "/api/v1/webhooks/{id}/test", ADMIN),
    rule("GET", "/api/v1/admin/keys", ADMIN),
    rule("POST", "/api/v1/admin/keys", ADMIN),
    rule("DELETE", "/api/v1/admin/keys/{id}", ADMIN),
    rule("GET", "/api/v1/admin/audit", ADMIN),
];

/// The rule of `method pattern`, if the table lists it.
pub fn rule_for(method: &Method, pattern: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .find(|r| r.method == method.as_str() && r.pattern == pattern)
}

/// The access `method` on the route matched as `pattern` needs; `None` (no route matched)
/// for paths outside the API and the WebSocket is public (the dashboard's files and its
/// client-side routes), and the API's own unmatched paths need the strictest role.
pub fn required(method: &Method, pattern: Option<&str>, path: &str) -> Access {
    match pattern {
        Some(pattern) => rule_for(method, pattern).map_or(ADMIN, |r| r.access),
        None if is_api_path(path) => ADMIN,
        None => PUBLIC,
    }
}

/// Whether `path` belongs to the API or the WebSocket rather than to the dashboard.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api") || path.starts_with("/ws")
}

/// Whether a request to the route is an admin change the audit log records: every write
/// that needs the admin role.
pub fn audited(method: &Method, pattern: &str) -> bool {
    rule_for(method, pattern).is_some_and(|r| r.access == ADMIN && r.method != "GET")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(method: Method, pattern: &str) -> Access {
        required(&method, Some(pattern), pattern)
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
    }

    #[test]
    fn what_the_table_does_not_list_needs_an_admin() {
        // A listed pattern with an unlisted method.
        assert_eq!(needs(Method::PUT, "/api/v1/posts/{id}"), ADMIN);
        assert_eq!(needs(Method::HEAD, "/api/v1/posts"), ADMIN);
        // A pattern the table does not know.
        assert_eq!(needs(Method::GET, "/api/v1/whatever"), ADMIN);
        // No route matched: inside the API, the strictest; outside, the dashboard's files.
        for path in ["/api", "/api/v1/nothing", "/api.json", "/ws/x", "/wsx"] {
            assert_eq!(required(&Method::GET, None, path), ADMIN, "{path}");
        }
        for path in ["/", "/assets/index.js", "/alerts", "/w"] {
            assert_eq!(required(&Method::GET, None, path), PUBLIC, "{path}");
        }
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..]
                    .iter()
                    .any(|b| a.method == b.method && a.pattern == b.pattern),
                "{} {} is listed twice",
                a.method,
                a.pattern
            );
        }
    }

    #[test]
    fn admin_changes_are_audited_and_reads_are_not() {
        assert!(audited(&Method::POST, "/api/v1/alert-rules"));
        assert!(audited(&Method::PATCH, "/api/v1/alert-rules/{id}"));
        assert!(audited(&Method::DELETE, "/api/v1/webhooks/{id}"));
        assert!(audited(&Method::POST, "/api/v1/admin/keys"));
        assert!(!audited(&Method::GET, "/api/v1/admin/audit"));
        assert!(!audited(&Method::POST, "/api/v1/alerts/{id}/ack"));
        assert!(!audited(&Method::PUT, "/api/v1/admin/keys"));
    }
}
