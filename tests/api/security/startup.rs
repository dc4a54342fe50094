//! `serve` refusing to start: with a reason in one error, never open by accident, and never
//! logging a secret.

use super::*;

/// `pulse` run to its end with `args` and the environment `vars`.
fn run_pulse(args: &[&str], vars: &[(String, String)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .envs(vars.iter().cloned())
        .output()
        .unwrap()
}

/// `pulse` run with `args` and `vars`, asserted to succeed (what it said shown when not).
fn succeeded(args: &[&str], vars: &[(String, String)]) -> std::process::Output {
    let out = run_pulse(args, vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The keys `pulse keys list --json` run with `vars` lists.
fn listed_keys(vars: &[(String, String)]) -> Value {
    serde_json::from_slice(&succeeded(&["keys", "list", "--json"], vars).stdout).unwrap()
}

/// What `pulse` run with `args` and `vars` says as it fails.
fn refusal(args: &[&str], vars: &[(String, String)]) -> String {
    let out = run_pulse(args, vars);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whatever stops `serve` from starting, it says why in one error and exits 1, without the
/// panics of actors torn down before they ran.
#[test]
fn serve_that_cannot_start_says_why_and_exits_cleanly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(TestEnv::new());
    let base = env.env();
    let with = |changes: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        vars.extend(changes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        vars
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_at = taken.local_addr().unwrap().to_string();
    let cases = [
        (
            with(&[("PULSE_AUTH__OPEN", "false")]),
            "auth.jwt_secret is not set",
        ),
        (
            with(&[
                ("PULSE_AUTH__OPEN", "false"),
                (
                    "PULSE_AUTH__JWT_SECRET",
                    "replace-me-with-32-random-bytes-please",
                ),
            ]),
            "looks like a placeholder",
        ),
        (
            with(&[("PULSE_LISTEN", &taken_at)]),
            "binding the HTTP listener",
        ),
        // A secret beside an `open` left from a demo: refused, not served open with every
        // key ignored.
        (
            with(&[("PULSE_AUTH__JWT_SECRET", SECRET)]),
            "auth.open and auth.jwt_secret are both set",
        ),
        (
            with(&[
                ("PULSE_ANALYZER__BACKEND", "onnx"),
                ("PULSE_ANALYZER__BUNDLES", r#"["/nonexistent/bundle"]"#),
            ]),
            "/nonexistent/bundle",
        ),
    ];
    for (vars, reason) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
            .arg("serve")
            .env_remove("PULSE_MODEL_DIR")
            .envs(vars.iter().cloned())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{reason}: {said}");
        assert!(said.contains(reason), "{reason}: {said}");
        assert!(!said.contains("panicked"), "{reason}: {said}");
    }
    drop(taken);

    // Settings that cannot be read: exit 2, and the sources' credentials are never quoted.
    let cases = [
        (
            with(&[(
                "PULSE_SOURCES",
                r#"[{"kind":"reddit","client_id":"x","client_secret":"S3CRET-not-shown"}]"#,
            )]),
            "`sources`",
        ),
        (
            with(&[("PULSE_LIMITS__PER_IP_PER_SEC", "0")]),
            "limits.per_ip_per_sec must be a positive number",
        ),
    ];
    for (vars, reason) in cases {
        let out = run_pulse(&["serve"], &vars);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{reason}: {said}");
        assert!(said.contains(reason), "{reason}: {said}");
        assert!(!said.contains("S3CRET"), "a credential was quoted: {said}");
    }
}

#[test]
fn serve_refuses_to_start_open_unless_told_and_never_logs_secrets() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(TestEnv::new());
    let mut vars = env.env();
    vars.retain(|(k, _)| k != "PULSE_AUTH__OPEN");

    // Neither a secret nor an explicit open: refused, with the fix.
    let said = refusal(&["serve"], &vars);
    assert!(
        said.contains("PULSE_AUTH__JWT_SECRET") && said.contains("PULSE_AUTH__OPEN"),
        "{said}"
    );

    // Told to run open on the command line while a secret is set: refused as well.
    let mut both = vars.clone();
    both.push(("PULSE_AUTH__JWT_SECRET".into(), SECRET.into()));
    let said = refusal(&["serve", "--open"], &both);
    assert!(
        said.contains("auth.open and auth.jwt_secret are both set"),
        "{said}"
    );
    assert!(!said.contains(SECRET), "the secret was quoted: {said}");

    // Told explicitly: it runs open and says so loudly, and the dashboard is told.
    let mut open = vars.clone();
    open.push(("PULSE_AUTH__OPEN".into(), "true".into()));
    let server = PulseProcess::start(&open);
    assert!(server.log_text().contains("AUTHENTICATION IS OFF"));
    let status: Value = rt.block_on(async {
        reqwest::get(format!("http://{}/api/v1/auth/status", server.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(status["mode"], "open");
    // Whoever reaches an open server may make itself a key.
    let made_open: Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{}/api/v1/admin/keys", server.address))
            .json(&json!({"role": "admin", "name": "made while open"}))
            .fetch_json()
            .await
    });
    let made_open = made_open["id"].as_str().unwrap().to_string();
    drop(server);

    // With a secret: keys from the command line, used over HTTP; nothing secret is logged.
    let mut secure = vars.clone();
    secure.push(("PULSE_AUTH__JWT_SECRET".into(), SECRET.into()));
    let out = succeeded(
        &[
            "keys", "create", "--role", "analyst", "--name", "cli", "--json",
        ],
        &secure,
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let server = PulseProcess::start(&secure);
    let token = rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{}", server.address);
        let issued: Value = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"api_key": key}))
            .fetch_json()
            .await;
        let token = issued["access_token"].as_str().unwrap().to_string();
        let res = http
            .get(format!("{base}/api/v1/posts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let res = http
            .get(format!("{base}/api/v1/posts"))
            .bearer_auth(format!("{token}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
        token
    });
    let listed = listed_keys(&secure);
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0]["last_used_at"].is_string());
    assert!(!listed.to_string().contains(&key));
    let log = server.log_text();
    assert!(log.contains("access token issued"), "{log}");
    // Once keys are required, the one made while open is named until it is revoked.
    let warning = log
        .lines()
        .find(|l| l.contains("made while this deployment ran without authentication"))
        .unwrap_or_else(|| panic!("no warning of keys made while open: {log}"));
    assert!(warning.contains(&made_open), "{warning}");
    for secret in [SECRET, key.as_str(), token.as_str()] {
        assert!(!log.contains(secret), "the log holds a secret");
    }

    // Scopes from the command line: set, listed, and refused when they name no platform.
    let id = created["id"].as_str().unwrap();
    succeeded(
        &[
            "keys",
            "scope",
            id,
            "--platform",
            "twitter",
            "--id-prefix",
            "tw:",
        ],
        &secure,
    );
    let listed = listed_keys(&secure);
    assert_eq!(
        listed[0]["scope"],
        json!({"platforms": ["twitter"], "products": [], "id_prefixes": ["tw:"]})
    );
    let refused = refusal(
        &[
            "keys",
            "create",
            "--role",
            "ingest",
            "--platform",
            "myspace",
        ],
        &secure,
    );
    assert!(refused.contains("unknown platform"));
}

// Failed while `keys create` took any name: each of these keys was created.
#[test]
fn keys_create_refuses_names_that_hide_or_reorder_text() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(TestEnv::new());
    let vars = env.env();
    let pulse = |args: &[&str]| run_pulse(args, &vars);
    for name in [
        "ops\u{7}",
        "ops\nadmin",
        "pulse\u{200B}ops",
        "ops\u{061C}",
        "ops\u{202E}nimda",
    ] {
        let out = pulse(&["keys", "create", "--role", "admin", "--name", name]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name:?}: {said}");
        assert!(
            said.contains("without control, zero-width"),
            "{name:?}: {said}"
        );
        assert!(out.stdout.is_empty(), "{name:?}: a key was printed");
    }
    let listed = listed_keys(&vars);
    assert_eq!(listed, json!([]), "no key was created");
    succeeded(
        &[
            "keys",
            "create",
            "--role",
            "admin",
            "--name",
            "Zürich ops ☕",
        ],
        &vars,
    );
}

/// The compose demo published an open server on every interface, and the example
/// secret of the Kubernetes manifests passed the length check.
#[test]
fn shipped_configurations_are_safe_as_they_stand() {
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let ports: Vec<&str> = compose
        .lines()
        .filter(|l| l.trim_start().starts_with("- \"") && l.contains(":8080\""))
        .collect();
    assert!(!ports.is_empty());
    for line in ports {
        assert!(line.contains("${PUBLISH_ADDRESS:-127.0.0.1}:"), "{line}");
    }
    // Prometheus, Grafana (a known default password) and Jaeger ask nobody who they are:
    // publishing Pulse on the network must not publish them too.
    let published: Vec<&str> = compose
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("- \"") && l.contains("}:") && !l.contains(":8080\"")
        })
        .collect();
    assert_eq!(published.len(), 3, "{published:?}");
    for line in published {
        assert!(line.contains("${MONITORING_ADDRESS:-127.0.0.1}:"), "{line}");
    }
    let secret = std::fs::read_to_string(format!("{root}/deploy/secret.example.yaml")).unwrap();
    let example = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("jwt-secret:"))
        .unwrap()
        .trim()
        .trim_matches('"');
    assert!(pulse::auth::token::TokenCodec::new(example, "pulse", 60).is_err());
    // The image listens on every interface: it starts with authentication on, never open by
    // default, and compose passes a secret on only when one is set (an empty one wiped a
    // pulse.toml's and left the server open).
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let cmd = dockerfile
        .lines()
        .rfind(|l| l.starts_with("CMD "))
        .expect("the image's command");
    assert!(!cmd.contains("--demo") && !cmd.contains("--open"), "{cmd}");
    assert!(
        !compose.contains("PULSE_AUTH__JWT_SECRET:-"),
        "compose passes an empty secret"
    );
}
