//! The smaller findings of the probe (its finding 8), one test each: foreign Hosts, forwarded
//! addresses, secrets in receiver URLs, key-id timing, out-of-range times, unbounded history,
//! feedback that moves thresholds and the shipped configurations.

use super::*;

/// Finding 8: a spoofed Host with a matching Origin passed as the dashboard's own origin.
#[actix_rt::test]
async fn foreign_host_names_are_refused() {
    let s = Server::start(|_| {}).await;
    let key = s.key(Role::Analyst).key.clone();
    let port = s.app.address().port();
    let evil = format!("evil.example:{port}");
    let res = raw_request(
        s.app.address(),
        "GET",
        "/api/v1/posts",
        &[("Host", evil.as_str()), ("x-api-key", key.as_str())],
        None,
    )
    .await;
    assert_eq!((res.status, res.code().as_str()), (400, "host_not_allowed"));
    let origin = format!("http://evil.example:{port}");
    let upgrade = raw_request(
        s.app.address(),
        "GET",
        "/ws",
        &[
            ("Host", evil.as_str()),
            ("Origin", origin.as_str()),
            ("x-api-key", key.as_str()),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        None,
    )
    .await;
    assert_eq!(upgrade.status, 400);
    // The server's own names pass.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let res = raw_request(
            s.app.address(),
            "GET",
            "/api/v1/posts",
            &[("Host", host.as_str()), ("x-api-key", key.as_str())],
            None,
        )
        .await;
        assert_eq!(res.status, 200, "{host}");
    }
    s.app.shutdown().await;
}

/// Finding 8: the per-address limit ignored a trusted proxy's forwarded address.
#[actix_rt::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let s = Server::start(|s| {
        s.limits.rate_limits = true;
        s.limits.per_ip_burst = 3.0;
        s.limits.per_ip_per_sec = 0.001;
        s.http.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let status = |client: &'static str| {
        let addr = s.app.address();
        async move {
            raw_request(
                addr,
                "GET",
                "/api/v1/auth/status",
                &[("X-Forwarded-For", client)],
                None,
            )
            .await
            .status
        }
    };
    for _ in 0..3 {
        assert_eq!(status("203.0.113.7").await, 200);
    }
    assert_eq!(status("203.0.113.7").await, 429);
    assert_eq!(
        status("198.51.100.9").await,
        200,
        "another client behind the proxy"
    );
    // A client cannot pick a fresh address for itself: only the hop our proxy added counts.
    assert_eq!(status("198.51.100.10, 203.0.113.7").await, 429);
    s.app.shutdown().await;
}

/// Finding 8: receiver URLs with credentials and tokens reached the audit log and listings.
#[actix_rt::test]
async fn webhook_credentials_never_reach_the_audit_log_or_listings() {
    let s = Server::start(|s| s.webhooks.allow_private_targets = true).await;
    let url = "http://hook-user:hook-pass@127.0.0.1:9/in?token=tok-s3cr3t";
    let created = s
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let listed = s
        .call("GET", "/api/v1/webhooks", Some(Role::Admin), None)
        .await;
    let audit = s
        .call("GET", "/api/v1/admin/audit", Some(Role::Admin), None)
        .await;
    for text in [&listed.body, &audit.body] {
        assert!(
            !text.contains("hook-pass") && !text.contains("tok-s3cr3t"),
            "{text}"
        );
    }
    assert!(audit.body.contains("token=***"), "{}", audit.body);
    s.app.shutdown().await;
}

/// Finding 8: an unknown key id answered at once and a known one after Argon2.
#[actix_rt::test]
async fn an_unknown_key_id_costs_the_same_argon2_check_as_a_known_one() {
    let s = Server::start(|_| {}).await;
    let before = mismatches(&s).await;
    let known_id = s.key(Role::Analyst).info.id.clone();
    let unknown = format!("pulse_{}_{}", "0".repeat(known_id.len()), "ab".repeat(32));
    let wrong_secret = format!("pulse_{known_id}_{}", "cd".repeat(32));
    for key in [&unknown, &wrong_secret] {
        let res = raw_request(
            s.app.address(),
            "GET",
            "/api/v1/posts",
            &[("x-api-key", key)],
            None,
        )
        .await;
        assert_eq!(res.status, 401, "{key}");
    }
    assert_eq!(mismatches(&s).await - before, 2.0);
    s.app.shutdown().await;
}

