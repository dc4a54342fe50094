//! Compression as a browser meets it: the dashboard's precompressed copies chosen by
//! `Accept-Encoding`, the JSON API compressed on the fly, and nothing compressed for a client
//! that did not ask.

use crate::common;
use std::io::Read;

use common::app::spawn_app_with;
use common::*;
use serde_json::Value;

const SCRIPT: &str = "console.log('the dashboard, long enough to be worth compressing');\n";

/// A dashboard build with one asset and its brotli and gzip copies, as the frontend build
/// writes them (the copies' contents are marked so the test sees which one was served).
fn build_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("pulse-dist"));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>Pulse</title>",
    )
    .unwrap();
    let script = SCRIPT.repeat(40);
    std::fs::write(dir.join("assets/app-1a2b.js"), &script).unwrap();
    let mut br = Vec::new();
    brotli::BrotliCompress(
        &mut format!("{script}// br").as_bytes(),
        &mut br,
        &Default::default(),
    )
    .unwrap();
    std::fs::write(dir.join("assets/app-1a2b.js.br"), br).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, format!("{script}// gz").as_bytes()).unwrap();
    std::fs::write(dir.join("assets/app-1a2b.js.gz"), gz.finish().unwrap()).unwrap();
    dir
}

fn decode(encoding: &str, body: &[u8]) -> String {
    let mut out = String::new();
    match encoding {
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_string(&mut out)
            .unwrap(),
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_string(&mut out)
            .unwrap(),
        "" => return String::from_utf8(body.to_vec()).unwrap(),
        other => panic!("unexpected encoding {other}"),
    };
    out
}

/// `GET path` with `Accept-Encoding: accept` (none when empty), undecoded: the encoding, the
/// `Vary` header and the decoded body.
async fn get(base: &str, path: &str, accept: &str) -> (String, String, String) {
    // reqwest decodes nothing unless told to: the bytes are what the server sent.
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if !accept.is_empty() {
        request = request.header("accept-encoding", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (encoding, vary) = (header("content-encoding"), header("vary"));
    let body = response.bytes().await.unwrap();
    (encoding.clone(), vary, decode(&encoding, &body))
}

#[actix_rt::test]
async fn the_dashboard_and_the_api_travel_compressed_as_the_client_accepts() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    let dist = build_dir();
    settings.http.dashboard_dir = dist.display().to_string();
    let app = spawn_app_with(env, settings).await;
    let base = app.url("");
    let script = SCRIPT.repeat(40);

    // The precompressed copy the client prefers, served as written.
    let (encoding, vary, body) = get(&base, "/assets/app-1a2b.js", "gzip, deflate, br").await;
    assert_eq!((encoding.as_str(), body), ("br", format!("{script}// br")));
    assert!(
        vary.to_ascii_lowercase().contains("accept-encoding"),
        "{vary}"
    );
    let (encoding, _, body) = get(&base, "/assets/app-1a2b.js", "gzip").await;
    assert_eq!(
        (encoding.as_str(), body),
        ("gzip", format!("{script}// gz"))
    );
    let (encoding, _, body) = get(&base, "/assets/app-1a2b.js", "gzip;q=0, br;q=0").await;
    assert_eq!((encoding.as_str(), body), ("", script.clone()));
    let (encoding, _, body) = get(&base, "/assets/app-1a2b.js", "").await;
    assert_eq!((encoding.as_str(), body), ("", script));

    // The JSON API, compressed on the fly, and whole once decoded.
    app.xadd(&post_json(&unique("z"), "compress me, please"))
        .await;
    assert!(
        app.wait_for_posts(1, std::time::Duration::from_secs(30))
            .await
    );
    for accept in ["br", "gzip"] {
        let (encoding, _, body) = get(&base, "/api/v1/posts", accept).await;
        assert_eq!(encoding, accept);
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    }
    let (encoding, _, _) = get(&base, "/api/v1/posts", "").await;
    assert_eq!(encoding, "");
    app.app.shutdown().await;
    let _ = std::fs::remove_dir_all(dist);
}
