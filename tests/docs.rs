//! The documentation, checked against the code from the outside.
//!
//! README.md and docs/ describe Pulse in prose and tables that nothing compiles: a metric
//! renamed in the code, a setting added without its row or a page moved would leave them
//! wrong, and no other test would notice. This test reads the sources and the pages as text,
//! as a reader would, and fails when they disagree:
//!
//! - every metric the code records is in the metrics table of `docs/operations.md`, and every
//!   metric of that table is recorded somewhere in the crates' sources;
//! - every setting of `crates/core/src/config/mod.rs` is in the settings table of `docs/configuration.md`, and
//!   every setting of that table is a field there;
//! - every local link of README.md and `docs/` points to a file that exists, and a link to a
//!   heading (`page.md#heading`) to a heading of that page;
//! - every repository path named in backticks, in the pages and in comments, exists;
//! - every setting (`section.key`), metric (`pulse_...`) and item of the code (`name()`,
//!   `module::Name`) a page names in backticks exists, or is at least something the code,
//!   the migrations or the deployment files say (a former setting name, an audit action, a
//!   SQL function);
//! - README.md stays short enough to read on a screen or two.
//!
//! It uses the standard library only and links nothing of the crate, so it runs in a second
//! and sees the code exactly as the documentation's reader does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

#[path = "support/source_files.rs"]
mod source_files;
use source_files::files;

/// Longest README.md, in lines: what Pulse is, how to run it, and where to read on.
const README_MAX_LINES: usize = 300;

/// Macros of the `metrics` crate whose first argument is a metric name.
const METRIC_MACROS: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "describe_counter",
    "describe_gauge",
    "describe_histogram",
];

/// A table of a page under `docs/` whose first column names exactly the things of one kind
/// the code has, and what a name found on one side only means.
struct Listing {
    page: &'static str,
    header: &'static [&'static str],
    /// Said of the names the code has and the table lacks.
    missing: &'static str,
    /// Said of the names the table has and the code lacks.
    stale: &'static str,
}

/// The metrics table in `docs/operations.md`.
const METRICS_TABLE: Listing = Listing {
    page: "operations.md",
    header: &["metric", "type", "labels"],
    missing: "recorded in the crates but missing from the metrics table of docs/operations.md",
    stale: "in the metrics table of docs/operations.md but recorded nowhere in the crates",
};

/// The settings table in `docs/configuration.md`.
const SETTINGS_TABLE: Listing = Listing {
    page: "configuration.md",
    header: &["setting", "environment", "default", "meaning"],
    missing: "settings of crates/core/src/config/ missing from the table of docs/configuration.md",
    stale: "in the table of docs/configuration.md but no field of crates/core/src/config/",
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text of a Rust file without its line comments (doc comments included).
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text between the first pair of double quotes of `text`.
fn string_literal(text: &str) -> Option<&str> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// The rows of the markdown table whose header cells are `header`, as cells; `None` when
/// `markdown` has no such table.
fn table(markdown: &str, header: &[&str]) -> Option<Vec<Vec<String>>> {
    let mut lines = markdown.lines();
    lines.find(|line| cells(line) == header)?;
    let rows = lines
        .skip(1) // the |---| line
        .take_while(|line| line.trim_start().starts_with('|'))
        .map(cells)
        .collect();
    Some(rows)
}

/// The cells of one table row; `\|` inside a cell is not a separator.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    if !line.starts_with('|') {
        return Vec::new();
    }
    line.replace("\\|", "\u{0}")
        .trim_matches('|')
        .split('|')
        .map(|cell| cell.trim().replace('\u{0}', "|"))
        .collect()
}

/// The contents of the code spans (`like this`) of a piece of markdown.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The names in the first column of a table's rows (a row may name several).
fn first_column_names(rows: &[Vec<String>]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|row| row.first())
        .flat_map(|cell| code_spans(cell))
        .collect()
}

/// A table of a page under `docs/`, failing the test when the page has none.
fn docs_table(page: &str, header: &[&str]) -> Vec<Vec<String>> {
    let path = root().join("docs").join(page);
    table(&read(&path), header)
        .unwrap_or_else(|| panic!("docs/{page} has no table headed | {} |", header.join(" | ")))
}

