//! The dashboard: served by `pulse serve` from `http.dashboard_dir`, driven in headless
//! Chromium against a real Pulse fed by the generator (posts and engagement cascades) and a
//! scripted share cascade, and its payload schemas checked against what this server really
//! sends, a `virality:update` and the trending listing included. With authentication on, the
//! browser signs in with an API key, is refused with the wrong one, and keeps its session
//! across a reload, a token renewal and the WebSocket's close on expiry.
//!
//! The browser tests need the built frontend (`cd frontend && npm ci && npm run build`, which
//! `scripts/test.sh` does first), Node.js and `/usr/bin/chromium`.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{content_type, rss_of, unique, wait_until, FetchJson, PulseProcess, TestEnv};
use pulse::auth::{keys, Role};

fn frontend() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("frontend")
}

/// The built dashboard; a clear failure when it is missing.
fn dist() -> PathBuf {
    let dist = frontend().join("dist");
    assert!(
        dist.join("index.html").is_file() && frontend().join("node_modules").is_dir(),
        "the dashboard is not built: run `cd frontend && npm ci && npm run build` \
         (scripts/test.sh does it)"
    );
    dist
}

/// Where the browser test leaves its screenshots (ignored by git).
fn output_dir(test: &str) -> PathBuf {
    let dir = frontend().join("e2e-output").join(test);
    std::fs::create_dir_all(&dir).expect("create screenshot dir");
    dir
}

fn pulse_env(env: &TestEnv, dashboard: &Path) -> Vec<(String, String)> {
    let mut vars = env.env();
    vars.retain(|(k, _)| k != "PULSE_ALERTS__ENABLED");
    vars.extend([
        (
            "PULSE_HTTP__DASHBOARD_DIR".to_string(),
            dashboard.display().to_string(),
        ),
        ("PULSE_HTTP__WORKERS".into(), "2".into()),
        ("PULSE_ALERTS__ENABLED".into(), "true".into()),
        ("PULSE_ALERTS__EVALUATE_EVERY_SECS".into(), "1".into()),
    ]);
    vars
}

