//! `pulse eval`: scores on labelled data, each printed beside a simple baseline measured in
//! the same run.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;

use crate::config::{AnalyzerSettings, Backend};

pub mod calibration;
pub mod forecast;
pub mod language;
pub mod relevance;
pub mod sentiment;
pub mod stories;
pub mod virality;

/// The analyzer an evaluation reads its texts with, built as the server builds it.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzerArgs {
    /// Analyzer backend: `onnx` (model bundles, the server's default) or `lexicon`.
    #[arg(long, default_value = "onnx")]
    pub backend: String,
    /// Model bundle directory (repeatable); defaults to the bundled model.
    #[arg(long = "bundle")]
    pub bundles: Vec<PathBuf>,
    /// Path of libonnxruntime.so; defaults to ORT_DYLIB_PATH.
    #[arg(long)]
    pub onnxruntime: Option<PathBuf>,
}

impl AnalyzerArgs {
    /// The lexicon backend, needing no model files.
    pub fn lexicon() -> Self {
        AnalyzerArgs {
            backend: "lexicon".into(),
            bundles: Vec::new(),
            onnxruntime: None,
        }
    }

    /// The backend and the settings to build it with, `intra_threads` per session.
    pub fn settings(&self, intra_threads: usize) -> anyhow::Result<(Backend, AnalyzerSettings)> {
        let backend: Backend =
            serde_json::from_value(serde_json::Value::String(self.backend.clone()))
                .with_context(|| format!("unknown backend `{}`", self.backend))?;
        let mut settings = AnalyzerSettings {
            intra_threads,
            onnxruntime: self.onnxruntime.clone(),
            ..AnalyzerSettings::default()
        };
        if !self.bundles.is_empty() {
            settings.bundles = self.bundles.clone();
        }
        Ok((backend, settings))
    }
}

/// The lines of the JSON-lines file at `path` that are not blank, read one at a time, each
/// parsed with its line number (from 1); `at` says where a line that does not parse stands.
pub(crate) fn json_lines<T: DeserializeOwned>(
    path: &Path,
    at: impl Fn(usize) -> String,
) -> anyhow::Result<impl Iterator<Item = anyhow::Result<(usize, T)>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let lines = std::io::BufReader::new(file).lines().enumerate();
    Ok(lines.filter_map(move |(n, line)| {
        let line = match line {
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => line,
            Err(e) => return Some(Err(e.into())),
        };
        Some(
            serde_json::from_str(&line)
                .map(|parsed| (n + 1, parsed))
                .with_context(|| at(n + 1)),
        )
    }))
}