async fn mismatches(s: &Server) -> f64 {
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("pulse_auth_key_verifications_total") && l.contains("mismatch"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Finding 8: an out-of-range time answered 500 and logged an error.
#[actix_rt::test]
async fn out_of_range_times_are_bad_requests() {
    let s = Server::start(|_| {}).await;
    for path in [
        "/api/v1/posts?from=-5000-01-01T00:00:00Z",
        "/api/v1/posts?to=%2B20000-01-01T00:00:00Z",
        "/api/v1/metrics/timeseries?from=0001-01-01T00:00:00Z",
        "/api/v1/admin/audit?since=-0001-01-01T00:00:00Z",
    ] {
        let res = s.call("GET", path, Some(Role::Admin), None).await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (400, "invalid_query"),
            "{path}: {}",
            res.body
        );
    }
    s.app.shutdown().await;
}

/// Finding 8: history tables grew without bound.
#[actix_rt::test]
async fn retention_bounds_every_history_table() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    pg.batch_execute(
        "INSERT INTO audit_log (at, actor, action, outcome) VALUES \
             (now() - interval '400 days', 'old', 'x', 'succeeded'), (now(), 'new', 'x', 'succeeded'); \
         INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence, status, resolved_at) VALUES \
             ('old', 'negativity', 'warning', 'overall', '', 1, 1, '{}', 'resolved', now() - interval '100 days'), \
             ('new', 'negativity', 'warning', 'overall', '', 1, 1, '{}', 'resolved', now()); \
         INSERT INTO virality_cascades (post_id, created_at, observed_at, last_activity_at, status, model_name, model_version, params_hash) VALUES \
             ('old', now(), now(), now() - interval '100 days', 'finished', 'm', '1', 'h'), \
             ('new', now(), now(), now(), 'finished', 'm', '1', 'h'); \
         INSERT INTO virality_predictions (post_id, recorded_at, observed_at, age_secs, shares, virality_score, \
             virality_probability, viral, predicted_final_shares, ci_lower, ci_upper, dynamics, \
             structural_virality, velocity, acceleration, params_hash) VALUES \
             ('old', now() - interval '100 days', now(), 1, 1, 1, 0.1, false, 1, 1, 1, 'broad', 0, 0, 0, 'h'), \
             ('new', now(), now(), 1, 1, 1, 0.1, false, 1, 1, 1, 'broad', 0, 0, 0, 'h');",
    )
    .await
    .unwrap();
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let policy = pulse::actors::retention::RetentionPolicy::of(&Settings::default().store);
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    for table in [
        "audit_log",
        "alerts",
        "virality_cascades",
        "virality_predictions",
    ] {
        let column = match table {
            "audit_log" => "actor",
            "alerts" => "rule_name",
            _ => "post_id",
        };
        let left: Vec<String> = pg
            .query(&format!("SELECT {column} FROM {table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(left, vec!["new".to_string()], "{table}");
    }
    app.shutdown().await;
}

/// Finding 8: analyst feedback could move the learned viral threshold without bound.
#[actix_rt::test]
async fn feedback_moves_the_viral_threshold_only_within_bounds() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    pg.batch_execute(
        "INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status, shares, \
             model_name, model_version, params_hash) \
         SELECT 'c' || g, 'twitter', now(), now(), 'finished', 10, 'm', '1', 'h' \
         FROM generate_series(1, 600) g; \
         INSERT INTO virality_feedback (post_id, final_shares) \
         SELECT 'c' || g, 1000000000 FROM generate_series(1, 60) g;",
    )
    .await
    .unwrap();
    let learned = pulse::db::virality::learned_thresholds(&pg, 0.99, 500)
        .await
        .unwrap();
    let bound =
        (10 * pulse::db::virality::FEEDBACK_FACTOR + pulse::db::virality::FEEDBACK_SLACK) as f64;
    assert!(learned["twitter"] <= bound, "{learned:?}");
    assert!(
        learned["twitter"] > 10.0,
        "feedback still counts: {learned:?}"
    );
    app.shutdown().await;
}

/// Finding 8: the compose demo published an open server on every interface, and the example
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
    let secret = std::fs::read_to_string(format!("{root}/deploy/secret.example.yaml")).unwrap();
    let example = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("jwt-secret:"))
        .unwrap()
        .trim()
        .trim_matches('"');
    assert!(pulse::auth::token::TokenCodec::new(example, "pulse", 60).is_err());
}
