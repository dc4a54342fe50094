//! `pulse import` from files as producers write them: refused lines counted and quoted with
//! the line they start on, a resumed import storing each post once, a file saved again as
//! UTF-8 after its refusal read from the first refused record, and a last record still being
//! written held back until it is whole.

use super::*;

/// Waits until `posts` posts are stored and the stream is read to its end, then asserts that
/// no more were: every post an import appended more than once is stored once.
async fn assert_stored_once(env: &TestEnv, posts: i64) {
    assert!(env.stored(posts, Duration::from_secs(60)).await);
    let redis = env.redis().await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.unfinished(&redis).await == 0
        })
        .await
    );
    assert_eq!(env.post_count().await, posts, "each post stored once");
}

/// Asserts that each post of `ids` is stored with the text `text`.
async fn assert_text_of(env: &TestEnv, ids: &[&str], text: &str) {
    let pg = env.pg().await;
    for id in ids {
        let stored: Option<String> = pg
            .scalar("SELECT text FROM posts WHERE id = $1", &[id])
            .await;
        assert_eq!(stored.as_deref(), Some(text), "{id}");
    }
}

#[actix_rt::test]
async fn an_import_counts_refused_lines_resumes_where_it_stopped_and_stores_each_post_once() {
    let app = spawn_app().await;
    let env = &app.env;
    let dir = fresh_dir("pulse-import");
    let file = dir.join("backfill.jsonl");
    let mut lines: Vec<String> = (0..1_000)
        .map(|i| post_json(&format!("imp-{i}"), "Imported post about the Pulse Phone"))
        .collect();
    lines.insert(10, "{\"type\": \"post\", \"id\": ".into());
    lines.insert(20, r#"{"type":"post","id":"x","platform":"twitter","author":{"id":"a","followers":1},"text":"   ","created_at":"2024-01-01T00:00:00Z"}"#.into());
    lines.insert(30, String::new());
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let settings = env.settings();
    let first = import_file(&settings, &file).await;
    assert_eq!(first.started_at_line, 1);
    assert_eq!((first.accepted, first.refused), (1_000, 2), "{first:?}");
    assert_eq!(first.refused_by_reason.get("malformed"), Some(&1));
    assert_eq!(first.refused_by_reason.get("invalid_field"), Some(&1));
    assert!(
        first.examples[0].starts_with("line 11:"),
        "{:?}",
        first.examples
    );

    // More lines arrive; the next import starts after the ones already appended.
    // With them come 20 likes without ids (the first two lines alike: two likes).
    let mut more: Vec<String> = (1_000..1_200)
        .map(|i| post_json(&format!("imp-{i}"), "Imported post about the Pulse Phone"))
        .collect();
    let like = |s: i64| {
        let at = chrono::Utc::now() - chrono::Duration::seconds(s);
        json!({"type": "engagement", "post_id": "imp-7", "kind": "like", "at": at.to_rfc3339()})
            .to_string()
    };
    more.push(like(1));
    more.push(more.last().unwrap().clone());
    more.extend((2..20).map(like));
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&(more.join("\n") + "\n"));
    std::fs::write(&file, text).unwrap();
    let second = import_file(&settings, &file).await;
    // It starts on the line after the last one read, the blank line counted.
    assert_eq!(second.started_at_line, lines.len() as u64 + 1, "{second:?}");
    assert_eq!((second.lines, second.accepted), (220, 220));

    // From the start again: appended twice, stored once.
    let mut again = import_args(&file);
    again.restart = true;
    let third = pulse::sources::import::run(&settings, again).await.unwrap();
    assert_eq!(third.accepted, 1_220);
    assert_stored_once(env, 1_200).await;
    // The likes were appended twice too, and are counted once each.
    let likes: i64 = env
        .pg()
        .await
        .scalar(
            "SELECT COALESCE(sum(count), 0)::int8 FROM engagements WHERE post_id = 'imp-7'",
            &[],
        )
        .await;
    assert_eq!(likes, 20);

    // Another export written over the same path (longer, so the old position would fit in
    // it) is read from its start, not from where the first file ended.
    let other: Vec<String> = (0..1_300)
        .map(|i| post_json(&format!("other-{i}"), "Another export of the Pulse Phone"))
        .collect();
    std::fs::write(&file, other.join("\n") + "\n").unwrap();
    let replaced = import_file(&settings, &file).await;
    assert_eq!(
        (replaced.started_at_line, replaced.accepted),
        (1, 1_300),
        "{replaced:?}"
    );

    // CSV through a column mapping.
    let csv = dir.join("export.csv");
    std::fs::write(
        &csv,
        "tweet_id,content,created_at,country\n\
         c1,\"Great battery, love it\",1700000000,DE\n\
         c2,,1700000001,FR\n\
         c3,\"Broke after a day\",2023-11-14T22:13:20Z,\n",
    )
    .unwrap();
    let mut args = import_args(&csv);
    args.map = "id=tweet_id,text=content".into();
    args.platform = "twitter".into();
    let summary = pulse::sources::import::run(&settings, args).await.unwrap();
    assert_eq!((summary.accepted, summary.refused), (2, 1), "{summary:?}");
    assert!(
        summary.examples[0].contains("content"),
        "{:?}",
        summary.examples
    );
    assert!(
        env.stored_exactly(1_200 + 1_300 + 2, Duration::from_secs(30))
            .await
    );
    let country: Option<String> = env
        .pg()
        .await
        .scalar("SELECT country FROM posts WHERE id = 'c1'", &[])
        .await;
    assert_eq!(country.as_deref(), Some("DE"));

    // Spaces after the commas of a header name the columns all the same, and empty columns
    // may repeat; a header that names a column the mapping reads twice is refused before
    // anything is read.
    let spaced = dir.join("spaced.csv");
    std::fs::write(
        &spaced,
        "id, text, created_at, author_followers,,\ns1,Spaced header,2026-11-20 10:00:00,\"1,200\",,\n",
    )
    .unwrap();
    let summary = import_file(&settings, &spaced).await;
    assert_eq!((summary.accepted, summary.refused), (1, 0), "{summary:?}");
    let twice = dir.join("twice.csv");
    std::fs::write(&twice, "id,text,created_at,id\nt1,x,1700000000,u1\n").unwrap();
    let refused = pulse::sources::import::run(&settings, import_args(&twice)).await;
    let error = format!("{:#}", refused.expect_err("a header naming a column twice"));
    assert!(error.contains("\"id\" twice"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// The summaries of an import of `file`, and of another once `change` has changed it.
async fn import_before_and_after(
    settings: &pulse::config::Settings,
    file: &std::path::Path,
    change: impl FnOnce(),
) -> (
    pulse::sources::import::ImportSummary,
    pulse::sources::import::ImportSummary,
) {
    let before = import_file(settings, file).await;
    change();
    (before, import_file(settings, file).await)
}

/// Windows-1252 bytes of `text` (as Excel's "CSV" on Windows writes it): é, the only letter
/// these tests write outside ASCII, is the byte 0xE9.
fn cp1252(text: &str) -> Vec<u8> {
    text.replace('é', "\u{1}")
        .bytes()
        .map(|b| if b == 1 { 0xE9 } else { b })
        .collect()
}

/// `bytes` read as Windows-1252 and written as UTF-8 (without a byte order mark), as
/// `iconv -f cp1252 -t utf-8` writes them; for 0xE9 and ASCII Latin-1 agrees with it.
fn as_utf8(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .into_bytes()
}

/// Imports `text` written to `file` in Windows-1252, and again once the file is saved as
/// UTF-8; asserts that the first run refused one record as not UTF-8 and took `accepted`, and
/// that the second read the three records from `refused_line` on.
async fn assert_read_from_the_refused_line_once_utf8(
    settings: &pulse::config::Settings,
    file: &std::path::Path,
    text: &str,
    accepted: u64,
    refused_line: u64,
) {
    std::fs::write(file, cp1252(text)).unwrap();
    let saved_as_utf8 = || std::fs::write(file, as_utf8(&cp1252(text))).unwrap();
    let (first, again) = import_before_and_after(settings, file, saved_as_utf8).await;
    assert_eq!(first.refused_by_reason.get("invalid_utf8"), Some(&1));
    assert_eq!((first.accepted, first.refused), (accepted, 1), "{first:?}");
    assert_eq!(again.started_at_line, refused_line, "{again:?}");
    assert_eq!((again.accepted, again.refused), (3, 0), "{again:?}");
}

/// The run that refused a record as not UTF-8 stored the file's end as its position, so the
/// file saved as UTF-8 (as the error says to) and imported again was read from past the
/// converted records: they were never imported, and the run exited 0.
#[actix_rt::test]
async fn a_file_saved_as_utf8_after_its_refusal_is_read_again_from_the_first_refused_record() {
    let app = spawn_app().await;
    let env = &app.env;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-cp1252");

    // A CSV whose first 4 KiB are ASCII (the resume checks them) and a later row in
    // Windows-1252.
    let csv = dir.join("export.csv");
    let mut text = String::from("id,text,created_at\n");
    for i in 0..200 {
        text += &format!("a{i},An ASCII row about the Pulse Phone,1700000000\n");
    }
    text += "c9,Café au lait,1700000000\nc10,After it,1700000000\nc11,And on,1700000000\n";
    assert_read_from_the_refused_line_once_utf8(&settings, &csv, &text, 202, 202).await;

    // JSON lines alike, with a like without an id after the refused line: it is appended
    // again under the same id, so counted once.
    let jsonl = dir.join("backfill.jsonl");
    let mut lines: Vec<String> = (0..100)
        .map(|i| post_json(&format!("j-{i}"), "An ASCII post about the Pulse Phone"))
        .collect();
    lines.push(post_json("j9", "Café au lait"));
    lines.push(
        json!({"type": "engagement", "post_id": "j-0", "kind": "like",
            "at": chrono::Utc::now().to_rfc3339()})
        .to_string(),
    );
    lines.push(post_json("j10", "Plain after it"));
    let text = lines.join("\n") + "\n";
    assert_read_from_the_refused_line_once_utf8(&settings, &jsonl, &text, 102, 101).await;

    assert_stored_once(env, 203 + 102).await;
    assert_text_of(env, &["c9", "j9"], "Café au lait").await;
    let likes: i64 = env
        .pg()
        .await
        .scalar(
            "SELECT COALESCE(sum(count), 0)::int8 FROM engagements WHERE post_id = 'j-0'",
            &[],
        )
        .await;
    assert_eq!(likes, 1);
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// Appends `text` to the file at `path`, as a writer finishing its line would.
fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A last record with no line end was read as whole: a JSON line cut by its writer was
/// refused and the position moved past it, so its completed line was read from its middle; a
/// CSV row cut in its text was stored cut, and the completed row could never replace it.
#[actix_rt::test]
async fn a_last_record_its_writer_has_not_finished_is_held_back_until_it_is() {
    let app = spawn_app().await;
    let env = &app.env;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-cut");

    let jsonl = dir.join("growing.jsonl");
    let whole = post_json("p9", "Broke after a day");
    let (done, rest) = whole.split_at(whole.find("after").unwrap());
    let mut text: String = (0..5)
        .map(|i| post_json(&format!("p{i}"), "A whole line") + "\n")
        .collect();
    text += done;
    std::fs::write(&jsonl, &text).unwrap();
    let finished = || append(&jsonl, &format!("{rest}\n"));
    let (first, second) = import_before_and_after(&settings, &jsonl, finished).await;
    assert_eq!((first.accepted, first.refused), (5, 0), "{first:?}");
    assert_eq!(first.held_back_line, Some(6), "{first:?}");
    assert_eq!(second.started_at_line, 6, "{second:?}");
    assert_eq!((second.accepted, second.refused), (1, 0), "{second:?}");
    assert_eq!(second.held_back_line, None);

    let csv = dir.join("growing.csv");
    std::fs::write(
        &csv,
        "id,created_at,text\nc8,1700000000,Fine\nc9,1700000000,Broke aft",
    )
    .unwrap();
    let finished = || append(&csv, "er a day\n");
    let (first, second) = import_before_and_after(&settings, &csv, finished).await;
    assert_eq!((first.accepted, first.refused), (1, 0), "{first:?}");
    assert_eq!(first.held_back_line, Some(3), "{first:?}");
    assert_eq!((second.accepted, second.refused), (1, 0), "{second:?}");

    // A complete file that ends without a line end: a whole JSON object is read; a CSV row is
    // held back (it may be cut in its text) and read with --complete.
    let hand = dir.join("hand.jsonl");
    let two = [post_json("h0", "By hand"), post_json("h1", "No line end")];
    std::fs::write(&hand, two.join("\n")).unwrap();
    let read = import_file(&settings, &hand).await;
    assert_eq!((read.accepted, read.held_back_line), (2, None), "{read:?}");
    let hand = dir.join("hand.csv");
    std::fs::write(
        &hand,
        "id,text,created_at\nh2,By hand,1700000000\nh3,No line end,1700000000",
    )
    .unwrap();
    let held = import_file(&settings, &hand).await;
    assert_eq!(
        (held.accepted, held.held_back_line),
        (1, Some(3)),
        "{held:?}"
    );
    let mut complete = import_args(&hand);
    complete.complete = true;
    let read = pulse::sources::import::run(&settings, complete)
        .await
        .unwrap();
    assert_eq!(read.started_at_line, 3, "{read:?}");
    assert_eq!((read.accepted, read.held_back_line), (1, None), "{read:?}");

    assert_stored_once(env, 6 + 2 + 2 + 2).await;
    assert_text_of(env, &["p9", "c9"], "Broke after a day").await;
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// Refused records were quoted with their number among the records: the CSV header, blank
/// lines and the lines of a quoted field were not counted.
#[actix_rt::test]
async fn refused_records_are_quoted_with_the_line_they_start_on() {
    let env = TestEnv::new().await;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-lines");
    let first_example = |path: std::path::PathBuf, text: &str| {
        std::fs::write(&path, text).unwrap();
        let settings = &settings;
        async move {
            let summary = import_file(settings, &path).await;
            summary.examples.first().cloned().unwrap_or_default()
        }
    };
    let example = first_example(
        dir.join("a.csv"),
        "id,text,created_at\nl1,Fine,1700000000\nl2,,1700000000\n",
    )
    .await;
    assert!(example.starts_with("line 3:"), "{example}");
    let example = first_example(
        dir.join("b.csv"),
        "id,text,created_at\r\nl3,\"Two\nlines\",1700000000\r\n\r\nl4,,1700000000\r\n",
    )
    .await;
    assert!(example.starts_with("line 5:"), "{example}");
    let good = post_json("l5", "Fine");
    let jsonl = dir.join("c.jsonl");
    let example = first_example(
        jsonl.clone(),
        &format!("{good}\n\n{{\"type\": \"post\", \"id\": \n"),
    )
    .await;
    assert!(example.starts_with("line 3:"), "{example}");
    // A resumed run counts on from the stored position.
    append(&jsonl, "\n{\"type\": \n");
    let resumed = import_file(&settings, &jsonl).await;
    assert_eq!(resumed.started_at_line, 4, "{resumed:?}");
    assert!(
        resumed.examples[0].starts_with("line 5:"),
        "{:?}",
        resumed.examples
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A run that accepted nothing stored the file's end as its position, and a position was
/// resumed from whatever `--map` read the file before: the command corrected after a wrong
/// column, or run again once its posts were no longer ahead of the clock, resumed at the end
/// and read nothing, exiting 0.
#[actix_rt::test]
async fn a_run_that_accepted_nothing_or_read_the_file_otherwise_leaves_it_to_the_next() {
    let env = TestEnv::new().await;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-remap");
    let csv = dir.join("export.csv");
    std::fs::write(
        &csv,
        "id,content,body_html,created_at\n\
         r1,Love it,<p>Love it</p>,1700000000\n\
         r2,Broke after a day,<p>Broke after a day</p>,1700000000\n\
         r3,Fine,<p>Fine</p>,1700000000\n",
    )
    .unwrap();
    let mapped = |map: &str| {
        let mut args = import_args(&csv);
        args.map = map.into();
        pulse::sources::import::run(&settings, args)
    };

    // The wrong column: every row refused, none marked as read.
    let wrong = mapped("text=body").await.unwrap();
    assert_eq!((wrong.accepted, wrong.refused), (0, 3), "{wrong:?}");
    let right = mapped("text=content").await.unwrap();
    assert_eq!(right.started_at_line, 1, "{right:?}");
    assert_eq!((right.accepted, right.refused), (3, 0), "{right:?}");

    // Another column that is there: the file read so means other posts, so it is read again
    // from its start, and the summary says why.
    let other = mapped("text=body_html").await.unwrap();
    assert_eq!(other.started_at_line, 1, "{other:?}");
    assert_eq!(other.accepted, 3, "{other:?}");
    let why = other.started_over.unwrap_or_default();
    assert!(why.contains("--map"), "{why}");
    let again = mapped("text=body_html").await.unwrap();
    assert_eq!(
        (again.lines, again.started_over.as_deref()),
        (0, None),
        "{again:?}"
    );

    // Lines appended with times ahead of the clock, all refused, then written again with
    // their times corrected (the file's first 4 KiB as they were): the same command reads
    // them from the first refused one.
    let jsonl = dir.join("growing.jsonl");
    let lines: Vec<String> = (0..50)
        .map(|i| {
            post_json(
                &format!("g-{i}"),
                "A post about the Pulse Phone, long enough",
            )
        })
        .collect();
    let head = lines.join("\n") + "\n";
    assert!(head.len() > 4096);
    std::fs::write(&jsonl, &head).unwrap();
    assert_eq!(import_file(&settings, &jsonl).await.accepted, 50);
    let appended = |at: chrono::DateTime<chrono::Utc>| -> String {
        (0..3)
            .map(|i| {
                PostEvent::new(&format!("late-{i}"), "Written later")
                    .at(at)
                    .to_string()
                    + "\n"
            })
            .collect()
    };
    let ahead = chrono::Utc::now() + chrono::Duration::days(2);
    std::fs::write(&jsonl, head.clone() + &appended(ahead)).unwrap();
    let refused = import_file(&settings, &jsonl).await;
    assert_eq!(refused.started_at_line, 51, "{refused:?}");
    assert_eq!((refused.accepted, refused.refused), (0, 3), "{refused:?}");
    std::fs::write(&jsonl, head + &appended(chrono::Utc::now())).unwrap();
    let corrected = import_file(&settings, &jsonl).await;
    assert_eq!(corrected.started_at_line, 51, "{corrected:?}");
    assert_eq!(
        (corrected.accepted, corrected.refused),
        (3, 0),
        "{corrected:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
