//! The layers and the crates, kept by a test: every `crate::` import in `crates/core/src/` and
//! `src/` points to the same layer or one below it, no files import each other in a circle, and
//! each crate of the workspace compiles whole layers, those of the crates before it coming only
//! as dependencies.
//!
//! It reads the sources as text and links nothing of the crates, so it runs in a second.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

#[path = "support/source_files.rs"]
mod source_files;
use source_files::files;

/// Top-level modules by layer, lowest first. A module may import its own layer or lower.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["models", "config", "telemetry"]),
    (
        "engines",
        &[
            "analysis", "virality", "stories", "topics", "search", "generate",
        ],
    ),
    ("storage", &["db", "streams", "egress"]),
    ("access", &["auth"]),
    ("pipeline", &["actors", "sources"]),
    ("live transport", &["ws"]),
    ("http transport", &["http"]),
    ("composition", &["app"]),
    ("commands", &["cli"]),
];

/// The crates of the workspace, lowest first: a manifest, the root file of its library and the
/// layers it compiles. A crate may depend on the crates before it, never on one after it.
const CRATES: &[(&str, &str, &str, &[&str])] = &[
    (
        "pulse-core",
        "crates/core/Cargo.toml",
        "crates/core/src/lib.rs",
        &["vocabulary", "engines", "storage", "access"],
    ),
    (
        "pulse",
        "Cargo.toml",
        "src/lib.rs",
        &[
            "pipeline",
            "live transport",
            "http transport",
            "composition",
            "commands",
        ],
    ),
    // `pulse bench` and `pulse eval`, in a folder of their own: they use the server through its
    // crate, so no layer rule can reach them.
    (
        "pulse-tools",
        "crates/tools/Cargo.toml",
        "crates/tools/src/lib.rs",
        &[],
    ),
];

/// Files that are a crate's root or a binary's, not modules of the layers.
const ROOTS: &[&str] = &["main.rs", "lib.rs"];

/// The folders of the crates whose modules the layers hold.
const SOURCE_FOLDERS: &[&str] = &["crates/core/src", "src"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The module path of a file relative to `src/`: `http/api/live.rs` is `[http, api, live]`, `http/mod.rs`
/// is `[http]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every path a file names through `crate::` or `super::`, as absolute module paths; group
/// imports (`crate::{a, b::c}`) give one path per item. Comments are skipped.
fn imported_paths(text: &str, own: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    // Unit tests sit at the end of a file, in a module whose `super` is the file itself. A
    // folder's re-exports of its own children (`pub use self::x::Y`) are its face, not a use.
    let code: String = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| !l.trim_start().starts_with("pub use self::"))
        .collect::<Vec<_>>()
        .join("\n");
    let own_module = if is_mod_file {
        own.to_vec()
    } else {
        Vec::new()
    };
    let mut found = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", parent_of(own)),
        ("self::", own_module),
    ] {
        if prefix == "self::" && !is_mod_file {
            continue;
        }
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for tail in expand(rest) {
                let mut path = base.clone();
                path.extend(tail);
                found.push(path);
            }
        }
    }
    found
}

/// `super` of a file: in `a/b.rs` and in `a/b/mod.rs` it is `a`.
fn parent_of(own: &[String]) -> Vec<String> {
    let mut parent = own.to_vec();
    parent.pop();
    parent
}

/// The paths one `crate::`/`super::` occurrence names: `a::b::C` or `{a, b::{c, d}}`.
fn expand(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(inner) = text.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &inner[..end];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&body[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&body[start..]);
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(|item| {
                let item = item.trim();
                match item.find("::") {
                    Some(sep) if !item.starts_with('{') => under(&item[..sep], &item[sep + 2..]),
                    _ => vec![vec![ident(item)]],
                }
            })
            .collect();
    }
    let head = ident(text);
    if head.is_empty() {
        return Vec::new();
    }
    let rest = &text[head.len()..];
    match rest.strip_prefix("::") {
        Some(tail) => under(&head, tail),
        None => vec![vec![head]],
    }
}

