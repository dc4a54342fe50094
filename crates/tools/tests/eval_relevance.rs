//! `pulse eval relevance` as its contract reads: JSON lines in, a report per entity and, last,
//! `overall accuracy=A macro_f1=F kept_related=R removed_unrelated=U`. On two names whose
//! posts are mostly of one sense and partly of another, the labels asked for must teach the
//! model what the query and the majority label cannot; bad lines are refused, naming the line.

use std::path::PathBuf;
use std::process::Command;

fn pulse() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pulse-tools")).with_file_name("pulse")
}

/// Posts about `name` in the sense people mean (`related`) or another (`unrelated`), in words
/// varied enough that no one post is a copy of another.
fn posts(name: &str, related: &[&str], unrelated: &[&str], query: &str) -> Vec<String> {
    let fillers = [
        "today",
        "again",
        "finally",
        "honestly",
        "this week",
        "last night",
        "wow",
        "ok",
    ];
    let mut out = Vec::new();
    for i in 0..140 {
        // About 70% related.
        let is_related = i % 10 < 7;
        let words = if is_related { related } else { unrelated };
        let text = format!(
            "{} {name} {} {} {}",
            fillers[i % fillers.len()],
            words[i % words.len()],
            words[(i / 3 + 1) % words.len()],
            fillers[(i / 5) % fillers.len()]
        );
        out.push(
            serde_json::json!({
                "id": format!("{name}-{i}"), "text": text, "entity": name, "query": query,
                "label": if is_related { "related" } else { "unrelated" },
                "split": if i % 4 == 0 { "test" } else { "train" },
                "author": format!("user{}", i % 17),
            })
            .to_string(),
        );
    }
    out
}

fn run(data: &str, labels: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("pulse-relevance-{}-{labels}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("posts.jsonl");
    std::fs::write(&file, data).unwrap();
    let out = Command::new(pulse())
        .args(["eval", "relevance", "--data"])
        .arg(&file)
        .args(["--labels", labels])
        .output()
        .expect("pulse runs");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn figure(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in `{line}`"))
        .parse()
        .unwrap()
}

#[test]
fn labels_teach_what_the_query_and_the_majority_cannot() {
    let mut lines = posts(
        "jaguar",
        &[
            "engine",
            "dealer",
            "suv",
            "test drive",
            "recall",
            "horsepower",
            "lease",
            "brakes",
        ],
        &[
            "rainforest",
            "cub",
            "zoo",
            "wildlife",
            "predator",
            "river",
            "spots",
            "habitat",
        ],
        "jaguar",
    );
    lines.extend(posts(
        "apple",
        &[
            "iphone",
            "macbook",
            "ios update",
            "app store",
            "stock",
            "keynote",
            "airpods",
            "ipad",
        ],
        &[
            "pie", "orchard", "cider", "harvest", "juice", "tree", "crumble", "recipe",
        ],
        "apple OR iphone",
    ));
    let out = run(&(lines.join("\n") + "\n"), "30");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("overall accuracy="), "{stdout}");
    let accuracy = figure(last, "accuracy");
    for name in ["macro_f1", "kept_related", "removed_unrelated"] {
        assert!((0.0..=1.0).contains(&figure(last, name)), "{last}");
    }
    let baselines = stdout.lines().find(|l| l.starts_with("baselines")).unwrap();
    let majority = figure(baselines.split("; ").nth(1).unwrap(), "accuracy");
    let query = figure(baselines.split("; ").next().unwrap(), "accuracy");
    assert!(
        accuracy > majority + 0.1 && accuracy > query + 0.1,
        "{stdout}"
    );
    assert!(
        stdout.contains("jaguar: 105 train posts, 30 labelled, 35 test posts"),
        "{stdout}"
    );
}

#[test]
fn bad_lines_are_refused_naming_them() {
    let good = r#"{"id":"1","text":"jaguar engine","entity":"jaguar","query":"jaguar","label":"related","split":"test"}"#;
    for (bad, says) in [
        (
            r#"{"id":"2","text":"x","entity":"jaguar","query":"jaguar","label":"maybe"}"#,
            "label must be",
        ),
        (
            r#"{"id":"2","text":"x","entity":"jaguar","query":"jaguar AND","label":"related"}"#,
            "does not parse",
        ),
        (
            r#"{"id":"2","text":"x","entity":"jaguar","query":"jaguar","label":"related","split":"dev"}"#,
            "split must be",
        ),
        ("not json", "line 2"),
    ] {
        let out = run(&format!("{good}\n{bad}\n"), "50");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} was taken");
        assert!(
            stderr.contains(says) && stderr.contains("line 2"),
            "{bad}: {stderr}"
        );
    }
}
