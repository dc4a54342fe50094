//! The audit log: each admin change recorded with its actor and payload.

use super::*;

/// `POST path` of `body` with the access token `token`: the status and the answer.
async fn post_as(s: &Secure, token: &str, path: &str, body: Value) -> (u16, Value) {
    let (code, _, answer) = s.call("POST", path, Some(token), Some(&body)).await;
    (code, answer)
}

#[actix_rt::test]
async fn admin_changes_are_audited_with_actor_and_payload() {
    let s = Secure::start(|_| {}).await;
    let admin = s.token(Role::Admin).await;
    let analyst = s.token(Role::Analyst).await;

    let new_rule = json!({"name": "neg", "kind": "negativity", "threshold": 0.5,
        "dimension": "product", "key": "pulse-phone"});
    let (code, rule) = post_as(&s, &admin, "/api/v1/alert-rules", new_rule).await;
    assert_eq!(code, 201, "{rule}");
    let rule_path = format!("/api/v1/alert-rules/{}", rule["id"]);
    let (code, _, _) = s
        .call(
            "PATCH",
            &rule_path,
            Some(&admin),
            Some(&json!({"threshold": 0.6})),
        )
        .await;
    assert_eq!(code, 200);
    let hook = json!({"url": "http://127.0.0.1:9/hook", "secret": "super-secret-signing-key"});
    let (code, _) = post_as(&s, &admin, "/api/v1/webhooks", hook).await;
    assert_eq!(code, 201);
    let key_request = json!({"role": "ingest", "name": "producer"});
    let (code, created) = post_as(&s, &admin, "/api/v1/admin/keys", key_request).await;
    assert_eq!(code, 201);
    let new_key = created["key"].as_str().unwrap().to_string();
    let (code, _, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/admin/keys/{}", created["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(code, 204);
    let (code, _, _) = s.call("DELETE", &rule_path, Some(&admin), None).await;
    assert_eq!(code, 204);
    // An analyst's attempt is refused and recorded as denied.
    let refused_rule = json!({"name": "x", "kind": "negativity"});
    let (code, _) = post_as(&s, &analyst, "/api/v1/alert-rules", refused_rule).await;
    assert_eq!(code, 403);

    let (code, _, _) = s
        .call("GET", "/api/v1/admin/audit", Some(&analyst), None)
        .await;
    assert_eq!(code, 403, "only admins read the audit log");
    let (code, _, log) = s
        .call("GET", "/api/v1/admin/audit", Some(&admin), None)
        .await;
    assert_eq!(code, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = items
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rule.create", "denied"),
            ("rule.delete", "succeeded"),
            ("key.revoke", "succeeded"),
            ("key.create", "succeeded"),
            ("webhook.create", "succeeded"),
            ("rule.update", "succeeded"),
            ("rule.create", "succeeded"),
        ]
    );
    let admin_actor = format!("key:{}", s.key_id(Role::Admin));
    assert!(items[1..]
        .iter()
        .all(|r| r["actor"] == admin_actor.as_str()));
    assert_eq!(
        items[0]["actor"],
        format!("key:{}", s.key_id(Role::Analyst))
    );
    let created_rule = &items[6];
    assert_eq!(created_rule["target"], rule_path.as_str());
    assert_eq!(created_rule["payload"]["threshold"], 0.5);
    // Failed while every field named `key` was redacted: the rule's key read "[redacted]".
    assert_eq!(created_rule["payload"]["key"], "pulse-phone");
    assert_eq!(created_rule["status"], 201);
    assert!(created_rule["at"].is_string() && created_rule["ip"].is_string());
    // The id each response carried in `x-request-id`, whether or not the client sent one.
    assert!(
        items
            .iter()
            .all(|r| r["request_id"].as_str().is_some_and(|id| !id.is_empty())),
        "{log}"
    );
    let webhook = &items[4];
    assert_eq!(webhook["payload"]["secret"], "[redacted]");
    let everything = log.to_string();
    assert!(!everything.contains("super-secret-signing-key"));
    assert!(
        !everything.contains(&new_key),
        "a created key is never logged"
    );

    // Filters and paging.
    let (_, _, only) = s
        .call(
            "GET",
            "/api/v1/admin/audit?action=rule.create&limit=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    let before = only["next_before"].as_i64().unwrap();
    let (_, _, next) = s
        .call(
            "GET",
            &format!("/api/v1/admin/audit?action=rule.create&before={before}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["outcome"], "succeeded");

    // Bodies at the edges of what JSON can say are recorded and read back.
    let edgy =
        r#"{"name": "e\u0000dge", "kind": "negativity", "threshold": -1.7976931348623157e308}"#;
    let (code, body) = s.post_raw("/api/v1/alert-rules", &admin, edgy).await;
    assert!((200..500).contains(&code), "{code} {body}");
    let (code, _, log) = s
        .call("GET", "/api/v1/admin/audit?limit=1", Some(&admin), None)
        .await;
    assert_eq!(code, 200, "{log}");
    assert_eq!(log["items"][0]["action"], "rule.create");
}

/// Records that handlers write themselves (an export job made with a key, its file taken
/// through the link without one) name the request and the client as the gate's records do:
/// the id the response carried, not whatever the client put in `x-request-id`, and the
/// client's address, not its key or its network.
#[actix_rt::test]
async fn export_records_name_the_request_and_the_address_as_the_gates_do() {
    let s = Secure::start(|_| {}).await;
    let forged = "forged by the client, spaces and all";
    let send = |request: reqwest::RequestBuilder| async move {
        let res = request.header("x-request-id", forged).send().await.unwrap();
        let status = res.status().as_u16();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, id, body)
    };
    let create = s
        .app
        .http
        .post(s.url("/api/v1/exports?q=nothing"))
        .header("x-api-key", s.key(Role::Analyst));
    let (status, created_as, job) = send(create).await;
    assert_eq!(status, 202, "{job}");
    assert_ne!(created_as, forged, "a request id with spaces is replaced");

    let analyst = s.token(Role::Analyst).await;
    let path = format!("/api/v1/exports/{}", job["id"]);
    let done = wait_until(Duration::from_secs(120), || async {
        s.call("GET", &path, Some(&analyst), None).await.2["state"] == "done"
    })
    .await;
    assert!(done, "a job that matches nothing finishes");
    let (_, _, job) = s.call("GET", &path, Some(&analyst), None).await;
    let link = job["download_url"].as_str().unwrap().to_string();
    let (status, downloaded_as, _) = send(s.app.http.get(s.url(&link))).await;
    assert_eq!(status, 200);

    let admin = s.token(Role::Admin).await;
    for (action, request_id) in [
        ("search.export_job", created_as),
        ("search.export_download", downloaded_as),
    ] {
        let listing = format!("/api/v1/admin/audit?action={action}");
        let (code, _, log) = s.call("GET", &listing, Some(&admin), None).await;
        assert_eq!(code, 200, "{log}");
        let record = &log["items"][0];
        assert_eq!(
            record["request_id"],
            request_id.as_str(),
            "{action}: {record}"
        );
        assert_eq!(record["ip"], "127.0.0.1", "{action}: {record}");
        assert!(!log.to_string().contains(forged), "{action}: {log}");
    }
}

/// Every audited request kept its body, up to 16 KiB: an editor sending bodies the handler
/// refuses, a hundred a second, could add 140 GB a day to a log kept a year. A client's records
/// keep `limits.audit_payload_bytes_per_day` of bodies, then each body's size and SHA-256, and
/// another client's records keep theirs.
#[actix_rt::test]
async fn a_client_s_audit_records_keep_its_allowance_of_bodies_then_their_hashes() {
    use sha2::{Digest, Sha256};
    let s = Secure::start(|s| s.limits.audit_payload_bytes_per_day = 40_000).await;
    let editor = s.token(Role::Editor).await;
    let admin = s.token(Role::Admin).await;
    // Refused by the handler: the name is far over its 200 characters.
    let body = |n: usize| json!({"name": format!("{n}{}", "x".repeat(12_000)), "query": "phone"});
    for n in 0..5 {
        let (code, answer) = post_as(&s, &editor, "/api/v1/topics", body(n)).await;
        assert_eq!(code, 400, "{answer}");
    }
    let (code, answer) = post_as(&s, &admin, "/api/v1/topics", body(5)).await;
    assert_eq!(code, 400, "{answer}");

    let listing = "/api/v1/admin/audit?action=topic.create";
    let (code, _, log) = s.call("GET", listing, Some(&admin), None).await;
    assert_eq!(code, 200, "{log}");
    let mut records = log["items"].as_array().unwrap().clone();
    records.reverse();
    let kept: Vec<bool> = records
        .iter()
        .map(|r| r["payload"]["name"].is_string())
        .collect();
    // 12 kB each: three fit in the editor's 40 kB; the administrator's is its own.
    assert_eq!(kept, [true, true, true, false, false, true], "{log}");
    for (n, record) in records.iter().enumerate().filter(|(n, _)| !kept[*n]) {
        let sent = body(n).to_string();
        let payload = &record["payload"];
        assert_eq!(payload["bytes"], sent.len(), "{record}");
        let hash: String = Sha256::digest(sent.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(payload["sha256"], hash, "{record}");
        assert_eq!(record["outcome"], "failed", "{record}");
        assert_eq!(record["status"], 400, "{record}");
    }
}
