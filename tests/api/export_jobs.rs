//! Export jobs on the real store: a job whose process is killed part way is finished by
//! another from its last committed chunk, with nothing twice and nothing missed; a download
//! leaves out posts deleted since; a job cancelled part way stops and leaves nothing; the
//! budgets per caller and in the group, the jobs a caller keeps and the link's token are
//! enforced; a caller with a key sees only its own jobs, and its links end with its line of
//! keys; 500 exports at once get clear answers; a streaming export the client drops gives its
//! place back; a key revoked while its export waits for its share of the database ends the
//! export before another page is read.

use crate::common;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::secured::SecuredServer;
use common::*;
use serde_json::Value;

use super::deletions::{deletion, post_at, xadd_all};

const WAIT: Duration = Duration::from_secs(120);

/// Stores `matching` posts that say "refund" and `others` that do not, one second apart.
async fn seed(app: &TestApp, matching: usize, others: usize) {
    let now = Utc::now();
    let posts: Vec<Value> = (0..matching + others)
        .map(|n| {
            let text = if n < matching {
                format!("refund {n}, \"late\"\nagain")
            } else {
                format!("other {n}")
            };
            post_at(&format!("x-{n}"), &text, now - TimeDelta::seconds(n as i64))
        })
        .collect();
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts((matching + others) as i64, WAIT).await);
}

/// A Pulse that only serves the API (`export.workers` 0): its jobs stay queued until another
/// process writes them.
async fn serving_only() -> TestApp {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.export.workers = 0;
    spawn_app_with(env, settings).await
}

/// A streamed export of "refund", read to its end (so one runs at a time); its status.
async fn streamed_export(app: &TestApp) -> u16 {
    let response = app
        .http
        .get(app.url("/api/v1/search/export?q=refund"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    status
}

async fn job(app: &TestApp, id: i64) -> Value {
    app.get_ok(&format!("/api/v1/exports/{id}")).await
}

/// Holds chunk `seq` of job `id` in an open transaction: a process writing the job blocks
/// there, its earlier chunks committed.
async fn hold_chunk(
    pg: &mut tokio_postgres::Client,
    id: i64,
    seq: i32,
) -> tokio_postgres::Transaction<'_> {
    let tx = pg.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO export_chunks (job_id, seq, data, ids, ends) VALUES ($1, $2, ''::bytea, '{}', '{}')",
        &[&id, &seq],
    )
    .await
    .unwrap();
    tx
}

/// Waits until a statement starting with `prefix` waits for a lock.
async fn waits_for_lock(app: &TestApp, prefix: &str) -> bool {
    let pg = app.env.pg().await;
    let database = app.env.database.clone();
    wait_until(WAIT, || {
        let pg = &pg;
        let database = database.clone();
        let pattern = format!("{prefix}%");
        async move {
            pg.scalar::<i64>(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE $2",
                &[&database, &pattern],
            )
            .await
                > 0
        }
    })
    .await
}

