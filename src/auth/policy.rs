//! The route policy: which role each request needs. One table for the whole API, read
//! top to bottom, so a route nobody listed falls to the strictest rule (admin) instead of
//! being open by accident.

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

/// Whether a request to `path` is a change an admin makes and the audit log records.
pub fn audited(method: &Method, path: &str) -> bool {
    *method != Method::GET
        && *method != Method::HEAD
        && *method != Method::OPTIONS
        && (under(path, "/api/v1/alert-rules")
            || under(path, "/api/v1/webhooks")
            || under(path, "/api/v1/admin"))
}

/// `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The access `method path` needs.
pub fn required(method: &Method, path: &str) -> Access {
    let read = *method == Method::GET || *method == Method::HEAD;
    let public = matches!(path, "/health" | "/ready" | "/metrics" | "/api/v1")
        || path.starts_with("/api/docs")
        || path == "/api/openapi.json"
        || path == "/api/v1/auth/token"
        || path == "/api/v1/auth/status";
    if public {
        return Access::Public;
    }
    if path == "/ws" {
        return Access::Role(Role::Analyst);
    }
    if !under(path, "/api") {
        // The dashboard's files and its client-side routes.
        return Access::Public;
    }
    if path == "/api/v1/events" {
        return Access::Role(Role::Ingest);
    }
    if under(path, "/api/v1/admin") || under(path, "/api/v1/webhooks") {
        return Access::Role(Role::Admin);
    }
    if under(path, "/api/v1/alert-rules") {
        return Access::Role(if read { Role::Analyst } else { Role::Admin });
    }
    if read {
        return Access::Role(Role::Analyst);
    }
    let analyst_writes = matches!(
        path,
        "/api/v1/analyze" | "/api/v1/score" | "/api/v1/feedback"
    ) || (under(path, "/api/v1/alerts")
        && (path.ends_with("/ack") || path.ends_with("/resolve")));
    if analyst_writes && *method == Method::POST {
        return Access::Role(Role::Analyst);
    }
    Access::Role(Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(method: Method, path: &str) -> Access {
        required(&method, path)
    }

    #[test]
    fn the_table_gives_each_route_its_role() {
        use Access::*;
        assert_eq!(needs(Method::GET, "/health"), Public);
        assert_eq!(needs(Method::GET, "/metrics"), Public);
        assert_eq!(needs(Method::POST, "/api/v1/auth/token"), Public);
        assert_eq!(needs(Method::GET, "/api/openapi.json"), Public);
        assert_eq!(needs(Method::GET, "/"), Public);
        assert_eq!(needs(Method::GET, "/assets/index.js"), Public);
        assert_eq!(
            needs(Method::POST, "/api/v1/events"),
            Role(super::Role::Ingest)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/posts"),
            Role(super::Role::Analyst)
        );
        assert_eq!(needs(Method::GET, "/ws"), Role(super::Role::Analyst));
        assert_eq!(
            needs(Method::POST, "/api/v1/analyze"),
            Role(super::Role::Analyst)
        );
        assert_eq!(
            needs(Method::POST, "/api/v1/alerts/7/ack"),
            Role(super::Role::Analyst)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/alert-rules"),
            Role(super::Role::Analyst)
        );
        assert_eq!(
            needs(Method::POST, "/api/v1/alert-rules"),
            Role(super::Role::Admin)
        );
        assert_eq!(
            needs(Method::DELETE, "/api/v1/alert-rules/3"),
            Role(super::Role::Admin)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/webhooks"),
            Role(super::Role::Admin)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/admin/audit"),
            Role(super::Role::Admin)
        );
        // Unlisted API routes and methods need the most privileged role.
        assert_eq!(
            needs(Method::PUT, "/api/v1/posts/1"),
            Role(super::Role::Admin)
        );
        assert_eq!(
            needs(Method::POST, "/api/v1/whatever"),
            Role(super::Role::Admin)
        );
        assert_eq!(
            needs(Method::GET, "/api/v1/adminx"),
            Role(super::Role::Analyst)
        );
    }

    #[test]
    fn admin_changes_are_audited_and_reads_are_not() {
        assert!(audited(&Method::POST, "/api/v1/alert-rules"));
        assert!(audited(&Method::PATCH, "/api/v1/alert-rules/1"));
        assert!(audited(&Method::DELETE, "/api/v1/webhooks/1"));
        assert!(audited(&Method::POST, "/api/v1/admin/keys"));
        assert!(!audited(&Method::GET, "/api/v1/admin/audit"));
        assert!(!audited(&Method::POST, "/api/v1/alerts/1/ack"));
    }
}
