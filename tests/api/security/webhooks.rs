//! Webhook targets: none inside the network, no redirect followed, checked again on the
//! address actually connected to; and a receiver URL's credentials kept out of the audit log
//! and the listings.

use super::*;
use common::secured::SecuredServer as Server;

type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A local HTTP receiver answering every request with `status` and, when given, `Location`.
fn receiver(
    status: u16,
    location: Option<String>,
) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{HttpRequest, HttpResponse};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let (addr, handle) = http_standin::receiver(move |req: HttpRequest, body: String| {
        let (state, location) = (state.clone(), location.clone());
        async move {
            state
                .lock()
                .unwrap()
                .push(format!("{} {} {body}", req.method(), req.path()));
            let mut res =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(l) = location {
                res.insert_header(("location", l));
            }
            res.finish()
        }
    });
    (addr, seen, handle)
}

/// A delivery of a made-up alert to webhook `webhook_id`, due now.
async fn queue_delivery(pg: &tokio_postgres::Client, webhook_id: i64) -> i64 {
    let alert: i64 = pg
        .scalar(
            "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
             VALUES ('r', 'negativity', 'warning', 'overall', '', 0.9, 0.5, '{}') RETURNING id",
            &[],
        ).await;
    pg.scalar(
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) \
         VALUES ($1, $2, '{\"kind\":\"negativity\"}') RETURNING id",
        &[&webhook_id, &alert],
    )
    .await
}

/// The delivery's (attempts, last_status, last_error) once it was attempted.
async fn attempted(pg: &tokio_postgres::Client, id: i64) -> (i32, Option<i32>, Option<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = pg
            .query_one(
                "SELECT attempts, last_status, last_error FROM webhook_deliveries WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        let attempts: i32 = row.get(0);
        if attempts > 0 || std::time::Instant::now() > deadline {
            return (attempts, row.get(1), row.get(2));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Webhooks could target the inside of the network and follow redirects there.
#[actix_rt::test]
async fn webhooks_reach_no_internal_address_and_follow_no_redirect() {
    let (inside, inside_seen, inside_server) = receiver(200, None);
    // By default every internal target is refused when the subscription is made.
    let strict = Server::start(|s| s.webhooks.allow_private_targets = false).await;
    for url in [
        format!("http://127.0.0.1:{}/hook", inside.port()),
        format!("http://localhost:{}/hook", inside.port()),
        format!("http://[::1]:{}/hook", inside.port()),
        "http://10.0.0.8/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://2130706433/".to_string(),
        "http://0.0.0.0:6379/".to_string(),
    ] {
        let res = strict.create_webhook(&url).await;
        res.assert_error(400, "invalid_webhook", url);
    }
    // A subscription made while internal targets were allowed (or a name that resolved
    // elsewhere then) is refused at delivery, on the address actually connected to.
    let pg = strict.env.pg().await;
    let webhook: i64 = pg
        .scalar(
            "INSERT INTO webhooks (url, secret) VALUES ($1, 'sixteen-bytes-at-least') RETURNING id",
            &[&format!("http://localhost:{}/hook", inside.port())],
        )
        .await;
    let delivery = queue_delivery(&pg, webhook).await;
    let (_, status, error) = attempted(&pg, delivery).await;
    assert_eq!(
        (status, error.as_deref()),
        (None, Some("target not allowed"))
    );
    assert!(inside_seen.lock().unwrap().is_empty());
    strict.app.shutdown().await;

    // On-premises receivers: allowed when configured, but a redirect is never followed.
    let (redirecting, redirect_seen, redirect_server) = receiver(
        307,
        Some(format!("http://127.0.0.1:{}/stolen", inside.port())),
    );
    let open = Server::start(|s| s.webhooks.allow_private_targets = true).await;
    let created = open
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"url": format!("http://127.0.0.1:{}/hook", redirecting.port())})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pg = open.env.pg().await;
    let delivery = queue_delivery(&pg, created.json()["id"].as_i64().unwrap()).await;
    let (_, status, error) = attempted(&pg, delivery).await;
    assert_eq!(status, Some(307));
    assert!(error.unwrap().contains("not followed"));
    assert_eq!(redirect_seen.lock().unwrap().len(), 1);
    assert!(
        inside_seen.lock().unwrap().is_empty(),
        "the redirect was followed"
    );

    // Nothing listens here: the answer says so in generic words, naming no address or port.
    let closed = free_port();
    let created = open
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"url": format!("http://127.0.0.1:{closed}/x")})),
        )
        .await;
    let delivery = queue_delivery(&pg, created.json()["id"].as_i64().unwrap()).await;
    let (_, _, error) = attempted(&pg, delivery).await;
    assert_eq!(error.as_deref(), Some("could not connect"));
    open.app.shutdown().await;
    redirect_server.stop(false).await;
    inside_server.stop(false).await;
}

/// Receiver URLs with credentials and tokens reached the audit log and listings.
#[actix_rt::test]
async fn webhook_credentials_never_reach_the_audit_log_or_listings() {
    let s = Server::start(|s| s.webhooks.allow_private_targets = true).await;
    let url = "http://hook-user:hook-pass@127.0.0.1:9/in?token=tok-s3cr3t";
    let created = s.create_webhook(url).await;
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
