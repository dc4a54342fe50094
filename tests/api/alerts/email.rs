//! Alerts by email: a local SMTP relay that speaks STARTTLS with a test CA's certificate,
//! refuses twice before taking a message, and records what a person would read in the text
//! and HTML parts.

use crate::common;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A test CA and a certificate for `localhost` signed by it, made with the openssl command:
/// (CA PEM, server certificate PEM, server key PEM) paths.
fn test_certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (install it: apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Pulse test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// The local SMTP server (tests/support/smtp_sink.py), killed on drop.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    out: PathBuf,
}

impl SmtpSink {
    /// Points `settings` at this sink (STARTTLS with the test CA in `dir`, the sink's login),
    /// sending as `from`.
    fn relay_for(&self, settings: &mut pulse::config::Settings, dir: &std::path::Path, from: &str) {
        settings.email.smtp_host = "localhost".into();
        settings.email.smtp_port = self.port;
        settings.email.username = "pulse".into();
        settings.email.password = pulse::config::Secret("s3cret-smtp-password".into());
        settings.email.ca_file = dir.join("ca.pem").display().to_string();
        settings.email.from = from.into();
    }

    /// A sink with its certificates and messages in a fresh temporary directory named after
    /// `prefix`, refusing the first `fail_first` messages; the directory too.
    fn start_in_temp(prefix: &str, fail_first: u32) -> (PathBuf, SmtpSink) {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        let sink = SmtpSink::start(&dir, fail_first);
        (dir, sink)
    }

    fn start(dir: &std::path::Path, fail_first: u32) -> SmtpSink {
        use std::io::BufRead;
        let python = std::env::var("PULSE_TEST_PYTHON").expect(
            "PULSE_TEST_PYTHON is not set: source scripts/models.sh (it installs aiosmtpd)",
        );
        let (_, cert, key) = test_certificates(dir);
        let out = dir.join("messages.jsonl");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .args([
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ])
            .args(["--user", "pulse", "--password", "s3cret-smtp-password"])
            .args(["--fail-first", &fail_first.to_string()])
            .args(["--out", out.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"));
        SmtpSink { child, port, out }
    }

    /// The messages accepted so far: (envelope recipients, the message with its
    /// quoted-printable soft line breaks undone).
    fn messages(&self) -> Vec<(Vec<String>, String)> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let to = v["to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect();
                let data = v["data"]
                    .as_str()
                    .unwrap()
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=");
                (to, data)
            })
            .collect()
    }

