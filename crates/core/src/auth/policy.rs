//! The route policy: which role each route needs. Access is decided on the route the router
//! matched (its pattern, such as `/api/v1/admin/keys/{id}`), never on the text of the request
//! path, so no spelling of a path can reach a route under another route's rule. The rules come
//! from the API's one route table (`http::routes`); a method and pattern they do not list
//! needs the most privileged role, so a route nobody listed is closed by default, not open.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    /// The router's pattern, exactly as the route is registered.
    pub pattern: String,
    pub access: Access,
}

pub const PUBLIC: Access = Access::Public;
pub const INGEST: Access = Access::Role(Role::Ingest);
pub const ANALYST: Access = Access::Role(Role::Analyst);
pub const EDITOR: Access = Access::Role(Role::Editor);
pub const ADMIN: Access = Access::Role(Role::Admin);

/// The rules of every route Pulse serves (the HTTP layer's route table produces them).
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    rules: Vec<RouteRule>,
}

impl RoutePolicy {
    /// The policy of `rules`; refused when two rules name the same method and pattern, since
    /// which of them applied would depend on their order.
    pub fn new(rules: Vec<RouteRule>) -> Result<Self, String> {
        for (i, a) in rules.iter().enumerate() {
            if rules[i + 1..]
                .iter()
                .any(|b| a.method == b.method && a.pattern == b.pattern)
            {
                return Err(format!("{} {} has two rules", a.method, a.pattern));
            }
        }
        Ok(Self { rules })
    }

    pub fn rules(&self) -> &[RouteRule] {
        &self.rules
    }

    /// The rule of `method pattern`, if there is one.
    pub fn rule_for(&self, method: &Method, pattern: &str) -> Option<&RouteRule> {
        self.rules
            .iter()
            .find(|r| r.method == method && r.pattern == pattern)
    }

    /// The access `method` on the route matched as `pattern` needs; `None` (no route matched)
    /// for paths outside the API and the WebSocket is public (the dashboard's files and its
    /// client-side routes), and the API's own unmatched paths need the strictest role. `HEAD`
    /// is a `GET` without its body, so it needs what `GET` needs.
    pub fn required(&self, method: &Method, pattern: Option<&str>, path: &str) -> Access {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        match pattern {
            Some(pattern) => self.rule_for(method, pattern).map_or(ADMIN, |r| r.access),
            None if is_api_path(path) => ADMIN,
            None => PUBLIC,
        }
    }

    /// Whether a request to the route is a change the audit log records: every write
    /// that needs the admin role.
    pub fn audited(&self, method: &Method, pattern: &str) -> bool {
        self.rule_for(method, pattern)
            .is_some_and(|r| (r.access == ADMIN || r.access == EDITOR) && r.method != Method::GET)
    }
}

/// Whether `path` belongs to the API or the WebSocket rather than to the dashboard.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api") || path.starts_with("/ws")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(method: Method, pattern: &str, access: Access) -> RouteRule {
        RouteRule {
            method,
            pattern: pattern.into(),
            access,
        }
    }

    fn policy() -> RoutePolicy {
        RoutePolicy::new(vec![
            rule(Method::GET, "/health", PUBLIC),
            rule(Method::POST, "/api/v1/events", INGEST),
            rule(Method::GET, "/api/v1/posts", ANALYST),
            rule(Method::GET, "/api/v1/posts/{id}", ANALYST),
            rule(Method::GET, "/api/v1/admin/audit", ADMIN),
            rule(Method::POST, "/api/v1/admin/keys", ADMIN),
        ])
        .unwrap()
    }

    /// The access a request to a matched route needs (its path is its pattern).
    fn needs(policy: &RoutePolicy, method: Method, pattern: &str) -> Access {
        policy.required(&method, Some(pattern), pattern)
    }

    #[test]
    fn each_route_needs_its_rules_access() {
        let policy = policy();
        assert_eq!(needs(&policy, Method::GET, "/health"), PUBLIC);
        assert_eq!(needs(&policy, Method::POST, "/api/v1/events"), INGEST);
        assert_eq!(needs(&policy, Method::GET, "/api/v1/posts/{id}"), ANALYST);
        assert_eq!(needs(&policy, Method::GET, "/api/v1/admin/audit"), ADMIN);
    }

    #[test]
    fn what_the_rules_do_not_list_needs_an_admin() {
        let policy = policy();
        // A listed pattern with an unlisted method.
        assert_eq!(needs(&policy, Method::PUT, "/api/v1/posts/{id}"), ADMIN);
        // A pattern no rule names.
        assert_eq!(needs(&policy, Method::GET, "/api/v1/whatever"), ADMIN);
        assert_eq!(needs(&policy, Method::HEAD, "/api/v1/whatever"), ADMIN);
        // No route matched: inside the API, the strictest; outside, the dashboard's files.
        for path in ["/api", "/api/v1/nothing", "/api.json", "/ws/x", "/wsx"] {
            assert_eq!(policy.required(&Method::GET, None, path), ADMIN, "{path}");
        }
        for path in ["/", "/assets/index.js", "/alerts", "/w"] {
            assert_eq!(policy.required(&Method::GET, None, path), PUBLIC, "{path}");
        }
    }

    // Failed before HEAD borrowed GET's rule: every HEAD needed an admin.
    #[test]
    fn head_needs_what_get_needs() {
        let policy = policy();
        for rule in policy.rules().iter().filter(|r| r.method == Method::GET) {
            let head = needs(&policy, Method::HEAD, &rule.pattern);
            assert_eq!(head, rule.access, "HEAD {}", rule.pattern);
            assert!(!policy.audited(&Method::HEAD, &rule.pattern));
        }
    }

    #[test]
    fn a_route_with_two_rules_is_refused() {
        let twice = RoutePolicy::new(vec![
            rule(Method::GET, "/api/v1/posts", ANALYST),
            rule(Method::GET, "/api/v1/posts", PUBLIC),
        ]);
        assert!(twice.is_err());
    }

    #[test]
    fn only_admin_writes_are_audited() {
        let policy = policy();
        assert!(policy.audited(&Method::POST, "/api/v1/admin/keys"));
        assert!(!policy.audited(&Method::GET, "/api/v1/admin/audit"));
        assert!(!policy.audited(&Method::POST, "/api/v1/events"));
        assert!(!policy.audited(&Method::PUT, "/api/v1/admin/keys"));
    }
}
