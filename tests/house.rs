//! The size of a source file, kept by a test: no Rust file of the repository holds more than
//! [`MAX_CODE_LINES`] lines of code (neither blank nor only a comment), so a reader finds one
//! subject per file. A data table may be longer where its first lines say it is one: a `//!`
//! line within the first [`HEADER_LINES`] that names `data table` and the limit.
//!
//! It reads the sources as text and links nothing of the crates, so it runs in a second.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "support/source_files.rs"]
mod source_files;

const MAX_CODE_LINES: usize = 800;
const HEADER_LINES: usize = 12;

fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

fn says_it_is_a_data_table(text: &str) -> bool {
    text.lines().take(HEADER_LINES).any(|line| {
        line.starts_with("//!")
            && line.contains("data table")
            && line.contains(&MAX_CODE_LINES.to_string())
    })
}

#[test]
fn no_source_file_holds_more_than_800_lines_of_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["src", "crates", "tests", "fuzz", "benches"]
        .iter()
        .map(|dir| root.join(dir))
        .filter(|dir| dir.is_dir())
        .flat_map(|dir| source_files::files(&dir, "rs"))
        .collect();
    files.push(root.join("build.rs"));
    files.retain(|f| f.is_file());
    assert!(
        files.len() > 100,
        "found only {} Rust files under {}: the walk is wrong",
        files.len(),
        root.display()
    );
    let mut too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = fs::read_to_string(path).ok()?;
            let lines = code_lines(&text);
            (lines > MAX_CODE_LINES && !says_it_is_a_data_table(&text)).then(|| {
                format!(
                    "{}: {lines}",
                    path.strip_prefix(root).unwrap_or(path).display()
                )
            })
        })
        .collect();
    too_long.sort();
    assert!(
        too_long.is_empty(),
        "files over {MAX_CODE_LINES} lines of code (split them by subject, or say in the first \
         lines that the file is a data table and why it passes {MAX_CODE_LINES}): {too_long:#?}"
    );
}

#[test]
fn code_lines_leave_out_blanks_and_comments() {
    let text = "//! about\n\nfn a() {\n    // why\n    let x = 1; // trailing\n}\n";
    assert_eq!(code_lines(text), 3);
    assert!(says_it_is_a_data_table(
        "//! The weights: a data table, longer than 800 lines by design.\n"
    ));
    assert!(!says_it_is_a_data_table("//! A data table.\n"));
    assert!(!says_it_is_a_data_table("// a data table of 800 lines\n"));
}
