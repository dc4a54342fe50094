//! The repository's files by extension, for the tests that read it as text (the docs, the
//! layers, the house rules). Shared by path, so each stays a binary of the standard library
//! alone.

use std::fs;
use std::path::{Path, PathBuf};

/// Folders that hold nothing of ours: build output, installed packages, git's own files.
const NOT_OURS: &[&str] = &["target", "node_modules", ".git", ".pulse"];

/// Files under `dir` (recursively) whose name ends with `.{extension}`, sorted, outside
/// [`NOT_OURS`].
pub fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            if path.is_dir() {
                if !NOT_OURS.contains(&entry.file_name().to_string_lossy().as_ref()) {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == extension) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