/// The paths of `tail` (a use tree) each under `head`; `head` alone when the tail names none.
fn under(head: &str, tail: &str) -> Vec<Vec<String>> {
    let mut paths = expand(tail);
    if paths.is_empty() {
        paths.push(Vec::new());
    }
    for path in &mut paths {
        path.insert(0, head.to_owned());
    }
    paths
}

fn ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The file a module path lives in: the longest prefix that is a file of `src/`.
fn file_of(path: &[String], files: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains(p))
}

struct Crate {
    /// file (as module path) -> files it imports
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

/// The core's and the server's sources as one tree of modules: the server re-exports the
/// core's modules under their own names, so `crate::models` is one module in both crates.
fn read_crate() -> Crate {
    let mut texts = BTreeMap::new();
    for folder in SOURCE_FOLDERS {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        for file in &files(&root, "rs") {
            let relative = file.strip_prefix(&root).expect("under the folder");
            if ROOTS.iter().any(|r| relative == Path::new(r)) {
                continue;
            }
            let is_mod = relative.file_name().is_some_and(|n| n == "mod.rs");
            let previous = texts.insert(
                module_path(relative),
                (fs::read_to_string(file).expect("source is UTF-8"), is_mod),
            );
            assert!(
                previous.is_none(),
                "{} is in two crates",
                relative.display()
            );
        }
    }
    let known: BTreeSet<Vec<String>> = texts.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (own, (text, is_mod)) in &texts {
        let targets: BTreeSet<Vec<String>> = imported_paths(text, own, *is_mod)
            .iter()
            .filter_map(|p| file_of(p, &known))
            .filter(|t| t != own && !t.is_empty())
            .collect();
        edges.insert(own.clone(), targets);
    }
    Crate { edges }
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "lib".to_owned()
    } else {
        path.join("::")
    }
}

