//! The OpenAPI 3 document of the HTTP API and its reference page.
//!
//! The document is generated from the handlers' `#[utoipa::path]` annotations and the types the
//! handlers take and send, so it cannot drift from the code: `GET /api/openapi.json` serves it,
//! `GET /api/docs` renders it for people. The page is self-contained (HTML, script and style
//! are compiled into the binary, nothing is fetched from elsewhere, no inline script), so it
//! works offline and under `Content-Security-Policy: script-src 'self'`.
//!
//! Conventions applied to every operation here rather than repeated on each handler: the
//! security schemes (`bearer` JWT or `apiKey` header) are required everywhere except on
//! the endpoints the route table makes public (they declare the empty requirement, set from
//! the table: [`crate::http::routes`]); the others also document 401, 403, 429 and 500 (one
//! shared response each); an operation whose requests the guard checks the `Origin` of (one
//! that changes something, and the WebSocket upgrade: [`checks_origin`]) names 403
//! `origin_not_allowed` in that shared 403, in a shared one of its own where it is public, or
//! at the end of the 403 it describes itself; an operation that queries PostgreSQL (its 503 is
//! the shared [`PostgresUnavailable`], or names PostgreSQL) also documents 504 `query_timeout`,
//! since every query of the API runs under `database.api_statement_timeout_ms`; one with a JSON
//! body documents 413 and 415 (the JSON extractor's limit and content type), and one with an
//! integer in its path a 400 `invalid_path`, unless the operation describes its own; and every
//! response documents the `x-request-id` header.

use actix_web::http::{header, Method};
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, Schema, Type};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::{ErrorBody, PostgresUnavailable};
use super::middleware::guard::checks_origin;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where the reference page is served.
pub const DOCS_PATH: &str = "/api/docs";

/// The reference page, its script and its style, compiled in so the page needs nothing else.
const DOCS_HTML: &str = include_str!("docs/index.html");
const DOCS_JS: &str = include_str!("docs/docs.js");
const DOCS_CSS: &str = include_str!("docs/docs.css");

/// The document's frame: its description, schemes and tags; the operations come from the
/// route table ([`super::routes::documented`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pulse",
        description = "Real-time social-media sentiment and virality. Every error is \
            `{\"error\":{\"code\",\"message\",\"details\"}}` (`ErrorBody`); every response \
            carries `x-request-id`. Live updates are on the WebSocket at `GET /ws`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    security(("bearer" = []), ("apiKey" = [])),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and the service map"),
        (name = "docs", description = "This document and its reference page"),
        (name = "events", description = "Event intake: posts and engagements onto the stream"),
        (name = "analysis", description = "Synchronous text analysis"),
        (name = "posts", description = "Stored posts and their analysis"),
        (name = "search", description = "Search every stored post in the topics query language, and export what it finds"),
        (name = "metrics", description = "Windowed aggregates, time series and trending terms"),
        (name = "pipeline", description = "Pipeline throughput, lag and dead letters"),
        (name = "alerts", description = "Alert rules and the alerts they raise"),
        (name = "webhooks", description = "Webhook subscriptions and their deliveries"),
        (name = "virality", description = "Virality scores, momentum, scoring and feedback"),
        (name = "stories", description = "What the posts are about: stories found live"),
        (name = "digests", description = "Scheduled reports of a period, their previews and schedules"),
        (name = "views", description = "Saved dashboard views, the caller's and the shared ones"),
        (name = "review", description = "People's labels on posts, the review queue, and each topic's relevance learned from them"),
        (name = "live", description = "The WebSocket of live updates"),
        (name = "auth", description = "The authentication mode and the token exchange"),
        (name = "admin", description = "API keys and the audit log (admin role)"),
    ),
)]
pub struct ApiDoc;

