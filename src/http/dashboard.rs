//! The dashboard: the React build in `http.dashboard_dir` served at `/`, so one process gives
//! people the live view without a separate web server.
//!
//! Paths that name a file of the build get it (hashed `assets/` forever cacheable, everything
//! else revalidated); other paths a browser navigates to (`Accept: text/html`) get
//! `index.html`, so client-side URLs survive a reload. API paths, and any path asked for by a
//! client that does not want a page, keep the API's JSON 404. When the build is missing, `/`
//! says how to make it instead of failing obscurely.

use std::path::{Component, Path, PathBuf};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

use super::error::{self, ApiError};
use super::state::State;

/// `Cache-Control` of content-hashed assets: their name changes whenever their bytes do.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else, `index.html` above all: always revalidate.
const REVALIDATE: &str = "no-cache";

/// Route prefixes that belong to the API; unknown paths under them stay JSON 404s.
const API_PREFIXES: [&str; 5] = ["/api/", "/ws", "/health", "/ready", "/metrics"];

/// The page `/` shows when the dashboard has not been built.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Pulse</title></head><body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
<h1>Pulse is running</h1><p>The dashboard has not been built, or <code>http.dashboard_dir</code> \
(<code>PULSE_HTTP__DASHBOARD_DIR</code>) does not point at it. Build it with:</p>\
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>\
<p>and reload. <code>bash scripts/run.sh</code> does this for you. The API is at \
<a href=\"/api/v1\">/api/v1</a>.</p></body></html>";

/// The content type of a built file, by extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under `root` that `request_path` names, refusing anything that could leave it.
fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let relative = Path::new(request_path.trim_start_matches('/'));
    let mut path = root.to_path_buf();
    for component in relative.components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(path)
}

async fn file_response(path: &Path, cache: &'static str) -> Option<HttpResponse> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let mut response = HttpResponse::Ok()
        .content_type(content_type(path))
        .body(bytes);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(response)
}

/// Serves the dashboard for every GET the API does not route, and the API's 404 otherwise.
pub async fn fallback(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let path = req.path();
    let is_page = req.method() == Method::GET || req.method() == Method::HEAD;
    if !is_page || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return error::not_found(req).await;
    }
    let root = Path::new(&state.settings.http.dashboard_dir);
    let index = root.join("index.html");
    if path != "/" {
        if let Some(file) = resolve(root, path).filter(|f| f.is_file()) {
            let cache = if path.starts_with("/assets/") {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            if let Some(response) = file_response(&file, cache).await {
                return Ok(response);
            }
        }
        // A missing asset is a broken build, not a client-side route; only browsers
        // navigating get the app for unknown paths.
        let wants_page = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        if path.starts_with("/assets/") || !wants_page {
            return error::not_found(req).await;
        }
    }
    match file_response(&index, REVALIDATE).await {
        Some(response) => Ok(response),
        None => Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, REVALIDATE))
            .body(NOT_BUILT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_the_root() {
        let root = Path::new("/srv/dist");
        assert_eq!(
            resolve(root, "/assets/app-1a2b.js"),
            Some(PathBuf::from("/srv/dist/assets/app-1a2b.js"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/assets/../../x"), None);
    }

    #[test]
    fn built_files_get_their_content_type() {
        assert!(content_type(Path::new("a/index.html")).starts_with("text/html"));
        assert!(content_type(Path::new("app.js")).starts_with("text/javascript"));
        assert_eq!(content_type(Path::new("x.bin")), "application/octet-stream");
    }
}