/// Says what is on one side only, or nothing when both sides agree.
fn differences(
    only_code: &BTreeSet<String>,
    code_side: &str,
    only_docs: &BTreeSet<String>,
    docs_side: &str,
) -> Option<String> {
    let mut out = Vec::new();
    if !only_code.is_empty() {
        out.push(format!("{code_side}: {only_code:?}"));
    }
    if !only_docs.is_empty() {
        out.push(format!("{docs_side}: {only_docs:?}"));
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

/// Asserts the first column of `listing`'s table names exactly the names `in_code`.
fn assert_lists_exactly(listing: &Listing, in_code: &BTreeSet<String>) {
    let documented = first_column_names(&docs_table(listing.page, listing.header));
    let problems = differences(
        &in_code.difference(&documented).cloned().collect(),
        listing.missing,
        &documented.difference(in_code).cloned().collect(),
        listing.stale,
    );
    assert!(problems.is_none(), "{}", problems.unwrap_or_default());
}

// Metrics.

/// Every `const NAME: &str = "value";` of the sources, and every `counter NAME = "value";` (or
/// `gauge`, `histogram`) of the metric names' table, by name.
fn string_constants(sources: &[(PathBuf, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, code) in sources {
        for line in code.lines() {
            let declared = line
                .split_once("const ")
                .and_then(|(_, rest)| rest.split_once(": &str ="))
                .or_else(|| {
                    let rest = ["counter ", "gauge ", "histogram "]
                        .iter()
                        .find_map(|kind| line.trim_start().strip_prefix(kind))?;
                    rest.split_once(" = ")
                });
            let Some((name, value)) = declared else {
                continue;
            };
            if let Some(value) = string_literal(value) {
                out.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
    out
}

/// The first argument of every metric macro call in `code`, as written.
fn metric_arguments(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("!(") {
        let before = &code[..at];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if !METRIC_MACROS.contains(&&before[start..]) {
            continue;
        }
        let args = &code[at + 2..];
        let end = args.find([',', ')']).unwrap_or(args.len());
        out.push(args[..end].trim().to_owned());
    }
    out
}

/// The metric a macro argument names: a string literal, or a constant (`names::X`) defined in
/// the sources.
fn metric_name(argument: &str, constants: &BTreeMap<String, String>) -> Option<String> {
    if argument.starts_with('"') {
        return string_literal(argument).map(str::to_owned);
    }
    let constant = argument.rsplit("::").next().unwrap_or(argument);
    constants.get(constant).cloned()
}

/// The folders of the crates' sources.
const SOURCE_FOLDERS: &[&str] = &["crates/core/src", "src", "crates/tools/src"];

/// Every Rust file of the crates, without comments.
fn sources() -> Vec<(PathBuf, String)> {
    SOURCE_FOLDERS
        .iter()
        .flat_map(|folder| files(&root().join(folder), "rs"))
        .map(|path| {
            let code = code_of(&read(&path));
            (path, code)
        })
        .collect()
}

/// Every metric name the code records; panics on an argument it cannot read, since a name
/// it cannot see is a name it cannot check.
fn recorded_metrics() -> BTreeSet<String> {
    let sources = sources();
    let constants = string_constants(&sources);
    let mut names = BTreeSet::new();
    for (path, code) in &sources {
        for argument in metric_arguments(code) {
            let name = metric_name(&argument, &constants).unwrap_or_else(|| {
                panic!(
                    "{}: the metric `{argument}` is neither a string literal nor a `&str` \
                     constant of the crates; name metrics so this test can read them",
                    path.display()
                )
            });
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_metrics_table_lists_exactly_the_metrics_the_code_records() {
    let recorded = recorded_metrics();
    assert!(
        !recorded.is_empty(),
        "found no metric recorded in the crates"
    );
    assert_lists_exactly(&METRICS_TABLE, &recorded);
}

// Settings.

/// One field of a settings struct: its key in the configuration and its type.
struct Field {
    key: String,
    ty: String,
}

/// The fields of every braced struct of `code`, by struct name. A field marked
/// `#[serde(skip...)]` is no setting; `#[serde(rename = "...")]` changes its key.
fn structs(code: &str) -> BTreeMap<String, Vec<Field>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<Field>)> = None;
    let mut attributes = String::new();
    for line in code.lines() {
        if let Some(name) = struct_start(line) {
            current = Some((name, Vec::new()));
        } else if line == "}" {
            if let Some((name, fields)) = current.take() {
                out.insert(name, fields);
            }
        } else if let Some((_, fields)) = current.as_mut() {
            let line = line.trim();
            if line.starts_with("#[") {
                attributes.push_str(line);
                continue;
            }
            if let Some(field) = field(line, &attributes) {
                fields.push(field);
            }
        }
        attributes.clear();
    }
    out
}

/// The name of the struct a `pub struct Name {` line opens.
fn struct_start(line: &str) -> Option<String> {
    let rest = line.strip_prefix("pub struct ")?.strip_suffix('{')?;
    Some(rest.trim().to_owned())
}

/// The setting a `pub name: Type,` line declares, given the attributes above it.
fn field(line: &str, attributes: &str) -> Option<Field> {
    let line = line.strip_prefix("pub ").unwrap_or(line);
    let (name, ty) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    if attributes.contains("serde(skip") {
        return None;
    }
    let key = attributes
        .split_once("rename =")
        .and_then(|(_, rest)| string_literal(rest))
        .unwrap_or(name);
    Some(Field {
        key: key.to_owned(),
        ty: ty.trim().trim_end_matches(',').trim().to_owned(),
    })
}

/// The settings under struct `name`, as dotted keys: a field whose type is another struct of
/// the configuration is a section, and its fields are `section.key`.
fn setting_keys(structs: &BTreeMap<String, Vec<Field>>, name: &str, prefix: &str) -> Vec<String> {
    let fields = structs
        .get(name)
        .unwrap_or_else(|| panic!("crates/core/src/config/ has no `pub struct {name} {{`"));
    let mut out = Vec::new();
    for field in fields {
        let key = format!("{prefix}{}", field.key);
        if structs.contains_key(&field.ty) {
            out.extend(setting_keys(structs, &field.ty, &format!("{key}.")));
        } else {
            out.push(key);
        }
    }
    out
}

/// The code of the configuration: every file of `crates/core/src/config/`.
fn configuration_code() -> String {
    let dir = root().join("crates/core/src/config");
    let mut code = String::new();
    for path in files(&dir, "rs") {
        code.push('\n');
        code.push_str(&code_of(&read(&path)));
    }
    code
}

#[test]
fn the_settings_table_lists_exactly_the_fields_of_the_settings() {
    let structs = structs(&configuration_code());
    let settings: BTreeSet<String> = setting_keys(&structs, "Settings", "").into_iter().collect();
    assert!(
        settings.iter().any(|key| key.contains('.')),
        "found no `section.key` setting in crates/core/src/config/"
    );
    assert_lists_exactly(&SETTINGS_TABLE, &settings);
}

// Links.

/// README.md and every page under `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    out.extend(files(&root().join("docs"), "md"));
    out
}

/// The lines of a page outside its fenced code blocks.
fn outside_code_blocks(markdown: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            out.push(line);
        }
    }
    out
}

/// A line with its code spans removed, so that code is never read as a link.
fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect()
}

/// The targets of the inline links and images of a page: `[text](target)`.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in outside_code_blocks(markdown) {
        let line = without_code_spans(line);
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            out.push(target.trim_matches(['<', '>']).to_owned());
        }
    }
    out
}

