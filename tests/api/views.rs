//! Saved views against a real Pulse with authentication on: a view is its owner's until
//! shared, then every reader lists and opens it and only its owner (or an administrator)
//! changes it; another's unshared view reads as absent; a rotated key keeps its views; bad
//! states and the per-caller cap are refused; a digest links only to a shared view, and
//! forgets one that is deleted.

use crate::common;

use common::*;
use pulse::auth::Role;
use serde_json::{json, Value};

const SECRET: &str = "0b9c7e3a5f5f0c9a1e7b3d42c8a6e1f09b7d3c5a2e8f41b6";

/// A caller: its key's id and a bearer token for it.
struct Caller {
    id: String,
    token: String,
}

async fn token(app: &TestApp, key: &str) -> String {
    let (status, body) = app
        .post("/api/v1/auth/token", &json!({ "api_key": key }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn caller(app: &TestApp, role: Role, name: &str) -> Caller {
    let key = app.create_key(role, name).await;
    Caller {
        token: token(app, &key.key).await,
        id: key.info.id,
    }
}

async fn call(
    app: &TestApp,
    who: &Caller,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    app.request(method.parse().unwrap(), path, body, Some(&who.token))
        .await
}

fn names(list: &Value) -> Vec<String> {
    strings(&list["items"], "name")
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[actix_rt::test]
async fn a_view_is_its_owners_until_shared_and_only_its_owner_changes_it() {
    let app = spawn_app_tuned(|s| authenticated(s, SECRET)).await;
    let alice = caller(&app, Role::Analyst, "alice").await;
    let bob = caller(&app, Role::Analyst, "bob").await;
    let admin = caller(&app, Role::Admin, "admin").await;

    let state = json!({"filters": {"platform": "reddit", "city": "Lyon"}, "window": "1h",
        "panels": ["overall", "trend", "stream"]});
    let (status, mine) = call(
        &app,
        &alice,
        "POST",
        "/api/v1/views",
        Some(&json!({"name": "Lyon on Reddit", "state": state})),
    )
    .await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["owner"], format!("key:{}", alice.id));
    assert_eq!(mine["shared"], false);
    assert_eq!(mine["editable"], true);
    assert_eq!(mine["state"], state);
    let id = mine["id"].as_i64().unwrap();
    let path = format!("/api/v1/views/{id}");

    // Unshared: absent to Bob, whatever he tries.
    let (_, bobs) = call(&app, &bob, "GET", "/api/v1/views", None).await;
    assert!(names(&bobs).is_empty(), "{bobs}");
    let renamed = json!({"name": "mine now", "state": {}, "shared": true});
    for (method, body) in [("GET", None), ("PUT", Some(&renamed)), ("DELETE", None)] {
        let (status, answer) = call(&app, &bob, method, &path, body).await;
        assert_eq!(status, 404, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    // An administrator sees every view.
    let (_, all) = call(&app, &admin, "GET", "/api/v1/views", None).await;
    assert_eq!(names(&all), ["Lyon on Reddit"]);

    // Shared: Bob lists and opens it, and cannot change or delete it.
    let shared = json!({"name": "Lyon on Reddit", "state": state, "shared": true});
    let (status, now) = call(&app, &alice, "PUT", &path, Some(&shared)).await;
    assert_eq!((status, &now["shared"]), (200, &json!(true)), "{now}");
    let (status, seen) = call(&app, &bob, "GET", &path, None).await;
    assert_eq!((status, &seen["state"]), (200, &state), "{seen}");
    assert_eq!(seen["editable"], false);
    for (method, body) in [("PUT", Some(&renamed)), ("DELETE", None)] {
        let (status, answer) = call(&app, &bob, method, &path, body).await;
        assert_eq!(status, 403, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    let (status, still) = call(&app, &alice, "GET", &path, None).await;
    assert_eq!((status, &still["name"]), (200, &json!("Lyon on Reddit")));

    // Bob's own private view is not Alice's to see.
    let (status, _) = call(
        &app,
        &bob,
        "POST",
        "/api/v1/views",
        Some(&json!({"name": "Bob's", "state": {"window": "24h"}})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, alices) = call(&app, &alice, "GET", "/api/v1/views", None).await;
    assert_eq!(names(&alices), ["Lyon on Reddit"]);

    // A rotated key keeps its views: they belong to the key's line.
    let rotate = format!("/api/v1/admin/keys/{}/rotate", alice.id);
    let (status, rotated) = call(&app, &admin, "POST", &rotate, None).await;
    assert_eq!(status, 201, "{rotated}");
    let alice2 = Caller {
        token: token(&app, rotated["key"].as_str().unwrap()).await,
        id: rotated["id"].as_str().unwrap().to_string(),
    };
    let (status, _) = call(&app, &alice2, "PUT", &path, Some(&shared)).await;
    assert_eq!(status, 200);

    // A revoked key has no successor: rotating it (or rescoping it) would bring its line's
    // views back under a new secret.
    let revoke = format!("/api/v1/admin/keys/{}", alice2.id);
    let (status, _) = call(&app, &admin, "DELETE", &revoke, None).await;
    assert_eq!(status, 204);
    for (method, path, body) in [
        ("POST", "rotate", None),
        ("PUT", "scope", Some(json!({"platforms": ["reddit"]}))),
    ] {
        let (status, answer) = call(
            &app,
            &admin,
            method,
            &format!("/api/v1/admin/keys/{}/{path}", alice2.id),
            body.as_ref(),
        )
        .await;
        assert_error(
            status,
            &answer,
            404,
            "not_found",
            format!("{path}: {answer}"),
        );
    }

    // What cannot be a dashboard state is refused, naming why.
    let refused = [
        (
            json!({"name": "x", "state": {"colour": "red"}}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "state": {"filters": {"platform": "myspace"}}}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "state": {"window": "3d"}}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "state": {}, "owner": "key:someone"}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "state": {"topic": 424242}}),
            "invalid_view",
        ),
        (
            json!({"name": "x", "state": {"window": "1h", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}),
            "invalid_view",
        ),
        (
            json!({"name": "x", "state": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}),
            "invalid_view",
        ),
        (
            json!({"name": "x", "state": {"panels": ["<script>"]}}),
            "invalid_view",
        ),
        (json!({"name": " ", "state": {}}), "invalid_view"),
        (json!({"name": "a\u{202e}b", "state": {}}), "invalid_view"),
    ];
    for (body, code) in refused {
        let (status, answer) = call(&app, &bob, "POST", "/api/v1/views", Some(&body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    // 41 panels are refused for their number, and past the 41st, elements are not even read
    // as panels: however long the list, the server builds no more than 41 of them.
    let panels: Vec<Value> = (0..41).map(|i| json!(format!("p{i}"))).collect();
    for listed in [json!(panels), past_its_bound(panels.clone(), 10_000)] {
        let body = json!({"name": "every panel", "state": {"panels": listed}});
        let (status, answer) = call(&app, &bob, "POST", "/api/v1/views", Some(&body)).await;
        assert_refused(status, &answer, "invalid_view", "at most 40 panels");
    }

    // One caller holds at most 200 views; the others are not held back by it.
    let pg = app.env.pg().await;
    pg.execute(
        "INSERT INTO saved_views (name, state, owner) SELECT 'bulk ' || g, '{}', $1 \
         FROM generate_series(1, 199) g",
        &[&format!("key:{}", bob.id)],
    )
    .await
    .unwrap();
    let one = json!({"name": "one more", "state": {}});
    let (status, full) = call(&app, &bob, "POST", "/api/v1/views", Some(&one)).await;
    assert_eq!(
        (status, &full["error"]["code"]),
        (409, &json!("limit_reached")),
        "{full}"
    );
    let (status, _) = call(&app, &alice, "POST", "/api/v1/views", Some(&one)).await;
    assert_eq!(status, 201);

    // Deleted by its owner: gone for everyone.
    let (status, _) = call(&app, &alice, "DELETE", &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &bob, "GET", &path, None).await;
    assert_eq!(status, 404);
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_digest_links_to_a_shared_view_and_forgets_a_deleted_one() {
    let app = spawn_app().await;
    let (addr, _seen, handle) =
        crate::alerts::channels::stand_in(crate::alerts::channels::slack_shape, 0);
    let slack = app
        .create_channel(&json!({"kind": "slack", "url": format!("http://{addr}/services/x")}))
        .await;
    let (status, private) = app
        .post(
            "/api/v1/views",
            &json!({"name": "private", "state": {"window": "24h"}}),
        )
        .await;
    assert_eq!(status, 201, "{private}");
    let (status, shared) = app
        .post(
            "/api/v1/views",
            &json!({"name": "for the board", "state": {"window": "24h", "panels": ["overall"]}, "shared": true}),
        )
        .await;
    assert_eq!(status, 201, "{shared}");
    let schedule = |view: &Value| {
        json!({"name": "Daily", "scope": "all", "cadence": "daily", "at": "08:00",
            "timezone": "UTC", "channels": [slack["id"]], "view": view["id"]})
    };
    let (status, refused) = app
        .post("/api/v1/digests/schedules", &schedule(&private))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_error_says(&refused, "invalid_digest", "not shared");
    let (status, made) = app
        .post(
            "/api/v1/digests/schedules",
            &schedule(&json!({"id": 424242})),
        )
        .await;
    assert_eq!(status, 400, "{made}");
    let (status, made) = app
        .post("/api/v1/digests/schedules", &schedule(&shared))
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["view"], shared["id"]);
    let id = made["id"].as_i64().unwrap();

    // The digest's link opens the view with the digest's period.
    let (status, sent) = app
        .post_empty(&format!("/api/v1/digests/schedules/{id}/send"))
        .await;
    assert_eq!(status, 202, "{sent}");
    let link: String = app
        .env
        .scalar(
            "SELECT content->>'link' FROM digests WHERE schedule_id = $1",
            &[&id],
        )
        .await;
    assert!(
        link.contains(&format!("saved_view={}", shared["id"])),
        "{link}"
    );
    assert!(link.contains("since=") && link.contains("until="), "{link}");

    // PATCH points it elsewhere or nowhere; a private view is refused there too.
    let path = format!("/api/v1/digests/schedules/{id}");
    let (status, answer) = app.patch(&path, &json!({"view": private["id"]})).await;
    assert_eq!(status, 400, "{answer}");
    let (status, cleared) = app.patch(&path, &json!({"view": null})).await;
    assert_eq!((status, &cleared["view"]), (200, &Value::Null), "{cleared}");
    assert_eq!(cleared["enabled"], true);
    let (status, back) = app.patch(&path, &json!({"view": shared["id"]})).await;
    assert_eq!((status, &back["view"]), (200, &shared["id"]), "{back}");

    // A deleted view: the schedule stays and links to its scope and period alone.
    assert_eq!(
        app.delete(&format!("/api/v1/views/{}", shared["id"])).await,
        204
    );
    let kept = app.get_ok(&path).await;
    assert_eq!(kept["view"], Value::Null, "{kept}");
    handle.stop(true).await;
    app.shutdown().await;
}