/// Names of the reusable responses every protected operation refers to.
const UNAUTHORIZED: &str = "Unauthorized";
const FORBIDDEN: &str = "Forbidden";
const FORBIDDEN_OR_ORIGIN: &str = "ForbiddenOrOriginNotAllowed";
const ORIGIN_NOT_ALLOWED: &str = "OriginNotAllowed";
const TOO_MANY_REQUESTS: &str = "TooManyRequests";
const QUERY_TIMEOUT: &str = "QueryTimeout";
const INTERNAL_ERROR: &str = "InternalError";
const JSON_TOO_LARGE: &str = "JsonTooLarge";
const NOT_JSON: &str = "NotJson";
const BAD_PATH: &str = "BadPath";

/// The refusal of a browser's request from another page, as each 403 that may be it says.
macro_rules! foreign_origin {
    () => {
        "a browser sent the request from a page whose origin is neither this server's nor one \
         of `http.cors_origins` (`origin_not_allowed`)"
    };
}

/// Applies the conventions described in the module documentation.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("`Authorization: Bearer <jwt>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key in the `X-API-Key` header",
            ))),
        );
        for (name, description) in [
            (
                UNAUTHORIZED,
                "No valid credentials: neither a valid bearer token nor a valid API key",
            ),
            (FORBIDDEN, "The credentials do not allow this operation"),
            (
                FORBIDDEN_OR_ORIGIN,
                concat!(
                    "The credentials do not allow this operation (`forbidden`), or ",
                    foreign_origin!()
                ),
            ),
            (ORIGIN_NOT_ALLOWED, concat!("Refused: ", foreign_origin!())),
            (
                TOO_MANY_REQUESTS,
                "Too many requests; retry after the number of seconds in `Retry-After`",
            ),
            (
                QUERY_TIMEOUT,
                "A query ran past the API's statement timeout \
                 (`query_timeout`, `database.api_statement_timeout_ms`)",
            ),
            (INTERNAL_ERROR, "Unexpected failure"),
            (PostgresUnavailable::NAME, PostgresUnavailable::DESCRIPTION),
            (
                JSON_TOO_LARGE,
                "Body larger than the JSON limit (`payload_too_large`)",
            ),
            (
                NOT_JSON,
                "Content-Type is not application/json (`unsupported_media_type`)",
            ),
            (
                BAD_PATH,
                "A path segment is not an integer (`invalid_path`)",
            ),
        ] {
            let mut response = error_response(description);
            if name == TOO_MANY_REQUESTS {
                response.headers.insert(
                    "retry-after".into(),
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            components.responses.insert(name.into(), response.into());
        }

        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
                let origin_checked = checks_origin(&method, path);
                if origin_checked {
                    if let Some(RefOr::T(own)) = operation.responses.responses.get_mut("403") {
                        own.description = format!("{}; or {}", own.description, foreign_origin!());
                    }
                }
                let forbidden = if origin_checked {
                    FORBIDDEN_OR_ORIGIN
                } else {
                    FORBIDDEN
                };
                if !is_public(operation) {
                    for (status, name) in [
                        ("401", UNAUTHORIZED),
                        ("403", forbidden),
                        ("429", TOO_MANY_REQUESTS),
                        ("500", INTERNAL_ERROR),
                    ] {
                        operation
                            .responses
                            .responses
                            .entry(status.into())
                            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
                let mut conventional = Vec::new();
                if origin_checked {
                    conventional.push(("403", ORIGIN_NOT_ALLOWED));
                }
                if takes_json(operation) {
                    conventional.extend([("413", JSON_TOO_LARGE), ("415", NOT_JSON)]);
                }
                if has_integer_in_path(operation) {
                    conventional.push(("400", BAD_PATH));
                }
                for (status, name) in conventional {
                    operation
                        .responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
                let queries_postgres = match operation.responses.responses.get("503") {
                    Some(RefOr::T(r)) => r.description.contains("PostgreSQL"),
                    Some(RefOr::Ref(r)) => {
                        r.ref_location
                            == Ref::from_response_name(PostgresUnavailable::NAME).ref_location
                    }
                    None => false,
                };
                if queries_postgres {
                    operation
                        .responses
                        .responses
                        .entry("504".into())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(QUERY_TIMEOUT)));
                }
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        add_request_id(response);
                    }
                }
            }
        }
    }
}

