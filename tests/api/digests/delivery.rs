//! Digests delivered: scheduled periods made once across processes (late ones say so, one
//! whose sender is killed mid-send arrives once), none of those a paused schedule was paused
//! through, the e-mail as Chromium renders it, and one digest on request a minute a channel.

use super::*;

/// Schedules looked at every second, and their deliveries polled for and retried every 50 ms.
fn quick_digests(s: &mut pulse::config::Settings) {
    s.digests.poll_secs = 1;
    quick_webhooks(s);
}

#[actix_rt::test]
async fn scheduled_periods_are_made_once_across_processes_and_late_ones_say_so() {
    let app = spawn_app_tuned(quick_digests).await;
    let replicas = [
        app.spawn_replica_with(|s| s.digests.poll_secs = 1).await,
        app.spawn_replica_with(|s| s.digests.poll_secs = 1).await,
    ];
    let now = Utc::now();
    let redis = app.redis().await;
    let events: Vec<Value> = (0..30)
        .map(|i| post(&format!("sc-{i}"), i * 90, i % 3 == 0, i % 2 == 0, now))
        .collect();
    xadd_all(&redis, &app.env.stream, &events).await;
    assert!(settled(&app, 30).await);

    let (slack_addr, slack, slack_handle) = stand_in(slack_shape, 1);
    let (hook_addr, hook, hook_handle) = stand_in(|_| Ok(()), 0);
    let (teams_addr, teams, teams_handle) = stand_in(teams_shape, 0);
    let slack_id = app
        .create_channel(&json!({"kind": "slack", "url": format!("http://{slack_addr}/services/x")}))
        .await["id"]
        .as_i64()
        .unwrap();
    let hook_id = app
        .create_channel(&json!({"kind": "webhook", "url": format!("http://{hook_addr}/digests")}))
        .await["id"]
        .as_i64()
        .unwrap();
    let teams_id = app
        .create_channel(
            &json!({"kind": "teams", "url": format!("http://{teams_addr}/webhookb2/x")}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Daily at the minute before this one, UTC: the period that ended then is on time; the
    // schedule is dated back two days and an hour, so the two before it were missed (late).
    let at = (now - TimeDelta::minutes(1)).format("%H:%M").to_string();
    let (status, schedule) = app
        .post(
            "/api/v1/digests/schedules",
            &json!({"name": "Daily", "scope": "all", "cadence": "daily", "at": at,
                    "timezone": "UTC", "channels": [slack_id, hook_id, teams_id]}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_i64().unwrap();
    app.env
        .pg()
        .await
        .execute(
            "UPDATE digest_schedules SET created_at = now() - interval '2 days 1 hour' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();

    let delivered = |seen: &crate::alerts::channels::Seen| seen.lock().unwrap().len();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            // Slack fails its first request, so it sees one more.
            delivered(&slack) >= 4 && delivered(&hook) >= 3 && delivered(&teams) >= 3
        })
        .await,
        "three periods reach each channel (slack {}, webhook {})",
        delivered(&slack),
        delivered(&hook)
    );
    // More rounds of three processes make nothing more.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let hooks = bodies(&hook);
    let slacks = bodies(&slack);
    assert_eq!(hooks.len(), 3, "{hooks:#?}");
    assert_eq!(slacks.len(), 4);
    assert_eq!(
        bodies(&teams).len(),
        3,
        "Teams cards of the documented shape"
    );
    let mut ends: Vec<String> = hooks
        .iter()
        .map(|b| b["to"].as_str().unwrap().to_string())
        .collect();
    ends.sort();
    ends.dedup();
    assert_eq!(ends.len(), 3, "three different periods: {ends:?}");
    let late = hooks.iter().filter(|b| b["late"] == true).count();
    assert_eq!(late, 2, "the two missed periods are late: {hooks:#?}");
    let late_slack = slacks
        .iter()
        .filter(|b| b["text"].as_str().unwrap_or("").contains("(late)"))
        .count();
    assert!(late_slack >= 2, "Slack says late: {slacks:#?}");
    let view = app.get_ok(&format!("/api/v1/digests/schedules/{id}")).await;
    let digests = view["digests"].as_array().unwrap();
    assert_eq!(digests.len(), 3);
    for d in digests {
        assert_eq!(d["deliveries"]["delivered"], 3, "{d}");
    }
    // Send now: a digest of the last day, besides the scheduled ones.
    let (status, sent) = app
        .post_empty(&format!("/api/v1/digests/schedules/{id}/send"))
        .await;
    assert_eq!(status, 202, "{sent}");
    assert!(
        wait_until(Duration::from_secs(30), || async { delivered(&hook) >= 4 }).await,
        "sent now"
    );
    // Asked again at once: refused, so a repeated request cannot flood the channels.
    let (status, again) = app
        .post_empty(&format!("/api/v1/digests/schedules/{id}/send"))
        .await;
    assert_eq!(status, 429, "{again}");
    assert_eq!(again["error"]["details"]["scope"], "send_now", "{again}");
    let manual: i64 = app
        .env
        .pg()
        .await
        .scalar(
            "SELECT count(*) FROM digests WHERE schedule_id = $1 AND manual",
            &[&id],
        )
        .await;
    assert_eq!(manual, 1);
    for r in replicas {
        r.shutdown().await;
    }
    slack_handle.stop(true).await;
    hook_handle.stop(true).await;
    teams_handle.stop(true).await;
    app.shutdown().await;
}

/// Resuming a paused schedule made the periods that ended while it was paused, up to
/// `digests.catch_up` of them, and sent each to every channel as late, saying Pulse was not
/// running.
#[actix_rt::test]
async fn a_resumed_schedule_sends_nothing_of_the_periods_it_was_paused_through() {
    let app = spawn_app_tuned(quick_digests).await;
    let pg = app.env.pg().await;
    let (hook_addr, hook, hook_handle) = stand_in(|_| Ok(()), 0);
    let hook_id = app
        .create_channel(&json!({"kind": "webhook", "url": format!("http://{hook_addr}/digests")}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Daily at the minute before this one, UTC, made three days ago and paused since: four of
    // its periods ended while it was paused.
    let now = Utc::now();
    let at = (now - TimeDelta::minutes(1)).format("%H:%M").to_string();
    let id: i64 = pg
        .scalar(
            "INSERT INTO digest_schedules (name, cadence, at, timezone, channels, enabled, \
             created_at) VALUES ('paused', 'daily', $1::text::time, 'UTC', ARRAY[$2::int8], \
             false, now() - interval '3 days 1 hour') RETURNING id",
            &[&at, &hook_id],
        )
        .await;
    let (status, resumed) = app
        .patch(
            &format!("/api/v1/digests/schedules/{id}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(
        (status, &resumed["enabled"]),
        (200, &json!(true)),
        "{resumed}"
    );
    let made = || {
        let pg = &pg;
        async move {
            pg.scalar::<i64>(
                "SELECT count(*) FROM digests WHERE schedule_id = $1",
                &[&id],
            )
            .await
        }
    };
    // Rounds of the runner after the resumption make nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(made().await, 0);
    assert!(bodies(&hook).is_empty(), "{:#?}", bodies(&hook));

    // Its next period ends after the resumption: made, on time, and sent.
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    pulse::http::api::digests::runner::round(&app.env.settings(), &pool, now + TimeDelta::days(1))
        .await
        .unwrap();
    assert_eq!(made().await, 1);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            !bodies(&hook).is_empty()
        })
        .await,
        "the next period is sent"
    );
    let sent = bodies(&hook);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["late"], false, "{sent:#?}");
    let to: DateTime<Utc> = serde_json::from_value(sent[0]["to"].clone()).unwrap();
    assert!(to > now, "{sent:#?}");
    hook_handle.stop(true).await;
    app.shutdown().await;
}

/// The e-mail's HTML part, with its chart where the message's `cid:` points, opened in
/// Chromium: the page shows the figures and the chart (its blue volume line) is drawn.
#[actix_rt::test]
async fn the_digest_email_renders_in_chromium_with_its_chart() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let now = Utc::now();
    let events: Vec<Value> = (0..40)
        .map(|i| post(&format!("cr-{i}"), i * 4, i % 2 == 0, true, now))
        .collect();
    xadd_all(&app.redis().await, &app.env.stream, &events).await;
    assert!(settled(&app, 40).await);
    let (status, digest) = app
        .post(
            "/api/v1/digests/preview",
            &json!({"scope": "all", "from": now - TimeDelta::hours(3), "to": now}),
        )
        .await;
    assert_eq!(status, 200, "{digest}");
    let dir = std::env::temp_dir().join(unique("pulse-digest-html"));
    std::fs::create_dir_all(&dir).unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(digest["rendered"]["chart_png"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("chart.png"), png).unwrap();
    let html = digest["rendered"]["html"]
        .as_str()
        .unwrap()
        .replace("cid:digest-chart", "chart.png");
    std::fs::write(dir.join("digest.html"), &html).unwrap();
    let shot = dir.join("shot.png");
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=800,1400",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("digest.html").display()))
        .output()
        .expect("run chromium (apt-get install chromium)");
    assert!(shot.is_file(), "no screenshot: {out:?}");
    let decoder = png::Decoder::new(std::io::Cursor::new(std::fs::read(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let blue = pixels
        .chunks(channels)
        .filter(|p| {
            (p[0] as i32 - 59).abs() < 12
                && (p[1] as i32 - 130).abs() < 12
                && (p[2] as i32 - 246).abs() < 12
        })
        .count();
    assert!(
        blue > 200,
        "the chart is drawn in the page ({blue} blue pixels)"
    );
    // And the page says the figures: some text is dark on white.
    let dark = pixels
        .chunks(channels)
        .filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(dark > 2_000, "the text is drawn ({dark} dark pixels)");
    app.shutdown().await;
}

/// One request a [`Holding`] receiver got.
#[derive(Debug, Clone)]
struct Arrival {
    path: String,
    body: Value,
    /// The sender's port: which process sent it.
    from_port: u16,
    /// Whether it was answered 200 at once (not held while its sender was killed).
    answered: bool,
}

/// A receiver that holds every request while `holding` (its sender gets no answer) and answers
/// the others 200 at once.
struct Holding {
    addr: std::net::SocketAddr,
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<Arrival>>>,
    holding: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Holding {
    fn start() -> Holding {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Arrival>::new()));
        let holding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (seen, hold) = (arrivals.clone(), holding.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (seen, hold) = (seen.clone(), hold.clone());
                std::thread::spawn(move || {
                    let from_port = stream.peer_addr().unwrap().port();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let held = hold.load(Ordering::SeqCst);
                    seen.lock().unwrap().push(Arrival {
                        path,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        from_port,
                        answered: !held,
                    });
                    while held && hold.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                });
            }
        });
        Holding {
            addr,
            arrivals,
            holding,
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    fn answer_from_now_on(&self) {
        self.holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The process (among `pids`) holding the loopback connection that comes from `port`, read
/// from /proc: the socket's inode in /proc/net/tcp, then the process whose descriptors hold it.
fn process_of_port(port: u16, pids: &[u32]) -> Option<u32> {
    // An earlier connection from the same port may linger in TIME_WAIT, owned by no process
    // (inode 0): every socket on the port is a candidate, and the live one has an owner.
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let targets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let p = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode = f.get(9)?;
            (p == port && *inode != "0").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.flatten().any(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| targets.iter().any(|t| l.to_string_lossy() == *t))
                })
            })
            .unwrap_or(false)
    })
}

