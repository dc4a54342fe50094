//! The OpenAPI document against the server it describes: a real Pulse serves
//! `/api/openapi.json` and its reference page, and schemathesis generates requests from the
//! document and checks every answer (no server error, status, content type and body as
//! documented).
//!
//! schemathesis comes from the project venv (`scripts/models.sh` installs it and exports
//! `PULSE_SCHEMATHESIS`; `bash scripts/test.sh` does both).

use crate::common;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Test cases per operation and phase: enough to reach past validation on every operation,
/// few enough for the whole run to take about a minute on two cores.
const MAX_EXAMPLES: &str = "30";
/// Fixed so a run generates the same cases as the last one.
const SEED: &str = "20251121";
/// The run is killed past this. Alone it takes about two minutes on two cores; with both
/// cores busy elsewhere (`stress-ng --cpu 2`), three and a half; beside the rest of the suite
/// as well, longer.
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// The checks the run enforces.
const CHECKS: &str = "not_a_server_error,response_schema_conformance,\
    status_code_conformance,content_type_conformance";

/// What a schemathesis run needs to know about the server under test.
pub struct AppInfo {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// An admin key, so the run reaches every operation past authentication.
    pub admin_key: String,
}

/// Extra headers for every request of the run, as `Name: value`: an admin's credentials.
fn schemathesis_headers(app: &AppInfo) -> Vec<String> {
    vec![format!("X-API-Key: {}", app.admin_key)]
}

/// The schemathesis executable: `PULSE_SCHEMATHESIS`, else the project venv's.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("PULSE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".pulse/venv/bin/schemathesis")
        });
    assert!(
        path.is_file(),
        "schemathesis not found at {}: run `eval \"$(bash scripts/models.sh)\"` (it installs \
         schemathesis into .pulse/venv and exports PULSE_SCHEMATHESIS), or run the suite with \
         `bash scripts/test.sh`",
        path.display()
    );
    path
}

struct Served {
    app: TestApp,
    info: AppInfo,
}

async fn serve() -> Served {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // Authentication on, as a normal server runs: the documented 401/403 apply.
    settings.auth.open = false;
    settings.auth.jwt_secret =
        pulse::config::Secret("e3a91c07f5d24b68a0c1e9f37b52d8a4c6e0f1a3b5d7c9e2".into());
    // The run judges answers against the document, not load shedding (the budget and isolation
    // tests do): on two cores busy with the rest of the suite, API queries wait for their
    // connection and run as long as the run's requests may (30 s) instead of answering 503
    // `busy` or 504, which `not_a_server_error` counts as failures.
    settings.database.api_wait_ms = 25_000;
    settings.database.api_statement_timeout_ms = 25_000;
    let app = spawn_app_with(env, settings).await;
    let admin_key = app
        .create_key(pulse::auth::Role::Admin, "schemathesis")
        .await
        .key;
    let info = AppInfo {
        base_url: format!("http://{}", app.address()),
        admin_key,
    };
    Served { app, info }
}

/// Every type of the document has a name of its own: the document keys schemas by name, so
/// two types of one name become one schema, and every `$ref` to it describes one of them
/// wrongly (a story's growth buckets were once described as the metrics' bucket widths).
#[test]
fn no_two_documented_types_share_a_name() {
    fn files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut all,
    );
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut derives = false;
        let mut renamed = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[derive(") && line.contains("ToSchema") {
                derives = true;
            } else if line.starts_with("#[schema(as") {
                renamed = true;
            } else if derives && !line.starts_with("#[") && !line.starts_with("///") {
                let name = ["pub struct ", "pub enum ", "struct ", "enum "]
                    .iter()
                    .find_map(|p| line.strip_prefix(p))
                    .map(|rest| {
                        rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                            .next()
                    });
                if let (Some(Some(name)), false) = (name, renamed) {
                    seen.entry(name.to_string())
                        .or_default()
                        .push(path.display().to_string());
                }
                derives = false;
                renamed = false;
            }
        }
    }
    let shared: Vec<_> = seen.iter().filter(|(_, files)| files.len() > 1).collect();
    assert!(seen.len() > 50, "found {} documented types", seen.len());
    assert!(shared.is_empty(), "{shared:?}");
}

#[actix_rt::test]
async fn the_document_and_its_page_are_served() {
    let served = serve().await;
    let base = &served.info.base_url;
    let http = reqwest::Client::new();

    let res = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(content_type(&res).starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/api/v1",
        "/ws",
        "/api/v1/posts/{id}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    // A change a browser sends from another site's page is refused, 403 `origin_not_allowed`
    // (tests/api/security/browser.rs): the operation's 403 says so.
    let refused = &doc["paths"]["/api/v1/alert-rules/{id}/disable"]["post"]["responses"]["403"];
    let shared = refused["$ref"].as_str().expect("the shared 403");
    let name = shared.strip_prefix("#/components/responses/").unwrap();
    let said = doc["components"]["responses"][name]["description"]
        .as_str()
        .unwrap();
    assert!(said.contains("(`origin_not_allowed`)"), "{said}");

    // The service map lists what the document lists.
    let map: Value = http.get(format!("{base}/api/v1")).fetch_json().await;
    let endpoints: Vec<&str> = map["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(endpoints.contains(&"GET /ws"), "{map}");
    assert!(endpoints.contains(&"POST /api/v1/score"), "{map}");
    assert_eq!(map["openapi"], "/api/openapi.json");

    // The page and its assets come from this server, with their types.
    for (path, wanted, needle) in [
        ("/api/docs", "text/html", r#"<script src="/api/docs.js""#),
        ("/api/docs.js", "text/javascript", "/api/openapi.json"),
        ("/api/docs.css", "text/css", ".operation"),
    ] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let got = content_type(&res).to_string();
        assert!(got.starts_with(wanted), "{path}: {got}");
        let body = res.text().await.unwrap();
        assert!(body.contains(needle), "{path}");
        assert!(
            !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
    served.app.shutdown().await;
}

#[actix_rt::test]
async fn schemathesis_finds_nothing_wrong() {
    let bin = schemathesis();
    let served = serve().await;
    let info = &served.info;
    let work = std::env::temp_dir().join(unique("pulse-schemathesis"));
    std::fs::create_dir_all(&work).unwrap();

    let mut command = tokio::process::Command::new(&bin);
    command
        .arg("run")
        .arg(format!("{}/api/openapi.json", info.base_url))
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--generation-database", "none"])
        // A server beside the rest of the suite on two busy cores can take seconds to answer;
        // speed is the benchmark's to judge, not this run's.
        .args(["--request-timeout", "30", "--workers", "1"])
        // The WebSocket upgrade is not a request/response exchange; tests/api/websocket/
        // covers it.
        .args(["--exclude-path", "/ws"])
        .args(["--no-color", "--output-truncate", "false"])
        .current_dir(&work)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    for header in schemathesis_headers(info) {
        command.arg("--header").arg(header);
    }

    let started = Instant::now();
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran past {RUN_LIMIT:?}"))
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&work);
    served.app.shutdown().await;

    // The summary (operations, phases, test cases, failures) for whoever reads the output.
    println!("schemathesis ran for {:.0?}", started.elapsed());
    for line in stdout.lines().filter(|l| {
        [
            "Operations:",
            "(in ",
            "Scenarios:",
            "passed",
            "failed",
            "generated",
        ]
        .iter()
        .any(|needle| l.contains(needle))
    }) {
        println!("{}", line.trim());
    }
    assert!(
        output.status.success(),
        "schemathesis exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}