/// Runs `pulse generate` against the test's stream until it has appended `count` events;
/// returns how many of them are posts.
fn generate(env: &[(String, String)], count: u32) -> i64 {
    let out = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(["generate", "--rate", "500", "--seed", "7", "--count"])
        .arg(count.to_string())
        .envs(env.iter().cloned())
        .output()
        .expect("run pulse generate");
    assert!(out.status.success(), "generate failed: {out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("generate report");
    report["posts"]
        .as_i64()
        .expect("posts in the generate report")
}

async fn wait_for_posts(env: &TestEnv, count: i64) {
    let stored = env.stored(count, Duration::from_secs(60)).await;
    assert!(stored, "the generated posts were not stored");
}

fn node(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new("node")
        .args(args)
        .current_dir(frontend())
        .envs(envs.iter().copied())
        .output()
        .expect("run node (is Node.js installed?)")
}

fn report(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the browser script `script` against `pulse` with `args`, its screenshots going to
/// the output folder `name`; what it printed, once it succeeded, and that folder.
fn run_in_browser(
    script: &str,
    pulse: &PulseProcess,
    name: &str,
    args: &[&str],
) -> (String, PathBuf) {
    let url = format!("http://{}", pulse.address);
    let out_dir = output_dir(name);
    let mut argv = vec![script, url.as_str()];
    argv.extend_from_slice(args);
    argv.extend(["--out", out_dir.to_str().expect("utf-8 path")]);
    let out = node(&argv, &[]);
    let text = report(&out);
    assert!(out.status.success(), "{script} failed\n{text}");
    (text, out_dir)
}

/// Panics unless the browser run left each of `shots` as a PNG in `out_dir`.
fn assert_screenshots(out_dir: &Path, shots: &[&str]) {
    for shot in shots {
        let file = out_dir.join(format!("{shot}.png"));
        assert!(file.is_file(), "no {shot} screenshot");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_live_pipeline_in_a_browser() {
    let dist = dist();
    let env = TestEnv::new().await;
    let vars = pulse_env(&env, &dist);
    let pulse = PulseProcess::start(&vars);
    let posts = generate(&vars, 320);
    wait_for_posts(&env, posts).await;

    let (text, out_dir) = run_in_browser("e2e/dashboard.mjs", &pulse, "live", &[]);
    assert!(text.contains("all dashboard checks passed"), "{text}");
    assert_screenshots(
        &out_dir,
        &[
            "dashboard",
            "viral",
            "filtered",
            "spike",
            "channels",
            "digests",
            "review",
            "theme-toggled",
        ],
    );
    println!("{text}");
}

/// The demo as a new user meets it: `pulse serve --demo` with its own feed and scenarios and
/// the analyzer a user gets, watched from the start; the incident's alerts and the viral post
/// must reach the dashboard within four minutes.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_shows_an_incident_and_a_viral_post_in_a_browser() {
    let dist = dist();
    let env = TestEnv::new().await;
    let mut vars = env.env();
    vars.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "PULSE_ALERTS__ENABLED" | "PULSE_ANALYZER__BACKEND" | "PULSE_ANALYZER__WORKERS"
        )
    });
    vars.push((
        "PULSE_HTTP__DASHBOARD_DIR".into(),
        dist.display().to_string(),
    ));
    let pulse = PulseProcess::start_with_args(&vars, &["serve", "--demo"]);
    let (text, out_dir) = run_in_browser("e2e/demo.mjs", &pulse, "demo", &["--within-s", "240"]);
    assert!(text.contains("all demo checks passed"), "{text}");
    assert_screenshots(&out_dir, &["demo-alerts", "demo-viral"]);
    println!("{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_to_the_dashboard_in_a_browser() {
    let dist = dist();
    let env = TestEnv::new().await;
    let mut vars = pulse_env(&env, &dist);
    vars.retain(|(k, _)| k != "PULSE_AUTH__OPEN");
    vars.extend([
        (
            "PULSE_AUTH__JWT_SECRET".to_string(),
            "b81e4f27ac093d5e6f1a2c48d79e0b3a5c6d7e8f90a1b2c3".to_string(),
        ),
        // Short-lived tokens, so the browser sees a renewal and the WebSocket closed on
        // expiry (4001) reconnect.
        ("PULSE_AUTH__TOKEN_TTL_SECS".into(), "30".into()),
    ]);
    let pulse = PulseProcess::start(&vars);
    let pg = env.pg().await;
    let analyst = keys::create(&pg, Role::Analyst, "dashboard test", None, "test")
        .await
        .expect("analyst key")
        .key;
    let ingest = keys::create(&pg, Role::Ingest, "dashboard test feed", None, "test")
        .await
        .expect("ingest key")
        .key;

    let (text, out_dir) = run_in_browser(
        "e2e/auth.mjs",
        &pulse,
        "auth",
        &["--api-key", &analyst, "--ingest-key", &ingest],
    );
    assert!(text.contains("all auth checks passed"), "{text}");
    assert!(
        text.contains("renewed, the WebSocket reconnected"),
        "{text}"
    );
    assert_screenshots(
        &out_dir,
        &[
            "auth-sign-in",
            "auth-invalid-key",
            "auth-ingest-key",
            "auth-signed-in",
            "auth-signed-out",
        ],
    );
    println!("{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_payload_schemas_match_what_the_server_sends() {
    dist();
    let env = TestEnv::new().await;
    let vars = pulse_env(&env, Path::new("/nonexistent"));
    let pulse = PulseProcess::start(&vars);
    let posts = generate(&vars, 200);
    wait_for_posts(&env, posts).await;
    let url = format!("http://{}", pulse.address);
    let http = reqwest::Client::new();
    let rule = serde_json::json!({"name": unique("contract"), "kind": "negativity",
        "dimension": "overall", "threshold": 0.01, "min_volume": 1, "window_minutes": 60});
    // One alert fires before the capture (to acknowledge); the capture makes its own while its
    // socket listens.
    let created = http
        .post(format!("{url}/api/v1/alert-rules"))
        .json(&rule)
        .send()
        .await
        .expect("create rule");
    assert_eq!(created.status(), 201);
    let fired = wait_until(Duration::from_secs(60), || async {
        let page: serde_json::Value = http
            .get(format!("{url}/api/v1/alerts?status=firing"))
            .fetch_json()
            .await;
        page["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(fired, "the contract rule did not fire");

    let samples = tempdir();
    let capture = std::process::Command::new("node")
        .args(["--experimental-websocket", "e2e/capture-payloads.mjs", &url])
        .arg(&samples)
        .arg("8")
        .current_dir(frontend())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node");
    let out = capture.wait_with_output().expect("capture");
    assert!(out.status.success(), "capture failed\n{}", report(&out));

    let vitest = frontend().join("node_modules/vitest/vitest.mjs");
    let out = node(
        &[
            vitest.to_str().expect("utf-8 path"),
            "run",
            "src/api/contract.test.ts",
            "src/api/channelPayloads.test.ts",
        ],
        &[
            ("PULSE_PAYLOAD_DIR", samples.to_str().expect("utf-8 path")),
            (
                "PULSE_PAYLOAD_REQUIRE",
                "alert-ack,auth/refused,alert:,virality:,saved-searches,saved-search",
            ),
        ],
    );
    assert!(
        out.status.success(),
        "the schemas disagree with the server\n{}",
        report(&out)
    );
    // `PULSE_KEEP_PAYLOADS=1` keeps them, to refresh the committed samples in
    // frontend/src/api/fixtures from.
    if std::env::var_os("PULSE_KEEP_PAYLOADS").is_some() {
        println!("payloads kept in {}", samples.display());
    } else {
        let _ = std::fs::remove_dir_all(&samples);
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("pulse-dashboard"));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_is_served_with_client_routes_and_cache_headers() {
    let env = TestEnv::new().await;
    let site = tempdir();
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!doctype html><div id=\"root\"></div>",
    )
    .unwrap();
    std::fs::write(site.join("assets/app-abc123.js"), "console.log(1)").unwrap();
    std::fs::write(site.join("favicon.svg"), "<svg/>").unwrap();
    let pulse = PulseProcess::start(&pulse_env(&env, &site));
    let url = format!("http://{}", pulse.address);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}")).send();

    let index = get("/").await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let etag = index.headers()["etag"].clone();
    assert!(index.text().await.unwrap().contains("id=\"root\""));
    // Revalidated by its tag: not sent again while it holds, sent anew once a build changes it.
    let revalidate = |tag: &reqwest::header::HeaderValue| {
        http.get(format!("{url}/"))
            .header("if-none-match", tag.clone())
            .send()
    };
    let unchanged = revalidate(&etag).await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    std::fs::write(
        site.join("index.html"),
        "<!doctype html><div id=\"root\" data-build=\"2\"></div>",
    )
    .unwrap();
    let rebuilt = revalidate(&etag).await.unwrap();
    assert_eq!(rebuilt.status(), 200);
    assert_ne!(rebuilt.headers()["etag"], etag);
    assert!(rebuilt.text().await.unwrap().contains("data-build=\"2\""));

    let asset = get("/assets/app-abc123.js").await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(content_type(&asset).starts_with("text/javascript"));
    assert!(asset.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(get("/favicon.svg").await.unwrap().status(), 200);

    // Client-side routes (a shared filtered view) get the app.
    let route = get("/?platform=reddit&window=1h").await.unwrap();
    assert!(route.text().await.unwrap().contains("id=\"root\""));
    let deep = http
        .get(format!("{url}/views/reddit"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("id=\"root\""));
    // A client that does not ask for a page gets the API's 404.
    assert_eq!(get("/views/reddit").await.unwrap().status(), 404);

    // API paths and missing assets keep the API's 404.
    for path in ["/api/v1/nope", "/assets/missing.js", "/ws/nope"] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "route_not_found", "{path}");
    }

    // The service map moved to /api/v1 and lists the pipeline endpoint.
    let map: serde_json::Value = get("/api/v1").await.unwrap().json().await.unwrap();
    assert_eq!(map["name"], "pulse");
    let pipeline: serde_json::Value = get("/api/v1/pipeline").await.unwrap().json().await.unwrap();
    assert_eq!(pipeline["window_secs"], 60);
    assert!(pipeline["consumer_group"]["dead_letters"].is_i64());
    let _ = std::fs::remove_dir_all(&site);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_build_the_root_says_how_to_make_one() {
    let env = TestEnv::new().await;
    let pulse = PulseProcess::start(&pulse_env(&env, Path::new("/nonexistent/dist")));
    let res = reqwest::get(format!("http://{}/", pulse.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(content_type(&res).starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("npm run build"));
}

/// Clients that ask for a large dashboard page and then stop reading: each holds a slice of
/// the one copy the server keeps, not a copy of the page of its own.
#[tokio::test(flavor = "multi_thread")]
async fn clients_that_stop_reading_the_dashboard_do_not_each_hold_a_copy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PAGE: usize = 4 << 20;
    const CLIENTS: usize = 48;
    let env = TestEnv::new().await;
    let site = tempdir();
    let mut page = b"<!doctype html><div id=\"root\"></div><!--".to_vec();
    page.resize(PAGE, b'x');
    std::fs::write(site.join("index.html"), &page).unwrap();
    let pulse = PulseProcess::start(&pulse_env(&env, &site));
    let url = format!("http://{}/", pulse.address);
    // Once read whole, so the page is held before the baseline.
    let whole = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(whole.len(), PAGE);
    let pid = pulse.child.id();
    let baseline = rss_of(pid);

    let mut stalled = Vec::new();
    for _ in 0..CLIENTS {
        let mut tcp = tokio::net::TcpStream::connect(pulse.address).await.unwrap();
        let ask = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\n\r\n",
            pulse.address
        );
        tcp.write_all(ask.as_bytes()).await.unwrap();
        // The answer has begun (its head and the first bytes), then the client stops reading.
        let mut head = [0u8; 1024];
        let mut read = 0;
        while read < head.len() {
            let n = tcp.read(&mut head[read..]).await.unwrap();
            assert!(
                n > 0,
                "closed before the answer began: {}",
                String::from_utf8_lossy(&head[..read])
            );
            read += n;
        }
        assert!(head.starts_with(b"HTTP/1.1 200"));
        stalled.push(tcp);
    }
    let grown = rss_of(pid).saturating_sub(baseline);
    let copies = (CLIENTS * PAGE) as u64;
    println!(
        "{CLIENTS} stalled clients of a {} MiB page: the server grew {} MiB (a copy each: {} MiB)",
        PAGE >> 20,
        grown >> 20,
        copies >> 20
    );
    assert!(
        grown < copies / 4,
        "{CLIENTS} clients that stopped reading grew the server by {grown} bytes"
    );
    // The server still answers whole.
    let again = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(again.len(), PAGE);
    drop(stalled);
    let _ = std::fs::remove_dir_all(&site);
}