/// Whether a link target leaves the repository (a URL or an e-mail address).
fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// The anchors of a page's headings, as GitHub makes them: lower case, letters, digits, `-`
/// and `_` kept, spaces made `-`, the rest dropped; a repeated anchor gets `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in outside_code_blocks(markdown) {
        let Some(title) = heading(line) else { continue };
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        out.insert(match *count {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *count += 1;
    }
    out
}

/// The title of a `#`…`######` heading line.
fn heading(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches('#');
    let level = line.len() - rest.len();
    ((1..=6).contains(&level) && rest.starts_with(' ')).then(|| rest.trim())
}

/// What is wrong with one link of `page`, if anything.
fn broken_link(page: &Path, target: &str) -> Option<String> {
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().expect("a page is in a folder").join(path)
    };
    if !file.exists() {
        return Some(format!("{target}: no such file"));
    }
    let is_page = file.extension().is_some_and(|e| e == "md");
    if anchor.is_empty() || !is_page {
        return None;
    }
    (!anchors(&read(&file)).contains(anchor)).then(|| format!("{target}: no such heading"))
}

#[test]
fn local_links_point_to_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        for target in link_targets(&text) {
            if is_external(&target) {
                continue;
            }
            checked += 1;
            if let Some(problem) = broken_link(&page, &target) {
                let page = page.strip_prefix(root()).unwrap_or(&page);
                broken.push(format!("{}: {problem}", page.display()));
            }
        }
    }
    assert!(checked > 0, "found no local link in README.md or docs/");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

