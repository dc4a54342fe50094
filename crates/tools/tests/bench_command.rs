//! The benchmark command as the docs give it: `pulse bench` with every default part (pipeline,
//! model, WebSocket, alerts) in one run, and nothing but the addresses of PostgreSQL and Redis
//! and the model's files in its environment (no authentication switch, no settings file), run
//! small, then every other part (`--only ...`) on its own, small too. The figures are not
//! judged here; that each command runs as written and reports what the docs say it reports,
//! is.

use std::path::PathBuf;
use std::process::Command;

/// The `pulse` binary beside this crate's `pulse-tools`, as a build of the workspace leaves
/// them; `pulse bench` runs the tools from there.
fn pulse() -> PathBuf {
    let pulse = PathBuf::from(env!("CARGO_BIN_EXE_pulse-tools")).with_file_name("pulse");
    assert!(
        pulse.is_file(),
        "{} is not built: run the workspace's tests (cargo test from the repository root)",
        pulse.display()
    );
    pulse
}

/// `pulse bench ARGS` with only the addresses of PostgreSQL and Redis and the model's files in
/// its environment; its report, once it succeeded.
fn bench_part(args: &[&str]) -> String {
    let out = Command::new(pulse())
        .arg("bench")
        .args(args)
        .env_clear()
        .envs(
            [
                "PATH",
                "HOME",
                "DATABASE_URL",
                "REDIS_URL",
                "ORT_DYLIB_PATH",
                "PULSE_MODEL_DIR",
            ]
            .iter()
            .filter_map(|name| Some((*name, std::env::var(name).ok()?))),
        )
        .output()
        .expect("pulse runs");
    assert!(
        out.status.success(),
        "pulse bench {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_documented_benchmark_command_runs_as_written() {
    let fast = std::env::var("PULSE_FAST_MODEL_DIR")
        .ok()
        .zip(std::env::var("PULSE_FULL_MODEL_DIR").ok());
    let out = Command::new(pulse())
        .args([
            "bench",
            "--events",
            "2000",
            "--latency-rate",
            "200",
            "--latency-secs",
            "2",
            "--model-events",
            "200",
            "--ws-subscribers",
            "4",
            "--ws-rate",
            "50",
            "--ws-secs",
            "2",
            "--ws-memory-subscribers",
            "10",
            "--ws-memory-rate",
            "20",
            "--alert-rate",
            "50",
            "--alert-trials",
            "1",
        ])
        .env_clear()
        .envs(
            ["PATH", "HOME", "ORT_DYLIB_PATH", "PULSE_MODEL_DIR"]
                .iter()
                .filter_map(|name| Some((*name, std::env::var(name).ok()?))),
        )
        // With both models built, the model part runs the default against the 6-layer reference.
        .envs(fast.iter().flat_map(|(fast, full)| {
            [
                ("PULSE_MODEL_DIR", fast.clone()),
                ("PULSE_FULL_MODEL_DIR", full.clone()),
            ]
        }))
        .env(
            "DATABASE_URL",
            std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        )
        .env(
            "REDIS_URL",
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )
        .output()
        .expect("pulse runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pulse bench failed:\n{stderr}");
    let mut rows = vec![
        "ceiling: raw XADD",
        "ceiling: raw XREADGROUP + XACK",
        "ceiling: PostgreSQL `COPY`",
        "Pulse's batch write alone",
        "% of `COPY`",
        "Pulse end to end",
        "latency at",
        "raw ONNX Runtime",
        "WebSocket",
        "alert",
        "| machine |",
    ];
    if fast.is_some() {
        rows.extend([
            "reference model (minilm-tweets@",
            "speed-up over the reference",
        ]);
    }
    for row in rows {
        assert!(
            stdout.contains(row),
            "no `{row}` row in the report:\n{stdout}"
        );
    }
}

/// `pulse bench --only topics`, run small: matching at every number of topics, the pipeline
/// with and without topics, and a re-tagging beside the pipeline, with their tables.
#[test]
fn the_topics_benchmark_runs_and_reports_each_of_its_parts() {
    let stdout = bench_part(&[
        "--only",
        "topics",
        "--events",
        "1000",
        "--topic-posts",
        "300",
        "--pipeline-topics",
        "50",
        "--pipeline-rounds",
        "1",
        "--retag-posts",
        "5000",
        "--retag-rounds",
        "1",
        "--retag-latency-secs",
        "1",
    ]);
    for row in [
        "| 10000 |",
        "| no topics |",
        "| 50 topics",
        "| re-tagging 5000 stored posts",
        "| p99 with / without",
    ] {
        assert!(
            stdout.contains(row),
            "no `{row}` row in the report:\n{stdout}"
        );
    }
}

/// `pulse bench --only search`, run small: a seeded store, every kind of query with and
/// without facets, an export in both formats beside PostgreSQL's `COPY` of the same rows, and
/// the export as a job, with their table.
#[test]
fn the_search_benchmark_runs_and_reports_each_of_its_parts() {
    let stdout = bench_part(&[
        "--only",
        "search",
        "--search-posts",
        "5000",
        "--search-distinct",
        "1000",
        "--search-queries",
        "3",
        "--search-export-rows",
        "1000",
    ]);
    for row in [
        "| a common word (3) |",
        "| a phrase (3) |",
        "| a Boolean query (3) |",
        "export of `platform:",
        "own `COPY` of the same rows",
        "baseline `ILIKE` scan",
        "as a job (CSV)",
    ] {
        assert!(stdout.contains(row), "no `{row}` in the report:\n{stdout}");
    }
}

/// `pulse bench --only websocket`, run small but with more subscribers in the memory run than
/// one client may hold by default (100): they all come from this machine, and the run once
/// stopped at "subscribers did not all connect" with its documented 1,000.
#[test]
fn the_websocket_benchmark_runs_with_more_subscribers_than_a_client_may_hold() {
    let stdout = bench_part(&[
        "--only",
        "websocket",
        "--ws-subscribers",
        "2",
        "--ws-rate",
        "20",
        "--ws-secs",
        "1",
        "--ws-memory-subscribers",
        "150",
        "--ws-memory-rate",
        "20",
    ]);
    for row in [
        "| WebSocket: XADD → `message:new`",
        "| WebSocket memory: 150 subscribers",
    ] {
        assert!(stdout.contains(row), "no `{row}` in the report:\n{stdout}");
    }
}

/// A folder under the build folder for a part's files (scale, soak and isolation write tables,
/// charts and JSON, by default into docs/bench).
fn scratch(part: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{part}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_str().unwrap().to_string()
}

/// Runs `pulse bench ARGS` and checks that its report holds each of `rows`.
fn assert_part_reports(args: &[&str], rows: &[&str]) {
    let stdout = bench_part(args);
    for row in rows {
        assert!(stdout.contains(row), "no `{row}` in the report:\n{stdout}");
    }
}

/// `pulse bench --only scale`, run small: the ceilings, then one and two processes.
#[test]
fn the_scale_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "scale",
            "--events",
            "1000",
            "--scale-rates",
            "100",
            "--scale-processes",
            "1,2",
            "--scale-secs",
            "2",
            "--scale-warmup-secs",
            "1",
            "--out-dir",
            &scratch("scale"),
        ],
        &[
            "| raw XADD (pipelined 500)",
            "| processes | offered posts/s",
        ],
    );
}