/// Three `pulse serve` processes in one group come back after two hours down: the period that
/// ended while they were down is made once, marked late, and sent to each channel; the process
/// sending it is killed in the middle of the send (its receiver holding the answer), and
/// another sends it once its lease runs out. Each channel accepts it exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_period_missed_while_down_arrives_once_late_though_its_sender_is_killed_mid_send() {
    let env = TestEnv::new().await;
    let mut vars = env.env();
    vars.extend([
        ("PULSE_DIGESTS__POLL_SECS".to_string(), "1".to_string()),
        ("PULSE_WEBHOOKS__POLL_MS".into(), "200".into()),
        // A lease of 3 × 5 + 10 = 25 s; the sender is killed well within its 5 s timeout.
        ("PULSE_WEBHOOKS__TIMEOUT_SECS".into(), "5".into()),
        ("PULSE_EMAIL__TIMEOUT_SECS".into(), "5".into()),
    ]);
    let receiver = Holding::start();
    // The channels are made by a first process, which then stops: nothing runs for two hours.
    let mut first = PulseProcess::start(&vars);
    let http = reqwest::Client::new();
    let mut channels = Vec::new();
    // Paths of this test's own: a sender of another test, retrying to a port the receiver now
    // holds, would come in on its own path.
    const PATHS: [&str; 2] = ["/missed-digest/hook", "/services/missed-digest"];
    let ours = |arrivals: Vec<Arrival>| -> Vec<Arrival> {
        arrivals
            .into_iter()
            .filter(|a| PATHS.contains(&a.path.as_str()))
            .collect()
    };
    for (kind, path) in [("webhook", PATHS[0]), ("slack", PATHS[1])] {
        let made: Value = http
            .post(format!("http://{}/api/v1/webhooks", first.address))
            .json(&json!({"kind": kind, "url": format!("http://{}{path}", receiver.addr)}))
            .fetch_json()
            .await;
        channels.push(made["id"].as_i64().expect("a channel"));
    }
    first.signal(libc::SIGTERM);
    first.wait(Duration::from_secs(30));
    // A daily schedule made three hours ago whose period ended two hours ago.
    let pg = env.pg().await;
    let ended: DateTime<Utc> = pg
        .scalar(
            "SELECT date_trunc('minute', now()) - interval '2 hours'",
            &[],
        )
        .await;
    let at = ended.format("%H:%M").to_string();
    let schedule: i64 = pg
        .scalar(
            "INSERT INTO digest_schedules (name, cadence, at, timezone, channels, created_at) \
             VALUES ('while down', 'daily', $1::text::time, 'UTC', $2, now() - interval '3 hours') \
             RETURNING id",
            &[&at, &channels],
        )
        .await;

    let mut processes: Vec<PulseProcess> = (0..3).map(|_| PulseProcess::start(&vars)).collect();
    let pids: Vec<u32> = processes.iter().map(|p| p.child.id()).collect();
    // Both channels' deliveries reach the receiver, which holds them.
    let held = wait_until(Duration::from_secs(60), || async {
        ours(receiver.arrivals()).len() >= channels.len()
    })
    .await;
    assert!(held, "the receiver got {:?}", receiver.arrivals());
    let senders: std::collections::BTreeSet<u32> = ours(receiver.arrivals())
        .iter()
        .map(|a| process_of_port(a.from_port, &pids).expect("the sending process is one of ours"))
        .collect();
    assert!(senders.len() < processes.len(), "every process was sending");
    for p in processes
        .iter_mut()
        .filter(|p| senders.contains(&p.child.id()))
    {
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }
    receiver.answer_from_now_on();

    // Another process sends each once the lease of the dead one runs out (25 s).
    let delivered = wait_until(Duration::from_secs(90), || async {
        let n: i64 = pg
            .scalar(
                "SELECT count(*) FROM webhook_deliveries d JOIN digests g ON g.id = d.digest_id \
                 WHERE g.schedule_id = $1 AND d.status = 'delivered'",
                &[&schedule],
            )
            .await;
        n == channels.len() as i64
    })
    .await;
    assert!(delivered, "the receiver got {:?}", receiver.arrivals());
    // Rounds of the survivors (every second) make and send nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let digests = pg
        .query(
            "SELECT period_to, late FROM digests WHERE schedule_id = $1 AND NOT manual",
            &[&schedule],
        )
        .await
        .unwrap();
    assert_eq!(digests.len(), 1, "one digest for the missed period");
    let (period_to, late): (DateTime<Utc>, bool) = (digests[0].get(0), digests[0].get(1));
    assert_eq!(period_to, ended);
    assert!(late, "a period made two hours after its end is late");
    let arrivals = receiver.arrivals();
    for path in PATHS {
        let accepted: Vec<&Arrival> = arrivals
            .iter()
            .filter(|a| a.path == path && a.answered)
            .collect();
        assert_eq!(accepted.len(), 1, "{path}: {arrivals:?}");
        let unanswered = arrivals
            .iter()
            .filter(|a| a.path == path && !a.answered)
            .count();
        assert!(unanswered <= 1, "{path}: {arrivals:?}");
    }
    let hook = arrivals
        .iter()
        .find(|a| a.path == PATHS[0] && a.answered)
        .unwrap();
    assert_eq!(hook.body["late"], true, "{}", hook.body);
    assert_eq!(
        hook.body["to"],
        json!(ended.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let slack = arrivals
        .iter()
        .find(|a| a.path == PATHS[1] && a.answered)
        .unwrap();
    assert!(
        slack.body["text"]
            .as_str()
            .unwrap_or_default()
            .contains("late"),
        "{}",
        slack.body
    );
    println!(
        "killed {} sending process(es) of 3 holding {} deliveries; accepted once each: {}",
        senders.len(),
        arrivals.iter().filter(|a| !a.answered).count(),
        arrivals.iter().filter(|a| a.answered).count()
    );
    drop(processes);
}

/// A digest sent on request was throttled per schedule alone: an editor who made a schedule
/// naming a channel, sent it and deleted it, again and again (or made fifty schedules), reached
/// the channel as often. One a minute now reaches a channel, whichever schedule sends it, and a
/// schedule whose channels are free is not held by another's.
#[actix_rt::test]
async fn a_channel_gets_one_digest_on_request_a_minute_whichever_schedule_sends_it() {
    use pulse::db::digests::claim_send_on_request;
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(
        "INSERT INTO webhooks (url, secret) SELECT 'http://192.0.2.1/' || i, 's' \
         FROM generate_series(1, 3) AS i; \
         INSERT INTO digest_schedules (name, cadence, at, timezone, channels) VALUES \
         ('a', 'daily', '08:00', 'UTC', '{1}'), ('b', 'daily', '08:00', 'UTC', '{2,1}'), \
         ('c', 'daily', '08:00', 'UTC', '{2,3}'), ('d', 'daily', '08:00', 'UTC', '{3}');",
    )
    .await
    .unwrap();
    let claim = |schedule: i64| {
        let pg = &pg;
        async move { claim_send_on_request(pg, schedule, 60.0).await.unwrap() }
    };
    assert_eq!(claim(1).await, Ok(()));
    let held = claim(2)
        .await
        .expect_err("channel 1 was sent a digest just now");
    assert!(held > 55.0 && held <= 60.0, "{held}");
    assert_eq!(claim(3).await, Ok(()), "channels 2 and 3 were free");
    assert!(claim(4).await.is_err(), "channel 3 was just sent one");
    // A schedule made anew for a channel is held as the channel is.
    pg.batch_execute(
        "DELETE FROM digest_schedules WHERE id = 1; \
         INSERT INTO digest_schedules (name, cadence, at, timezone, channels) \
         VALUES ('a again', 'daily', '08:00', 'UTC', '{1}');",
    )
    .await
    .unwrap();
    assert!(claim(5).await.is_err());
    // A minute on, the channel takes one again.
    pg.batch_execute(
        "UPDATE webhooks SET digest_sent_on_request_at = now() - interval '61 seconds' \
         WHERE id = 1",
    )
    .await
    .unwrap();
    assert_eq!(claim(5).await, Ok(()));
}