// The README.

#[test]
fn the_readme_fits_on_a_screen() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move reference material to docs/"
    );
}

/// Every error code with its HTTP status, read from `crates/core/src/models/errors.rs`: the arms of
/// `as_str` name each variant's code, the arms of `status` its status.
fn error_codes() -> BTreeMap<String, String> {
    let text = code_of(&read(&root().join("crates/core/src/models/errors.rs")));
    let body = |name: &str| {
        let start = text
            .find(&format!("pub fn {name}("))
            .unwrap_or_else(|| panic!("no fn {name} in errors.rs"));
        let end = text[start..].find("\n    }\n").expect("the end of the fn") + start;
        text[start..end].to_string()
    };
    let mut status_of = BTreeMap::new();
    let status = body("status");
    let arms = status
        .split_once("match self {")
        .expect("status matches on self")
        .1;
    for arm in arms.split(',') {
        if let Some((variants, status)) = arm.split_once("=>") {
            for variant in variants.split('|') {
                status_of.insert(variant.trim().to_string(), status.trim().to_string());
            }
        }
    }
    body("as_str")
        .lines()
        .filter_map(|line| {
            let (variant, code) = line.split_once("=>")?;
            let code = string_literal(code)?;
            let status = status_of
                .get(variant.trim())
                .unwrap_or_else(|| panic!("{} has no status", variant.trim()));
            Some((code.to_string(), status.clone()))
        })
        .collect()
}

#[test]
fn the_error_code_table_lists_every_code_with_its_status() {
    let documented: BTreeMap<String, String> = docs_table("api.md", &["code", "status", "meaning"])
        .iter()
        .map(|row| (code_spans(&row[0]).concat(), row[1].clone()))
        .collect();
    let code = error_codes();
    assert!(
        code.len() > 30,
        "read only {} codes from errors.rs",
        code.len()
    );
    assert_eq!(
        documented, code,
        "docs/api.md's code table and crates/core/src/models/errors.rs disagree"
    );
}

// Paths named in prose.

/// Top-level folders whose paths pages and comments name.
const NAMED_ROOTS: &[&str] = &[
    "src",
    "crates",
    "tests",
    "scripts",
    "docs",
    "migrations",
    "frontend",
    "deploy",
    "training",
    "benches",
    "fuzz",
    ".ci",
];

/// Build outputs a page may name though a clone does not have them until it builds.
const BUILT: &[&str] = &["frontend/dist", "e2e-output", "node_modules", "target/"];

/// Folders never read for named paths: build outputs and dependencies.
const UNREAD: &[&str] = &[
    "target",
    "node_modules",
    "dist",
    ".git",
    "e2e-output",
    "fuzz/corpus",
];