/// `pulse bench --only soak`, run small: the capacity burst, then a few samples. A soak of
/// seconds cannot judge drift, so its own checks are set wide: that it runs is what is tested.
#[test]
fn the_soak_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "soak",
            "--minutes",
            "0.1",
            "--soak-rate",
            "20",
            "--soak-capacity-posts",
            "200",
            "--soak-sample-secs",
            "2",
            "--soak-warmup-samples",
            "1",
            "--soak-latency-factor",
            "1000",
            "--soak-memory-tolerance-pct",
            "1000",
            "--out-dir",
            &scratch("soak"),
        ],
        &["Soak"],
    );
}

/// `pulse bench --only isolation`, run small: the pipeline alone and beside API clients.
#[test]
fn the_isolation_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "isolation",
            "--isolation-posts",
            "2000",
            "--isolation-rate",
            "100",
            "--isolation-secs",
            "2",
            "--isolation-clients",
            "2",
            "--isolation-rounds",
            "1",
            "--out-dir",
            &scratch("isolation"),
        ],
        &["### API isolation", "| with API load |"],
    );
}

/// `pulse bench --only sources`, run small: a Jetstream stand-in and `pulse import`.
#[test]
fn the_sources_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "sources",
            "--source-events",
            "500",
            "--import-lines",
            "1000",
        ],
        &[
            "| Jetstream source alone",
            "| `pulse import` of 1000 JSON lines",
        ],
    );
}

/// `pulse bench --only stories`, run small.
#[test]
fn the_stories_benchmark_runs_small() {
    assert_part_reports(
        &["--only", "stories", "--story-posts", "2000"],
        &["| stories | figure |", "| placing one post |"],
    );
}

/// `pulse bench --only refit`, run small.
#[test]
fn the_refit_benchmark_runs_small() {
    assert_part_reports(
        &["--only", "refit", "--refit-cascades", "200"],
        &[
            "| forecast refit | figure |",
            "| adopted |",
            "| viral thresholds learned for ",
        ],
    );
}

/// `pulse bench --only digests`, run small: the weekly digests beside the bare reads, and the
/// digest counts what the store holds (the part checks it).
#[test]
fn the_digests_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "digests",
            "--digest-posts",
            "3000",
            "--digest-runs",
            "2",
        ],
        &[
            "| weekly digest over 3000 posts (1000 in the topic",
            "| the topic's digest |",
            "| bare read of the nine weeks' overall rollups |",
        ],
    );
}

/// `pulse bench --only hostile`, run small: one attack between the two phases without one,
/// and the memory the server may grow to.
#[test]
fn the_hostile_benchmark_runs_small() {
    assert_part_reports(
        &[
            "--only",
            "hostile",
            "--hostile-rate",
            "20",
            "--hostile-secs",
            "2",
            "--hostile-attacks",
            "events-flood",
        ],
        &[
            "| events-flood |",
            "| none (again) |",
            "Full-load working set estimated",
        ],
    );
}