#[actix_rt::test]
async fn an_export_job_outlives_a_killed_process_and_leaves_out_deleted_posts() {
    let app = serving_only().await;
    seed(&app, 650, 100).await;

    let (status, created) = app.post_empty("/api/v1/exports?q=refund&format=csv").await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["state"], "queued");
    assert!(created["download_url"].is_null());
    let id = created["id"].as_i64().unwrap();

    let mut blocker = app.env.pg().await;
    // The header, then three chunks of 100 rows.
    let held = hold_chunk(&mut blocker, id, 4).await;
    let mut vars = app.env.env();
    vars.push(("PULSE_EXPORT__CHUNK_ROWS".into(), "100".into()));
    vars.push(("PULSE_EXPORT__LEASE_SECS".into(), "2".into()));
    let mut writer = PulseProcess::start(&vars);
    assert!(
        wait_until(WAIT, || async { job(&app, id).await["rows"] == 300 }).await,
        "the writer commits three chunks and blocks at the fourth"
    );
    let part_way = job(&app, id).await;
    assert_eq!(part_way["state"], "running");
    let progress = part_way["progress"].as_f64().unwrap();
    assert!(progress > 0.0 && progress < 1.0, "{part_way}");
    assert!(waits_for_lock(&app, "INSERT INTO export_chunks").await);
    writer.signal(libc::SIGKILL);
    assert_eq!(writer.wait(WAIT), None, "killed by the signal");
    held.rollback().await.unwrap();

    // Deleted after the job began: one already written, one not yet.
    let now = Utc::now();
    xadd_all(
        &app.redis().await,
        &app.env.stream,
        &[deletion("x-5", now), deletion("x-600", now)],
    )
    .await;
    assert!(
        wait_until(WAIT, || async {
            app.env
                .pg()
                .await
                .scalar::<i64>(
                    "SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL",
                    &[],
                )
                .await
                == 2
        })
        .await
    );

    let taker = app.spawn_replica().await;
    assert!(
        wait_until(WAIT, || async { job(&app, id).await["state"] == "done" }).await,
        "another process takes the job over once the lease runs out"
    );
    let done = job(&app, id).await;
    assert_eq!(done["progress"], 1.0);
    assert!(done["expires_at"].is_string());
    // 650 matches less the one deleted before it was written.
    assert_eq!(done["rows"], 649, "{done}");
    let url = done["download_url"].as_str().unwrap();
    let response = reqwest::get(app.url(url)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let header = pulse::http::api::search::export::CSV_COLUMNS.join(",");
    assert!(text.starts_with(&format!("{header}\r\n")));
    assert_eq!(
        text.matches(&header).count(),
        1,
        "one header, the taker's chunks after it"
    );
    // A row starts with its post's id; the texts' second lines start otherwise.
    let ids: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("x-"))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..650)
        .filter(|n| *n != 5 && *n != 600)
        .map(|n| format!("x-{n}"))
        .collect();
    assert_eq!(ids, expected, "every live match once, newest first");

    // The link is the job's own: another token, another id, or no token, finds nothing.
    let token = url.split("token=").nth(1).unwrap();
    let flipped = if token.starts_with('0') { "1" } else { "0" };
    for path in [
        &format!(
            "/api/v1/exports/{id}/download?token={flipped}{}",
            &token[1..]
        ),
        &format!("/api/v1/exports/{}/download?token={token}", id + 1),
        &format!("/api/v1/exports/{id}/download"),
        &format!("/api/v1/exports/{id}/download?token=zz"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    taker.shutdown().await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn export_jobs_are_budgeted_cancelled_part_way_and_leave_nothing() {
    let app = serving_only().await;
    seed(&app, 500, 10).await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    let listed = app.get_ok("/api/v1/exports").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    // A queued job's link does not serve it before it is done.
    let pg = app.env.pg().await;
    let token: String = pg
        .scalar("SELECT token FROM export_jobs WHERE id = $1", &[&ids[0]])
        .await;
    let (status, body) = app
        .get(&format!(
            "/api/v1/exports/{}/download?token={token}",
            ids[0]
        ))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("invalid_transition"))
    );

    for (query, code) in [
        ("q=(refund", "invalid_topic_query"),
        ("q=refund&format=xlsx", "invalid_query"),
        ("q=refund&cursor=abc", "invalid_query"),
    ] {
        let (status, body) = app.post_empty(&format!("/api/v1/exports?{query}")).await;
        assert_error(status, &body, 400, code, query);
    }
    for path in [
        "/api/v1/exports/abc",
        "/api/v1/exports/99999999999999999999",
    ] {
        let (status, _) = app.get(path).await;
        assert!(status == 400 || status == 404, "{path}: {status}");
    }

    // Cancel the second job part way: it stops and leaves no chunk.
    assert_eq!(
        app.delete(&format!("/api/v1/exports/{}", ids[0])).await,
        204
    );
    assert_eq!(app.get(&format!("/api/v1/exports/{}", ids[0])).await.0, 404);
    let id = ids[1];
    let mut blocker = app.env.pg().await;
    let held = hold_chunk(&mut blocker, id, 3).await;
    let mut writer_settings = app.env.settings();
    writer_settings.export.chunk_rows = 100;
    let writer = pulse::app::Application::build(writer_settings, Default::default())
        .await
        .unwrap();
    // A header chunk, then two of 100 rows.
    assert!(wait_until(WAIT, || async { job(&app, id).await["rows"] == 200 }).await);
    assert!(waits_for_lock(&app, "INSERT INTO export_chunks").await);
    let path = format!("/api/v1/exports/{id}");
    let cancel = app.delete(&path);
    let release = async {
        assert!(waits_for_lock(&app, "DELETE FROM export_jobs").await);
        held.rollback().await.unwrap();
    };
    let (status, ()) = futures::join!(cancel, release);
    assert_eq!(status, 204);
    let chunks = || async {
        pg.scalar::<i64>(
            "SELECT count(*) FROM export_chunks WHERE job_id = $1",
            &[&id],
        )
        .await
    };
    assert_eq!(chunks().await, 0);
    assert_eq!(app.get(&format!("/api/v1/exports/{id}")).await.0, 404);

    // The writer is free again: a new job is written whole, a CSV with its header.
    let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_eq!(status, 202, "{body}");
    let next = body["id"].as_i64().unwrap();
    assert!(wait_until(WAIT, || async { job(&app, next).await["state"] == "done" }).await);
    let url = job(&app, next).await["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let text = reqwest::get(app.url(&url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        pulse::http::api::search::export::CSV_COLUMNS.join(",")
    );
    assert_eq!(text.matches("refund ").count(), 500);
    assert_eq!(chunks().await, 0, "the cancelled job left nothing behind");
    writer.shutdown().await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn five_hundred_exports_at_once_get_clear_answers_and_a_dropped_one_gives_its_place_back() {
    // Jobs stay queued, so the budget per caller is what answers.
    let app = serving_only().await;
    seed(&app, 3_000, 0).await;

    let streams = (0..250).map(|_| streamed_export(&app));
    let jobs = (0..250).map(|_| async {
        app.http
            .post(app.url("/api/v1/exports?q=refund&format=jsonl"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let (streamed, queued) = futures::join!(
        futures::future::join_all(streams),
        futures::future::join_all(jobs)
    );
    for status in streamed.iter().chain(&queued) {
        assert!(
            [200, 202, 429, 503].contains(status),
            "every answer is a result or a clear refusal, not {status}"
        );
    }
    assert!(streamed.contains(&200));
    assert_eq!(
        queued.iter().filter(|s| **s == 202).count(),
        2,
        "two jobs per caller"
    );
    let (status, _) = app.get("/api/v1/search?q=refund&limit=5").await;
    assert_eq!(status, 200, "a search is answered after the storm");

    // A client that drops an export part way gives its place back.
    let mut response = app
        .http
        .get(app.url("/api/v1/search/export?q=refund&format=jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    assert!(
        wait_until(WAIT, || async { streamed_export(&app).await == 200 }).await,
        "the dropped export's place is given back"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_job_past_its_rows_fails_with_the_reason_and_a_caller_past_its_storage_is_refused() {
    let app = spawn_app_tuned(|s| {
        let export = &mut s.export;
        export.max_rows = 150;
        export.chunk_rows = 100;
        export.max_stored_mb_per_caller = 1;
    })
    .await;
    seed(&app, 300, 0).await;

    let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_i64().unwrap();
    assert!(wait_until(WAIT, || async { job(&app, id).await["state"] == "failed" }).await);
    let failed = job(&app, id).await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("export.max_rows"),
        "{failed}"
    );
    assert!(failed["download_url"].is_null());
    let pg = app.env.pg().await;
    let chunks: i64 = pg
        .scalar(
            "SELECT count(*) FROM export_chunks WHERE job_id = $1",
            &[&id],
        )
        .await;
    assert_eq!(chunks, 0, "a failed job keeps no file");

    // A caller whose finished exports hold its share of the store gets no new job.
    let (status, body) = app
        .post_empty("/api/v1/exports?q=%22refund%207%22&format=jsonl")
        .await;
    assert_eq!(status, 202, "{body}");
    let small = body["id"].as_i64().unwrap();
    assert!(wait_until(WAIT, || async { job(&app, small).await["state"] == "done" }).await);
    assert_eq!(job(&app, small).await["rows"], 1);
    pg.execute(
        "UPDATE export_jobs SET bytes = 2 * 1048576 WHERE id = $1",
        &[&small],
    )
    .await
    .unwrap();
    let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_error(status, &body, 409, "limit_reached", &body);
    assert_eq!(app.delete(&format!("/api/v1/exports/{small}")).await, 204);
    let (status, body) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_eq!(
        status, 202,
        "deleting a file frees the caller's share: {body}"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_caller_keeps_as_many_jobs_as_its_listing_shows_until_their_links_expire() {
    let app = serving_only().await;
    let create = || app.post_empty("/api/v1/exports?q=nomatch&format=jsonl");

    let (status, body) = create().await;
    assert_eq!(status, 202, "{body}");
    let queued = body["id"].as_i64().unwrap();
    // Jobs that matched nothing finish at once and stay until their links expire: 99 more,
    // as a caller repeating the request would leave them.
    let pg = app.env.pg().await;
    pg.execute(
        "INSERT INTO export_jobs \
           (owner, params, format, state, token, range_end, finished_at, expires_at) \
         SELECT owner, params, format, 'done', md5(n::text), range_end, now(), \
                now() + interval '1 hour' \
         FROM export_jobs, generate_series(1, 99) AS n WHERE id = $1",
        &[&queued],
    )
    .await
    .unwrap();
    let (status, body) = create().await;
    assert_error(status, &body, 409, "limit_reached", &body);
    let listed = app.get_ok("/api/v1/exports").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        100,
        "the listing shows every job kept"
    );

    // A link that has expired frees its place before the sweep removes its job.
    pg.execute(
        "UPDATE export_jobs SET expires_at = now() - interval '1 second' \
         WHERE id = (SELECT max(id) FROM export_jobs WHERE state = 'done')",
        &[],
    )
    .await
    .unwrap();
    let (status, body) = create().await;
    assert_eq!(status, 202, "an expired link's place is free: {body}");
    let (status, body) = create().await;
    assert_error(status, &body, 409, "limit_reached", &body);
    // So does a deleted job.
    assert_eq!(app.delete(&format!("/api/v1/exports/{queued}")).await, 204);
    let (status, body) = create().await;
    assert_eq!(status, 202, "a deleted job's place is free: {body}");
    app.shutdown().await;
}

#[actix_rt::test]
async fn each_caller_sees_only_its_own_jobs_and_the_group_has_a_budget_of_its_own() {
    let server = SecuredServer::start(|s| {
        s.export.workers = 0;
        s.export.max_jobs = 3;
    })
    .await;
    let (first, second) = (
        server.create_key(pulse::auth::Role::Analyst, "first").await,
        server
            .create_key(pulse::auth::Role::Analyst, "second")
            .await,
    );
    let call = |method: reqwest::Method, path: String, key: &str| {
        server.with_key(method, path, key.to_string())
    };
    let create = |key: &str| {
        call(
            reqwest::Method::POST,
            "/api/v1/exports?q=refund".into(),
            key,
        )
    };

    let (status, mine) = create(&first.key).await;
    assert_eq!(status, 202, "{mine}");
    let id = mine["id"].as_i64().unwrap();
    assert_eq!(create(&first.key).await.0, 202);
    // The group holds three at most: the second caller's first fits, its second does not.
    assert_eq!(create(&second.key).await.0, 202);
    let (status, body) = create(&second.key).await;
    assert_error(status, &body, 503, "busy", &body);

    let path = format!("/api/v1/exports/{id}");
    let (status, _) = call(reqwest::Method::GET, path.clone(), &second.key).await;
    assert_eq!(status, 404, "another caller's job is not there for it");
    let (status, _) = call(reqwest::Method::DELETE, path.clone(), &second.key).await;
    assert_eq!(status, 404);
    let (_, listed) = call(reqwest::Method::GET, "/api/v1/exports".into(), &second.key).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (_, listed) = call(reqwest::Method::GET, "/api/v1/exports".into(), &first.key).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let (status, _) = call(reqwest::Method::GET, path.clone(), &first.key).await;
    assert_eq!(status, 200);
    // A rotated key keeps its line's jobs (and their budget): they belong to the line.
    let admin = server.create_key(pulse::auth::Role::Admin, "admin").await;
    let rotate = format!("/api/v1/admin/keys/{}/rotate", first.info.id);
    let (status, rotated) = call(reqwest::Method::POST, rotate, &admin.key).await;
    assert_eq!(status, 201, "{rotated}");
    let first_rotated = rotated["key"].as_str().unwrap();
    let (_, listed) = call(
        reqwest::Method::GET,
        "/api/v1/exports".into(),
        first_rotated,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    let (status, _) = call(reqwest::Method::GET, path.clone(), first_rotated).await;
    assert_eq!(status, 200);
    // Without a key, nothing but a link's download.
    let (status, _) = server.get(&path).await;
    assert_eq!(status, 401);
    let (status, _) = call(reqwest::Method::DELETE, path, &first.key).await;
    assert_eq!(status, 204);
    let pg = server.env.pg().await;
    let audited: i64 = pg
        .scalar(
            "SELECT count(*) FROM audit_log WHERE action IN ('search.export_job', 'search.export_delete')",
            &[],
        ).await;
    assert_eq!(audited, 4, "three jobs made, one deleted");
}

/// A download link reaches no further than the keys that made it: once the last key of the
/// line whose job it is has been revoked, the link is the same 404 as a wrong token, while a
/// key rotated from the first keeps the line's links working.
#[actix_rt::test]
async fn a_revoked_line_of_keys_takes_its_download_links_with_it() {
    use pulse::auth::Role;
    let server = SecuredServer::start(|_| {}).await;
    seed(&server, 3, 0).await;
    let exporter = server.create_key(Role::Analyst, "exporter").await;
    let admin = server.key(Role::Admin).key.clone();
    let call = |method: reqwest::Method, path: String, key: &str| {
        server.with_key(method, path, key.to_string())
    };

    let (status, created) = call(
        reqwest::Method::POST,
        "/api/v1/exports?q=refund".into(),
        &exporter.key,
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let path = format!("/api/v1/exports/{}", created["id"]);
    let written = wait_until(WAIT, || async {
        call(reqwest::Method::GET, path.clone(), &exporter.key)
            .await
            .1["state"]
            == "done"
    })
    .await;
    assert!(written, "the job is written");
    let (_, done) = call(reqwest::Method::GET, path.clone(), &exporter.key).await;
    let link = done["download_url"].as_str().unwrap().to_string();
    // Without credentials, as whoever holds the link; read to its end.
    let download = || async {
        let response = reqwest::get(server.url(&link)).await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        (status, body)
    };
    // Waited for: a download answered a moment ago may hold the client's place a little
    // longer (429).
    let served = wait_until(WAIT, || async { download().await.0 == 200 }).await;
    assert!(served, "the link serves its file");

    // Rotated, and the first key revoked: the line goes on, and so does its link.
    let rotate = format!("/api/v1/admin/keys/{}/rotate", exporter.info.id);
    let (status, rotated) = call(reqwest::Method::POST, rotate, &admin).await;
    assert_eq!(status, 201, "{rotated}");
    let revoke = |id: String| {
        call(
            reqwest::Method::DELETE,
            format!("/api/v1/admin/keys/{id}"),
            &admin,
        )
    };
    assert_eq!(revoke(exporter.info.id.clone()).await.0, 204);
    let served = wait_until(WAIT, || async { download().await.0 == 200 }).await;
    assert!(served, "a rotated key keeps its line's links");

    // The line's last key revoked: the link is gone with it, and so is a download under way
    // (each chunk is read under the link's rule, not only the first).
    let pg = server.env.pg().await;
    let job_id = created["id"].as_i64().unwrap();
    let chunk = pulse::db::export_jobs::chunk(&pg, job_id, 0).await.unwrap();
    assert!(chunk.is_some(), "the line stands: its chunks are read");
    let successor = rotated["id"].as_str().unwrap().to_string();
    assert_eq!(revoke(successor).await.0, 204);
    let chunk = pulse::db::export_jobs::chunk(&pg, job_id, 0).await.unwrap();
    assert!(chunk.is_none(), "a revoked line's chunk is still read");
    let (status, body) = download().await;
    assert_eq!(
        status, 404,
        "a revoked line's link still serves its file: {body}"
    );
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["error"]["code"], "not_found");
    let downloads: i64 = pg
        .scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'search.export_download'",
            &[],
        )
        .await;
    assert_eq!(downloads, 2, "the refused download is not one");
    server.app.shutdown().await;
}

/// A streamed export whose caller is in debt for the database waits for its share. The wait
/// was inside the page's read, after the checks of the caller: a key revoked during it (up to
/// a minute at the defaults) still had its next page read and sent once the wait was over.
#[actix_rt::test]
async fn a_key_revoked_while_its_export_waits_for_its_share_reads_no_further_page() {
    use pulse::auth::Role;
    // One connection, a share of 5% of it and the least burst (1 s): a caller a second in
    // debt waits 20 s.
    let server = SecuredServer::start(|s| {
        database_share(s, 0.05, 1.0);
        address_budget(s, 1e6, 1e6);
        network_budget(s, 1e6, 1e6);
    })
    .await;
    seed(&server, 3, 0).await;
    let exporter = server.create_key(Role::Analyst, "exporter").await;
    let admin = server.key(Role::Admin).key.clone();
    let paced = || metric_at(server.address(), "pulse_search_exports_paced_total", "");
    let paced_before = paced().await;

    // The export's first read of the posts waits behind a lock for 2 s, charged to the
    // exporter: its first page finds it in debt.
    let mut pg = server.env.pg().await;
    let lock = pg.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let request = server
        .http
        .get(server.url("/api/v1/search/export?q=refund&format=jsonl"))
        .header("x-api-key", exporter.key.clone());
    let body = tokio::spawn(async move {
        // Whatever came before the body ended, cut or not.
        let Ok(mut response) = request.send().await else {
            return Vec::new();
        };
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
        }
        body
    });
    assert!(
        waits_for_lock(&server, "SELECT count(*)::int8 FROM (SELECT 1 FROM posts").await,
        "the export's first read waits for the lock"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    lock.commit().await.unwrap();

    // The first page waits for the exporter's share; revoked meanwhile.
    let waits = wait_until(WAIT, || async { paced().await > paced_before }).await;
    assert!(waits, "the export waits for its caller's share");
    let (status, revoked) = server
        .with_key(
            reqwest::Method::DELETE,
            format!("/api/v1/admin/keys/{}", exporter.info.id),
            admin,
        )
        .await;
    assert_eq!(status, 204, "{revoked}");

    let body = body.await.unwrap();
    assert!(
        body.is_empty(),
        "a page was read and sent for the revoked key: {}",
        String::from_utf8_lossy(&body)
    );
    server.app.shutdown().await;
}

/// A HEAD was answered by the GET handler: it took a place, was audited and counted as a
/// download, and its body, which the server leaves out of a HEAD's answer, was read to its end
/// all the same, a query a chunk, as fast as PostgreSQL answered (nothing reads a HEAD, so
/// nothing slowed it), and compressed for nothing. Sent to a process of its own, whose
/// `/metrics` nothing else moves.
#[actix_rt::test]
async fn a_head_answers_headers_and_reads_takes_and_records_nothing() {
    let app = spawn_app_tuned(|s| s.export.chunk_rows = 50).await;
    seed(&app, 300, 0).await;
    let (status, created) = app.post_empty("/api/v1/exports?q=refund").await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert!(wait_until(WAIT, || async { job(&app, id).await["state"] == "done" }).await);
    let link = job(&app, id).await["download_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut vars = app.env.env();
    vars.push(("PULSE_EXPORT__WORKERS".into(), "0".into()));
    let server = PulseProcess::start(&vars);
    let addr = server.address;
    let export = "/api/v1/search/export?q=refund";

    let pg = app.env.pg().await;
    let audited = || async {
        pg.scalar::<i64>(
            "SELECT count(*) FROM audit_log WHERE action IN ('search.export', 'search.export_download')",
            &[],
        )
        .await
    };
    let counted = || async {
        (
            metric_at(addr, "pulse_export_jobs_total", "downloaded").await,
            metric_at(addr, "pulse_search_exported_rows_total", "").await,
            metric_at(addr, "pulse_search_requests_total", "export").await,
        )
    };
    let audited_before = audited().await;
    let brotli = [("Accept-Encoding", "br")];
    for target in [link.as_str(), export] {
        let head = raw_request(addr, "HEAD", target, &brotli, None).await;
        assert_eq!(head.status, 200, "HEAD {target}: {head:?}");
        assert!(
            head.headers["content-type"].starts_with("text/csv"),
            "{head:?}"
        );
        assert!(head.body.is_empty(), "{head:?}");
    }
    assert_eq!(audited().await, audited_before, "a HEAD is no download");
    assert_eq!(
        counted().await,
        (0.0, 0.0, 0.0),
        "a HEAD reads and counts nothing"
    );

    // It held no place: the same client's GETs right after are served, whole.
    let header = pulse::http::api::search::export::CSV_COLUMNS.join(",");
    for target in [link.as_str(), export] {
        let get = raw_request(addr, "GET", target, &[], None).await;
        assert_eq!(get.status, 200, "GET {target}: {}", get.body);
        assert!(get.body.starts_with(&header), "GET {target}");
        assert_eq!(get.body.matches("refund ").count(), 300, "GET {target}");
    }
    assert_eq!(audited().await, audited_before + 2, "each GET is audited");
    let (downloaded, rows, exports) = counted().await;
    assert_eq!((downloaded, exports), (1.0, 1.0));
    assert_eq!(rows, 300.0, "the streamed export's rows");
    drop(server);
    app.shutdown().await;
}