/// A response with the one error body and the request id.
fn error_response(description: &str) -> Response {
    let mut response = super::documented::error_body(description);
    add_request_id(&mut response);
    response
}

/// Documents the `x-request-id` header the middleware puts on every response.
fn add_request_id(response: &mut Response) {
    response
        .headers
        .entry("x-request-id".into())
        .or_insert_with(|| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "The caller's `x-request-id` when it sent a sane one, else a new UUID; \
                 the server log carries it too",
                ))
                .build()
        });
}

/// Whether an operation's request body is JSON (read by the JSON extractor).
fn takes_json(operation: &Operation) -> bool {
    operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"))
}

/// Whether an operation's path has an integer parameter, which a request may send as anything.
fn has_integer_in_path(operation: &Operation) -> bool {
    operation.parameters.iter().flatten().any(|p| {
        p.parameter_in == ParameterIn::Path
            && matches!(
                &p.schema,
                Some(RefOr::T(Schema::Object(o))) if o.schema_type == SchemaType::Type(Type::Integer)
            )
    })
}

/// Whether an operation needs no credentials (it declares the empty requirement).
fn is_public(operation: &Operation) -> bool {
    operation
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|r| *r == SecurityRequirement::default()))
}

/// The operations of a path item with their HTTP methods.
pub(super) fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
    .collect()
}

/// The API's document, built once by the route table from its operations
/// ([`super::routes::document`]) and given to the handlers that serve it as app data.
pub struct ApiDocument {
    json: web::Bytes,
    endpoints: Vec<String>,
}

impl ApiDocument {
    /// The document of `operations` (each endpoint's, merged) in this module's frame and
    /// conventions.
    pub fn new(operations: utoipa::openapi::OpenApi) -> Self {
        let mut document = ApiDoc::openapi();
        document.merge(operations);
        Conventions.modify(&mut document);
        let json = document
            .to_json()
            .expect("the OpenAPI document serialises to JSON");
        let mut endpoints = Vec::new();
        for (path, item) in document.paths.paths.iter_mut() {
            for (method, _) in operations_mut(item) {
                endpoints.push(format!("{method} {path}"));
            }
        }
        Self {
            json: json.into(),
            endpoints,
        }
    }

    /// The document as JSON.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// Every operation as `METHOD /path`, sorted by path, for the service map.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

/// The OpenAPI 3 document of this server.
#[utoipa::path(
    tag = "docs", summary = "OpenAPI document",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1, JSON)", content_type = "application/json", body = Object),
    )
)]
#[get("/api/openapi.json")]
pub async fn openapi_json(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(document.json.clone())
}

/// The API reference page: renders the document for people.
#[utoipa::path(
    tag = "docs", summary = "API reference page",
    responses(
        (status = 200, description = "The reference page; it loads /api/docs.js and \
            /api/docs.css and reads /api/openapi.json", content_type = "text/html", body = String),
    )
)]
#[get("/api/docs")]
pub async fn docs_page() -> HttpResponse {
    static_text("text/html; charset=utf-8", DOCS_HTML)
}

/// The reference page's script.
#[utoipa::path(
    tag = "docs", summary = "API reference script",
    responses(
        (status = 200, description = "The script of the reference page", content_type = "text/javascript", body = String),
    )
)]
#[get("/api/docs.js")]
pub async fn docs_script() -> HttpResponse {
    static_text("text/javascript; charset=utf-8", DOCS_JS)
}

/// The reference page's style sheet.
#[utoipa::path(
    tag = "docs", summary = "API reference style sheet",
    responses(
        (status = 200, description = "The style sheet of the reference page", content_type = "text/css", body = String),
    )
)]
#[get("/api/docs.css")]
pub async fn docs_style() -> HttpResponse {
    static_text("text/css; charset=utf-8", DOCS_CSS)
}