#[test]
fn imports_point_down_the_layers() {
    let krate = read_crate();
    let mut upward = Vec::new();
    for (from, targets) in &krate.edges {
        let Some(from_module) = from.first() else {
            continue;
        };
        let from_layer = layer_of(from_module);
        assert!(
            from_layer.is_some(),
            "src/{from_module} has no layer in LAYERS"
        );
        for to in targets {
            let to_module = &to[0];
            let to_layer = layer_of(to_module);
            assert!(to_layer.is_some(), "src/{to_module} has no layer in LAYERS");
            if to_layer > from_layer {
                upward.push(format!(
                    "{} ({}) -> {} ({})",
                    name(from),
                    LAYERS[from_layer.unwrap()].0,
                    name(to),
                    LAYERS[to_layer.unwrap()].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "{} imports point up a layer:\n{}",
        upward.len(),
        upward.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let krate = read_crate();
    let mut circles = Vec::new();
    // A file is in a circle when it can reach itself; report each circle once by its members.
    let mut seen = BTreeSet::new();
    for start in krate.edges.keys() {
        let reach = reachable(&krate.edges, start);
        if reach.contains(start) && !seen.contains(start) {
            let members: Vec<_> = krate
                .edges
                .keys()
                .filter(|f| reach.contains(*f) && reachable(&krate.edges, f).contains(start))
                .cloned()
                .collect();
            seen.extend(members.iter().cloned());
            circles.push(
                members
                    .iter()
                    .map(|m| name(m))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    assert!(
        circles.is_empty(),
        "{} import circles:\n{}",
        circles.len(),
        circles.join("\n")
    );
}

fn reachable(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    start: &Vec<String>,
) -> BTreeSet<Vec<String>> {
    let mut reach = BTreeSet::new();
    let mut stack: Vec<&Vec<String>> = edges
        .get(start)
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    while let Some(next) = stack.pop() {
        if reach.insert(next.clone()) {
            if let Some(t) = edges.get(next) {
                stack.extend(t.iter());
            }
        }
    }
    reach
}

/// The modules a crate root declares (`pub mod x;`) and those it re-exports from a crate below
/// (`pub use pulse_core::{x, y};`).
fn declared_modules(root: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(root))
        .expect("crate root is readable");
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut declared = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            declared.insert(ident(rest));
        }
    }
    let mut reexported = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("pub use pulse_core::") {
        rest = &rest[at + "pub use pulse_core::".len()..];
        for path in expand(rest) {
            reexported.insert(path[0].clone());
        }
    }
    (declared, reexported)
}

/// The workspace dependencies a manifest's `[dependencies]` names (not its dev-dependencies).
fn crate_dependencies(manifest: &str) -> BTreeSet<String> {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(manifest))
        .expect("manifest is readable");
    let mut section = "";
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[dependencies]" {
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            if CRATES.iter().any(|(krate, ..)| *krate == name) {
                found.insert(name.to_owned());
            }
        }
    }
    found
}

/// The modules of a crate's layers (a row of [`CRATES`]), once its root is checked to declare
/// exactly those; and the modules its root re-exports.
fn declared_layer_modules(
    (_, _, root, layers): (&str, &str, &str, &[&str]),
) -> (BTreeSet<String>, BTreeSet<String>) {
    let modules = modules_of(layers);
    let (declared, reexported) = declared_modules(root);
    assert_eq!(declared, modules, "{root} declares its layers' modules");
    (modules, reexported)
}

fn modules_of(layers: &[&str]) -> BTreeSet<String> {
    LAYERS
        .iter()
        .filter(|(layer, _)| layers.contains(layer))
        .flat_map(|(_, modules)| modules.iter().map(|m| m.to_string()))
        .collect()
}

#[test]
fn each_crate_compiles_its_layers_and_depends_only_on_the_crates_below() {
    let every_layer: Vec<&str> = CRATES
        .iter()
        .flat_map(|(.., l)| l.iter().copied())
        .collect();
    let named: Vec<&str> = LAYERS.iter().map(|(layer, _)| *layer).collect();
    assert_eq!(
        every_layer, named,
        "the crates take the layers in order, each once"
    );

    let (core, _) = declared_layer_modules(CRATES[0]);
    let (_, server_reexported) = declared_layer_modules(CRATES[1]);
    assert_eq!(
        server_reexported, core,
        "{} re-exports the core's modules under their names",
        CRATES[1].2
    );

    for (i, (krate, manifest, ..)) in CRATES.iter().enumerate() {
        let allowed: BTreeSet<String> = CRATES[..i].iter().map(|c| c.0.to_owned()).collect();
        let depends = crate_dependencies(manifest);
        assert!(
            depends.is_subset(&allowed),
            "{krate} depends on {depends:?}; it may depend only on {allowed:?}"
        );
    }
}

/// The crate that embeds the migrations (`refinery::embed_migrations!` reads the folder when the
/// crate compiles) has the build script that makes cargo rebuild it when a migration is added;
/// cargo does not otherwise notice a new file there, and a build script on another crate would
/// leave the embedded set stale.
#[test]
fn the_crate_that_embeds_the_migrations_rebuilds_when_one_is_added() {
    let embedding: Vec<&str> = SOURCE_FOLDERS
        .iter()
        .copied()
        .filter(|folder| {
            files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(folder), "rs")
                .iter()
                .any(|f| {
                    fs::read_to_string(f).is_ok_and(|t| t.contains("refinery::embed_migrations!"))
                })
        })
        .collect();
    assert_eq!(
        embedding.len(),
        1,
        "one crate embeds the migrations: {embedding:?}"
    );
    let krate = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(embedding[0])
        .parent()
        .expect("a crate folder")
        .to_path_buf();
    let script = fs::read_to_string(krate.join("build.rs"))
        .unwrap_or_else(|e| panic!("{}/build.rs: {e}", krate.display()));
    let watched = script
        .lines()
        .filter_map(|l| l.split("cargo:rerun-if-changed=").nth(1))
        .map(|p| krate.join(p.trim_end_matches(['"', ')', ';'])))
        .any(|p| {
            p.canonicalize().ok()
                == Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .canonicalize()
                    .ok()
        });
    assert!(
        watched,
        "{}/build.rs does not watch migrations/",
        krate.display()
    );
}