/// Files whose comments (or, for markdown, whose prose outside code blocks) name paths, with
/// the lines to read.
fn texts_naming_paths() -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let mut pending = vec![root().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            let relative = path
                .strip_prefix(root())
                .unwrap_or(&path)
                .to_string_lossy()
                .to_string();
            if UNREAD
                .iter()
                .any(|u| relative == *u || relative.ends_with(&format!("/{u}")))
            {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let lines: Vec<String> = match extension {
                "md" => outside_code_blocks(&read(&path))
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                "rs" | "sh" | "ts" | "tsx" | "toml" | "yml" | "yaml" => read(&path)
                    .lines()
                    .filter(|l| {
                        let t = l.trim_start();
                        t.starts_with("//") || t.starts_with('#') || t.starts_with('*')
                    })
                    .map(str::to_owned)
                    .collect(),
                _ => continue,
            };
            out.push((path, lines));
        }
    }
    out.sort();
    out
}

/// The repository paths a line names in code spans: under a top-level folder of
/// [`NAMED_ROOTS`], or a `.rs` file under a module folder of a crate (`db/batch.rs`).
fn named_paths(line: &str, src_modules: &BTreeMap<String, PathBuf>) -> Vec<(String, PathBuf)> {
    code_spans(line)
        .into_iter()
        .map(|span| span.trim_end_matches(['.', ',', ':', ';']).to_owned())
        .filter(|span| span.contains('/') && !span.contains(|c: char| "*<>{}$()[]| =".contains(c)))
        .filter_map(|span| {
            let first = span.split('/').next().unwrap_or("").to_owned();
            let path = if NAMED_ROOTS.contains(&first.as_str()) {
                PathBuf::from(&span)
            } else if let Some(folder) = src_modules.get(&first).filter(|_| span.ends_with(".rs")) {
                folder.join(&span)
            } else {
                return None;
            };
            Some((span, path))
        })
        .collect()
}

#[test]
fn every_path_named_in_the_docs_and_comments_exists() {
    // Each module folder of a crate, with the crate's folder.
    let src_modules: BTreeMap<String, PathBuf> = SOURCE_FOLDERS
        .iter()
        .flat_map(|folder| {
            fs::read_dir(root().join(folder))
                .unwrap_or_else(|e| panic!("{folder}: {e}"))
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(move |e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, PathBuf::from(folder))
                })
        })
        .collect();
    let mut missing = Vec::new();
    for (file, lines) in texts_naming_paths() {
        // A page inside a folder (frontend/README.md) may name paths from that folder.
        let folder = file.parent().unwrap_or(root()).to_path_buf();
        for (n, line) in lines.iter().enumerate() {
            for (span, path) in named_paths(line, &src_modules) {
                let built = BUILT.iter().any(|b| span.contains(b));
                if !built && !root().join(&path).exists() && !folder.join(&span).exists() {
                    let shown = file.strip_prefix(root()).unwrap_or(&file).display();
                    missing.push(format!(
                        "{shown} (line {} of its prose or comments): `{span}`",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths named that do not exist:\n{}",
        missing.join("\n")
    );
}

// Names of the code in prose.

/// Every name the crates define: functions, types, traits, constants, statics, modules,
/// macros, enum variants and fields (`name:` at the start of a line).
fn defined_names() -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "fn",
        "struct",
        "enum",
        "trait",
        "const",
        "static",
        "type",
        "mod",
        "macro_rules!",
    ];
    let mut names = BTreeSet::new();
    for (_, code) in sources() {
        for line in code.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                if KEYWORDS.contains(&pair[0]) {
                    names.insert(pair[1].trim_end_matches('!').to_owned());
                }
            }
            // Variants (`Name,` `Name(` `Name {`) and fields (`name: Type`).
            let trimmed = line.trim_start().trim_start_matches("pub ");
            let ident: String = trimmed
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let rest = &trimmed[ident.len()..];
            if !ident.is_empty()
                && (rest.starts_with(':') && !rest.starts_with("::")
                    || rest.starts_with(',')
                    || rest.starts_with('(')
                    || rest.starts_with(" {")
                    || rest.starts_with(" ="))
            {
                names.insert(ident);
            }
        }
    }
    names
}

/// The last segment of a code span that reads as a path of the code (`a::b::Name`,
/// `db::batch::write()`), or `None`.
fn code_item(span: &str) -> Option<&str> {
    let span = span.strip_suffix("()").unwrap_or(span);
    let is_ident = |s: &&str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let segments: Vec<&str> = span.split("::").collect();
    (segments.len() > 1 && segments.iter().all(is_ident)).then(|| segments[segments.len() - 1])
}