fn static_text(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

/// The map of the API at `GET /api/v1`, for people and scripts exploring it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceMap {
    /// Always `pulse`.
    #[schema(example = "pulse")]
    pub name: String,
    /// The server's version.
    pub version: String,
    /// Every operation as `METHOD /path`, read from the OpenAPI document.
    #[schema(example = json!(["GET /health", "GET /api/v1/posts"]))]
    pub endpoints: Vec<String>,
    /// Path of the OpenAPI document.
    #[schema(example = "/api/openapi.json")]
    pub openapi: String,
    /// Path of the human-readable API reference.
    #[schema(example = "/api/docs")]
    pub docs: String,
}

/// A map of the API for people and scripts exploring it (`/` is the dashboard). The endpoint
/// list comes from the OpenAPI document, so it names every route.
#[utoipa::path(
    tag = "service", operation_id = "service_map", summary = "Service map",
    responses((status = 200, description = "Name, version and every endpoint", body = ServiceMap))
)]
#[get("/api/v1")]
pub async fn index(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok().json(ServiceMap {
        name: "pulse".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        endpoints: document.endpoints().to_vec(),
        openapi: DOCUMENT_PATH.into(),
        docs: DOCS_PATH.into(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use regex::Regex;
    use serde_json::Value;

    use super::*;

    fn document_value() -> Value {
        serde_json::from_slice(super::super::routes::document().json()).unwrap()
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
        all
    }

    /// Every documented operation reaches a handler of the router the route table configures
    /// (a request no route takes gets the default service's 418).
    #[actix_web::test]
    async fn every_documented_operation_is_routed() {
        use actix_web::{test, web, App, HttpResponse};

        let app = test::init_service(
            App::new()
                .configure(super::super::routes::register)
                .default_service(web::to(HttpResponse::ImATeapot)),
        )
        .await;
        let document = super::super::routes::document();
        let documented = document.endpoints();
        assert!(documented.len() >= 40, "{documented:?}");
        for endpoint in documented {
            let (method, path) = endpoint.split_once(' ').unwrap();
            let request = test::TestRequest::default()
                .method(method.parse().unwrap())
                .uri(&path.replace("{id}", "x"))
                .to_request();
            let response = test::call_service(&app, request).await;
            assert_ne!(response.status().as_u16(), 418, "{endpoint} is not routed");
        }
        let nowhere = test::TestRequest::get().uri("/api/v1/nowhere").to_request();
        assert_eq!(
            test::call_service(&app, nowhere).await.status().as_u16(),
            418
        );
    }

    #[test]
    fn every_operation_is_described_and_answers() {
        let doc = document_value();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let name = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: summary"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}: tag"
            );
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(
                ids.insert(id.clone()),
                "{name}: operationId {id} is used twice"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('1') || s.starts_with('2')),
                "{name}: no success response"
            );
            for (status, response) in responses {
                // Readiness answers 503 with its own body, which says what is down.
                let readiness = name == "GET /ready" && status == "503";
                if (status.starts_with('4') || status.starts_with('5')) && !readiness {
                    let body = response
                        .get("$ref")
                        .map(|_| Value::Null)
                        .unwrap_or_else(|| {
                            response["content"]["application/json"]["schema"]["$ref"].clone()
                        });
                    assert!(
                        response.get("$ref").is_some() || body == "#/components/schemas/ErrorBody",
                        "{name} {status}: errors use ErrorBody, got {response}"
                    );
                }
            }
        }
    }

    #[test]
    fn protected_operations_name_their_auth_errors_and_public_ones_opt_out() {
        let doc = document_value();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
        assert_eq!(schemes["apiKey"]["in"], "header");
        assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
        assert_eq!(
            doc["security"],
            serde_json::json!([{"bearer": []}, {"apiKey": []}])
        );
        // Public as the route policy says, which the gate enforces.
        let public: BTreeSet<String> = crate::http::routes::policy()
            .rules()
            .iter()
            .filter(|r| r.access == crate::auth::policy::PUBLIC)
            .map(|r| format!("{} {}", r.method, r.pattern))
            .collect();
        // The download link and the map of the API were documented as needing credentials.
        for name in ["GET /api/v1/exports/{id}/download", "GET /api/v1"] {
            assert!(public.contains(name), "{name} in {public:?}");
        }
        for (method, path, op) in operations(&doc) {
            let name = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            if public.contains(name.as_str()) {
                assert_eq!(op["security"], serde_json::json!([{}]), "{name}");
                // The token exchange is public but answers 401 to a wrong key.
                if name != "POST /api/v1/auth/token" {
                    assert!(!responses.contains_key("401"), "{name}");
                }
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{name} inherits the global security"
                );
                for status in ["401", "403", "429", "500"] {
                    assert!(responses.contains_key(status), "{name}: {status}");
                }
            }
            let queries = responses.get("503").is_some_and(|r| {
                r["$ref"] == "#/components/responses/PostgresUnavailable"
                    || r["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("PostgreSQL"))
            });
            assert_eq!(
                responses.contains_key("504"),
                queries
                    || ["GET /api/v1/search", "POST /api/v1/topic-preview"]
                        .contains(&name.as_str()),
                "{name}: a query may run past the statement timeout"
            );
        }
    }

    /// The guard refuses a browser's change (and WebSocket handshake) from a page of another
    /// origin with 403 `origin_not_allowed`: every operation it may refuse so says it, through
    /// the shared 403, the public operations' own shared one, or the end of its own 403; no
    /// other operation does.
    #[test]
    fn operations_whose_origin_is_checked_list_403_origin_not_allowed() {
        let doc = document_value();
        let forbidden_says = |op: &Value| -> String {
            let response = &op["responses"]["403"];
            let response = match response["$ref"].as_str() {
                Some(shared) => {
                    let name = shared.strip_prefix("#/components/responses/").unwrap();
                    &doc["components"]["responses"][name]
                }
                None => response,
            };
            response["description"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let mut refusing = 0;
        for (method, path, op) in operations(&doc) {
            let checked = checks_origin(&Method::from_bytes(method.as_bytes()).unwrap(), &path);
            let says = forbidden_says(&op);
            assert_eq!(
                says.contains("(`origin_not_allowed`)"),
                checked,
                "{method} {path}: {says}"
            );
            refusing += usize::from(checked);
        }
        assert!(refusing >= 30, "{refusing} operations");
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        for (path, method, says) in [
            (
                "/api/v1/alert-rules/{id}/disable",
                "post",
                "The credentials do not allow",
            ),
            ("/api/v1/auth/token", "post", "Refused: a browser sent"),
            (
                "/api/v1/views/{id}",
                "delete",
                "A shared view the caller does not own",
            ),
            ("/api/v1/events", "post", "Events outside the key's scope"),
            ("/ws", "get", "The credentials do not allow"),
        ] {
            let described = forbidden_says(&op(path, method));
            assert!(described.starts_with(says), "{method} {path}: {described}");
            assert!(described.contains("origin_not_allowed"), "{method} {path}");
        }
        assert_eq!(
            forbidden_says(&op("/api/v1/views/{id}", "get")),
            "The credentials do not allow this operation"
        );
    }

    #[test]
    fn the_metrics_endpoint_is_text_and_the_upgrade_is_a_101() {
        let doc = document_value();
        let metrics = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
        assert!(
            metrics.get("text/plain; version=0.0.4").is_some(),
            "{metrics}"
        );
        let ws = &doc["paths"]["/ws"]["get"]["responses"];
        assert!(ws.get("101").is_some(), "{ws}");
    }

    #[test]
    fn the_page_loads_only_its_own_script_and_style() {
        assert!(DOCS_HTML.contains(r#"<script src="/api/docs.js""#));
        assert!(DOCS_HTML.contains(r#"href="/api/docs.css""#));
        // One script element, with a src: nothing inline for a `script-src 'self'` policy.
        assert_eq!(DOCS_HTML.matches("<script").count(), 1);
        let inline_handler = Regex::new(r"<[^>]*\son\w+=").unwrap();
        for text in [DOCS_HTML, DOCS_JS, DOCS_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            // No inline event handlers either.
            assert!(!inline_handler.is_match(text));
        }
        assert!(DOCS_JS.contains(DOCUMENT_PATH));
    }
}
