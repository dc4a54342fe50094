//! The files a part of the benchmark writes into `--out-dir`: its report as Markdown and JSON,
//! and its charts.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::plot::{self, Panel};

/// Writes `<name>.md` (`markdown` of the report) and `<name>.json` into `out_dir`, creating it.
pub(crate) fn write_report<R: Serialize>(
    out_dir: &Path,
    name: &str,
    report: &R,
    markdown: fn(&R) -> String,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    std::fs::write(out_dir.join(format!("{name}.md")), markdown(report))?;
    std::fs::write(
        out_dir.join(format!("{name}.json")),
        serde_json::to_vec_pretty(report)?,
    )?;
    Ok(())
}

/// Writes `panels` under `title` as `<name>.svg` into `out_dir`, and as `<name>.png` when
/// Chromium is there to draw it (a missing PNG is said, not an error).
pub(crate) fn write_charts(
    out_dir: &Path,
    name: &str,
    title: &str,
    panels: &[Panel],
) -> anyhow::Result<()> {
    let (svg, png) = (
        out_dir.join(format!("{name}.svg")),
        out_dir.join(format!("{name}.png")),
    );
    std::fs::write(&svg, plot::svg(title, panels))?;
    if let Err(e) = plot::render_png(&svg, &png, plot::size(panels.len())) {
        eprintln!("{name}.png not written: {e:#}");
    }
    Ok(())
}