/// What the code, the migrations and the deployment files say, as text (string literals
/// included): a name found nowhere in it (as a setting's former name, an audit action, a SQL
/// or PromQL function would be) is one the pages made up, or kept after the code dropped it.
fn everything_the_code_says() -> String {
    let mut text: String = sources().into_iter().map(|(_, code)| code).collect();
    let folders = [
        ("migrations", "sql"),
        ("deploy", "yaml"),
        ("deploy/prometheus", "yml"),
        ("deploy/grafana/dashboards", "json"),
    ];
    for (folder, extension) in folders {
        // Only the folder's own files: deploy/grafana/schema holds a checker's node_modules.
        let own = files(&root().join(folder), extension)
            .into_iter()
            .filter(|path| path.parent() == Some(&root().join(folder)));
        for path in own {
            text.push('\n');
            text.push_str(&read(&path));
        }
    }
    text
}

#[test]
fn every_setting_metric_and_item_a_page_names_exists() {
    let structs = structs(&configuration_code());
    let settings: BTreeSet<String> = setting_keys(&structs, "Settings", "").into_iter().collect();
    let sections: BTreeSet<&str> = settings
        .iter()
        .filter_map(|key| key.split_once('.').map(|(section, _)| section))
        .collect();
    let metrics = recorded_metrics();
    let defined = defined_names();
    let code_says = everything_the_code_says();
    let mut unknown = Vec::new();
    for page in pages() {
        let text = read(&page);
        let shown = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        for line in outside_code_blocks(&text) {
            for span in code_spans(line) {
                let span = span.trim();
                let problem = if let Some(name) = span.strip_suffix("()").filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) {
                    // A function called by name.
                    (!defined.contains(name)).then(|| format!("`{span}`: no function `{name}`"))
                } else if let Some(item) = code_item(span) {
                    (!defined.contains(item)).then(|| format!("`{span}`: nothing named `{item}`"))
                } else if span.starts_with("pulse_")
                    && span
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suffix| span.strip_suffix(suffix))
                        .filter(|base| metrics.contains(*base))
                        .unwrap_or(span);
                    (!metrics.contains(base)).then(|| format!("`{span}`: no metric of that name"))
                } else if span.split_once('.').is_some_and(|(section, key)| {
                    sections.contains(section)
                        && !key.is_empty()
                        && key.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'
                        })
                }) {
                    (!settings.contains(span)).then(|| format!("`{span}`: no such setting"))
                } else {
                    None
                };
                let said = span
                    .strip_suffix("()")
                    .map_or(span.to_owned(), |f| format!("{f}("));
                if let Some(problem) = problem.filter(|_| !code_says.contains(&said)) {
                    unknown.push(format!("{shown}: {problem}"));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names in the pages that the code does not have:\n{}",
        unknown.join("\n")
    );
}

/// A language is `supported` without training only with a measurement beside a published one:
/// the multilingual bundle's `measured_languages` are exactly the table's `supported` rows, and
/// each of those names a published figure.
#[test]
fn the_measured_languages_are_those_the_languages_page_measures_beside_a_published_figure() {
    let manifest: serde_json::Value = serde_json::from_str(&read(
        &root().join("models/e5-multilingual/pulse-model.json"),
    ))
    .unwrap();
    let measured: BTreeSet<String> = manifest["measured_languages"]
        .as_array()
        .expect("measured_languages")
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    let rows = docs_table(
        "languages.md",
        &[
            "language",
            "set (repository, split)",
            "domain, classes, texts",
            "Pulse",
            "published, fine-tuned on the set",
            "support",
        ],
    );
    let supported: Vec<&Vec<String>> = rows.iter().filter(|r| r[5] == "supported").collect();
    for row in &supported {
        assert!(
            !row[4].is_empty() && !row[4].starts_with("none"),
            "{row:?}: supported with no published figure"
        );
    }
    let documented: BTreeSet<String> =
        first_column_names(&supported.into_iter().cloned().collect::<Vec<_>>());
    assert_eq!(measured, documented);
}