    /// Waits up to 30 s until the sink has accepted `n` messages; whether it has.
    async fn received(&self, n: usize) -> bool {
        wait_until(Duration::from_secs(30), || async {
            self.messages().len() >= n
        })
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_rt::test]
async fn alerts_reach_email_over_starttls_with_text_and_html_once() {
    let (dir, sink) = SmtpSink::start_in_temp("pulse-smtp", 2);
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        s.alerts.resolve_after_secs = 1;
        quick_webhooks(s);
        sink.relay_for(s, &dir, "Pulse Alerts <alerts@pulse.test>");
    })
    .await;
    let rule = super::only_phone_negativity(&app, "Phone churn", "critical").await;
    let hooks = "/api/v1/webhooks";
    for bad in ["mailto:", "mailto:nobody", "https://example.com/"] {
        let (status, _) = app.post(hooks, &json!({"kind": "email", "url": bad})).await;
        assert_eq!(status, 400, "{bad}");
    }
    let channel = app
        .create_channel(&json!({"kind": "email", "name": "on-call mail",
               "url": "mailto:ops@example.com, Brand Team <brand@example.com>"}))
        .await;

    let angry: Vec<String> = super::complaints(
        "em",
        6,
        "Cancelling, the Pulse Phone <b>bricked</b> again & again, awful",
    )
    .map(|p| p.to_string())
    .collect();
    app.send_events(&angry).await;
    // The relay refuses twice (451), then takes the alert: one message.
    assert!(sink.received(1).await, "no email arrived");
    let (to, message) = sink.messages()[0].clone();
    assert_eq!(to, ["ops@example.com", "brand@example.com"]);
    assert!(
        message.contains("Subject: [CRITICAL] Phone churn: product pulse-phone"),
        "{message}"
    );
    assert!(
        message.contains("From: \"Pulse Alerts\" <alerts@pulse.test>")
            || message.contains("From: Pulse Alerts <alerts@pulse.test>"),
        "{message}"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(
        message.contains("text/plain") && message.contains("text/html"),
        "{message}"
    );
    assert!(
        message.contains("negative share 100% (threshold 50%)"),
        "{message}"
    );
    assert!(
        message.contains("> Cancelling, the Pulse Phone <b>bricked</b> again & again"),
        "the text part quotes the post as written: {message}"
    );
    assert!(
        message.contains(
            "<blockquote>Cancelling, the Pulse Phone &lt;b&gt;bricked&lt;/b&gt; again &amp; again"
        ),
        "the HTML part escapes the post: {message}"
    );
    assert!(
        message.contains("http://localhost:8080/?product=pulse-phone"),
        "{message}"
    );
    // The relay has the message before the delivery row records it.
    let (_, fired) = app
        .await_delivery(&channel, "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(fired["status"], "delivered", "{fired}");
    assert_eq!(fired["attempts"], 3, "{fired}");
    assert_eq!(fired["last_status"], 250, "{fired}");

    // Resolution by email too; then a test message.
    app.clear_rule(&rule).await;
    assert!(sink.received(2).await, "the resolution was not emailed");
    assert!(sink.messages()[1]
        .1
        .contains("Subject: Resolved: Phone churn: product pulse-phone"));
    assert_eq!(
        app.test_channel(&channel).await,
        json!({"delivered": true, "status": 250, "error": null})
    );
    assert_eq!(sink.messages().len(), 3);
    assert!(sink.messages()[2].1.contains("Test message from Pulse"));
    app.shutdown().await;
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A digest by e-mail: one message whose HTML part shows the chart inline (`cid:`), attached as
/// a PNG under that content id, beside a plain-text part saying the same figures.
#[actix_rt::test]
async fn a_digest_reaches_email_with_its_chart_inline_and_a_text_part() {
    use base64::Engine as _;
    let (dir, sink) = SmtpSink::start_in_temp("pulse-smtp-digest", 0);
    let app = spawn_app_tuned(|s| {
        quick_webhooks(s);
        sink.relay_for(s, &dir, "Pulse <digests@pulse.test>");
    })
    .await;
    let posts: Vec<String> = (0..12)
        .map(|i| post_json(&format!("dm-{i}"), "the battery died again, awful"))
        .collect();
    app.send_events(&posts).await;
    assert!(app.wait_for_posts(12, Duration::from_secs(30)).await);
    let channel = app
        .create_channel(&json!({"kind": "email", "url": "mailto:brand@example.com"}))
        .await;
    let (status, schedule) = app
        .post(
            "/api/v1/digests/schedules",
            &json!({"name": "Daily brand report", "scope": "all", "cadence": "daily",
                    "at": "08:00", "timezone": "Europe/Paris", "channels": [channel["id"]]}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let (status, sent) = app
        .post_empty(&format!(
            "/api/v1/digests/schedules/{}/send",
            schedule["id"]
        ))
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["posts"], 12, "{sent}");
    assert!(sink.received(1).await, "no e-mail arrived");
    let (to, message) = sink.messages()[0].clone();
    assert_eq!(to, ["brand@example.com"]);
    assert!(
        message.contains("Subject: Pulse digest: All posts"),
        "{message}"
    );
    assert!(message.contains("multipart/related"), "{message}");
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(message.contains("src=\"cid:digest-chart\""), "{message}");
    assert!(message.contains("Content-ID: <digest-chart>"), "{message}");
    assert!(message.contains("12 posts"), "{message}");
    // The attached image is a PNG (its padding may have gone with the sink's undoing of
    // quoted-printable line breaks).
    let message = message.replace("\r\n", "\n");
    let image = message
        .split("Content-Type: image/png")
        .nth(1)
        .expect("an image part");
    let body: String = image
        .split("\n\n")
        .nth(1)
        .unwrap_or("")
        .split("--")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let png = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(body.trim_end_matches('=').as_bytes())
        .expect("the image part is base64");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    app.shutdown().await;
}
