//! Browser-facing protections on every response: a Content-Security-Policy (configurable),
//! no MIME sniffing, no framing, no referrer, and CORS for the origins configured in
//! `http.cors_origins` (none by default: only the dashboard's own origin may call the API).
//! Preflight requests are answered by the [guard](crate::http::middleware::guard) with
//! [`preflight`], after its path, Host and address-budget checks and before authentication,
//! as browsers send them without credentials.

use crate::models::errors::ErrorCode;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::http::error::ApiError;
use crate::http::AppState;

/// Methods the API accepts cross-origin.
const CORS_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Headers cross-origin callers may send.
const CORS_HEADERS: &str = "authorization, content-type, content-encoding, x-api-key, x-request-id";
/// Headers cross-origin callers may read.
const CORS_EXPOSE: &str =
    "x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-scope";

/// Whether `origin` may call the API cross-origin under `allowed`.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Whether `origin` is the site the request was addressed to (`Host`), whatever its scheme.
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// Whether `req` is a CORS preflight: an `OPTIONS` that names the method it asks for.
pub fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from `origin`: the grant when `allowed` (`http.cors_origins`)
/// lists it, else the refusal (403 `origin_not_allowed`). The grant's
/// `Access-Control-Allow-Origin` is added with every other response's.
pub fn preflight(allowed: &[String], origin: Option<&str>) -> Result<HttpResponse, ApiError> {
    if origin.is_some_and(|o| origin_allowed(allowed, o)) {
        return Ok(HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, CORS_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, CORS_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "3600"))
            .finish());
    }
    Err(ApiError::new(
        ErrorCode::OriginNotAllowed,
        "this origin may not call the API (http.cors_origins)",
    ))
}

fn set_default(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Middleware function, used with `actix_web::middleware::from_fn`.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let cors = state
        .as_ref()
        .map(|s| s.settings.http.cors_origins.clone())
        .unwrap_or_default();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cors_origin = origin.filter(|o| origin_allowed(&cors, o));
    let api = req.path().starts_with("/api/");
    let mut res = next.call(req).await?.map_into_boxed_body();

    let csp = state
        .as_ref()
        .map(|s| s.settings.http.content_security_policy.clone())
        .unwrap_or_else(|| crate::config::DEFAULT_CSP.to_string());
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    set_default(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(headers, header::X_FRAME_OPTIONS, "DENY");
    set_default(headers, header::REFERRER_POLICY, "no-referrer");
    set_default(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if api {
        set_default(headers, header::CACHE_CONTROL, "no-store");
    }
    if let Some(origin) = cors_origin {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSE),
            );
        }
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_wildcard() {
        let allowed = vec!["https://brand.example".to_string()];
        assert!(origin_allowed(&allowed, "https://brand.example"));
        assert!(!origin_allowed(&allowed, "https://brand.example.evil"));
        assert!(!origin_allowed(&allowed, "http://brand.example"));
        assert!(!origin_allowed(&[], "https://brand.example"));
        assert!(origin_allowed(&["*".to_string()], "https://any.example"));
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!same_origin(
            "http://127.0.0.1:8081",
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:8080")));
        assert!(!same_origin("http://a", None));
    }
}
