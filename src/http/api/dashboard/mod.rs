//! The dashboard: the React build in `http.dashboard_dir` served at `/`, so one process gives
//! people the live view without a separate web server.
//!
//! Paths that name a file of the build get it (hashed `assets/` forever cacheable, everything
//! else revalidated); other paths a browser navigates to (`Accept: text/html`) get
//! `index.html`, so client-side URLs survive a reload. API paths, and any path asked for by a
//! client that does not want a page, keep the API's JSON 404. When the build is missing, `/`
//! says how to make it instead of failing obscurely.
//!
//! The build writes a brotli and a gzip copy beside each text file (`frontend/scripts/
//! precompress.mjs`); the copy the browser accepts is served as is, so the dashboard travels
//! compressed at the best ratio without compressing anything per request. Files are read once
//! and shared by every answer ([`Files`]), and revalidated by `ETag`.

use std::path::{Component, Path, PathBuf};

use actix_web::http::header;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

mod files;

pub use files::Files;

use crate::http::answer::Answer;
use crate::http::error;
use crate::http::state::State;

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

/// Precompressed copies a build may hold beside a file: `Content-Encoding`, file suffix.
const PRECOMPRESSED: [(&str, &str); 2] = [("br", "br"), ("gzip", "gz")];

/// Whether an `Accept-Encoding` value accepts `coding` (by name or `*`, with a q above 0).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    let mut by_name = None;
    let mut any = None;
    for part in accept_encoding.split(',') {
        let mut fields = part.split(';');
        let name = fields.next().unwrap_or("").trim();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            by_name = Some(q > 0.0);
        } else if name == "*" {
            any = Some(q > 0.0);
        }
    }
    by_name.or(any).unwrap_or(false)
}

/// The file at `path` (or the precompressed copy the client accepts), or `304 Not Modified`
/// when the client already holds that version; `None` when there is no such file.
async fn file_response(
    files: &Files,
    path: &Path,
    cache: &'static str,
    req: &HttpRequest,
) -> Option<HttpResponse> {
    let header_of = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let accept_encoding = header_of(header::ACCEPT_ENCODING);
    let mut encoded = None;
    for (coding, suffix) in PRECOMPRESSED {
        if !accept_encoding.is_some_and(|a| accepts(a, coding)) {
            continue;
        }
        let mut copy = path.as_os_str().to_owned();
        copy.push(".");
        copy.push(suffix);
        if let Some(built) = files.get(Path::new(&copy)).await {
            encoded = Some((coding, built));
            break;
        }
    }
    let (coding, built) = match encoded {
        Some((coding, built)) => (Some(coding), built),
        None => (None, files.get(path).await?),
    };
    let fresh = header_of(header::IF_NONE_MATCH).is_some_and(|t| files::matches(t, &built.etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ETAG, built.etag));
    if fresh {
        return Some(response.finish());
    }
    response.content_type(content_type(path));
    if let Some(coding) = coding {
        response.insert_header((header::CONTENT_ENCODING, coding));
    }
    Some(response.body(files::Slices::new(built.bytes)))
}

/// Serves the dashboard for every GET the API does not route, and the API's 404 otherwise.
pub async fn fallback(req: HttpRequest, state: State) -> Answer {
    let path = req.path();
    let is_page = req.method() == Method::GET || req.method() == Method::HEAD;
    if !is_page || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return error::not_found(req).await;
    }
    let root = Path::new(&state.settings.http.dashboard_dir);
    let index = root.join("index.html");
    if path != "/" {
        // `Files::get` answers `None` for a directory or a missing file: one look at the disk.
        if let Some(file) = resolve(root, path) {
            let cache = if path.starts_with("/assets/") {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            if let Some(response) = file_response(&state.dashboard, &file, cache, &req).await {
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
    match file_response(&state.dashboard, &index, REVALIDATE, &req).await {
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
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=1.0, br;q=0.5", "br"));
        assert!(!accepts("gzip, br;q=0", "br"));
        assert!(!accepts("gzip", "br"));
        assert!(accepts("*", "br"));
        assert!(!accepts("*, br;q=0", "br"));
        assert!(!accepts("identity", "gzip"));
        assert!(accepts("GZIP", "gzip"));
    }

    #[test]
    fn built_files_get_their_content_type() {
        assert!(content_type(Path::new("a/index.html")).starts_with("text/html"));
        assert!(content_type(Path::new("app.js")).starts_with("text/javascript"));
        assert_eq!(content_type(Path::new("x.bin")), "application/octet-stream");
    }
}
