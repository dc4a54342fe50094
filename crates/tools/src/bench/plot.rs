//! Line charts for benchmark reports, written as SVG by hand (no plotting dependency to
//! build) and turned into PNG by headless Chromium when it is installed, so a report's
//! picture comes from the benchmark run itself.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

/// Colours of successive series (colour-blind safe).
const COLOURS: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line (a ceiling).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub label: String,
    pub y: f64,
}

/// One chart panel.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic y axis (latencies spanning orders of magnitude).
    pub log_y: bool,
    /// Draw y = x, dashed (throughput against offered load).
    pub diagonal: bool,
    pub series: Vec<Series>,
    pub rules: Vec<Rule>,
}

const PANEL_W: f64 = 560.0;
const PANEL_H: f64 = 420.0;
const MARGIN_L: f64 = 78.0;
const MARGIN_R: f64 = 20.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 96.0;

/// Panels side by side, with a title above them, as an SVG document.
pub(crate) fn svg(title: &str, panels: &[Panel]) -> String {
    let width = PANEL_W * panels.len() as f64;
    let height = PANEL_H + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, Liberation Sans, Arial, sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>\n",
        width / 2.0,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut out, panel, i as f64 * PANEL_W, 30.0);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, p: &Panel, left: f64, top: f64) {
    let (x0, y0) = (left + MARGIN_L, top + MARGIN_T);
    let (w, h) = (PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B);
    let points = p.series.iter().flat_map(|s| s.points.iter().copied());
    let x_max = nice_ceiling(points.clone().map(|(x, _)| x).fold(0.0, f64::max));
    let mut y_values: Vec<f64> = points.map(|(_, y)| y).collect();
    y_values.extend(p.rules.iter().map(|r| r.y));
    if p.diagonal {
        y_values.push(x_max);
    }
    let (y_min, y_max) = if p.log_y {
        let positive = y_values.iter().copied().filter(|y| *y > 0.0);
        let lo = positive.clone().fold(f64::INFINITY, f64::min);
        let hi = positive.fold(0.0, f64::max);
        if hi <= 0.0 {
            (1.0, 10.0)
        } else {
            (
                10f64.powf(lo.log10().floor()),
                10f64
                    .powf(hi.log10().ceil())
                    .max(10f64.powf(lo.log10().floor() + 1.0)),
            )
        }
    } else {
        (
            0.0,
            nice_ceiling(y_values.iter().copied().fold(0.0, f64::max)),
        )
    };
    let sx = |x: f64| x0 + w * if x_max > 0.0 { x / x_max } else { 0.0 };
    let sy = |y: f64| {
        let f = if p.log_y {
            (y.max(y_min).log10() - y_min.log10()) / (y_max.log10() - y_min.log10())
        } else if y_max > 0.0 {
            y / y_max
        } else {
            0.0
        };
        y0 + h * (1.0 - f)
    };

    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"14\" text-anchor=\"middle\">{}</text>",
        x0 + w / 2.0,
        y0 - 14.0,
        escape(&p.title)
    );
    // Grid and ticks.
    for i in 0..=5 {
        let x = x_max * i as f64 / 5.0;
        let px = sx(x);
        let _ = writeln!(
            out,
            "<line x1=\"{px}\" y1=\"{y0}\" x2=\"{px}\" y2=\"{}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{px}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            y0 + h,
            y0 + h + 16.0,
            short(x)
        );
    }
    let y_ticks: Vec<f64> = if p.log_y {
        let (a, b) = (y_min.log10().round() as i32, y_max.log10().round() as i32);
        (a..=b).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| y_max * i as f64 / 5.0).collect()
    };
    for y in y_ticks {
        let py = sy(y);
        let _ = writeln!(
            out,
            "<line x1=\"{x0}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            x0 + w,
            x0 - 6.0,
            py + 4.0,
            short(y)
        );
    }
    let _ = writeln!(
        out,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate({},{}) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        x0 + w / 2.0,
        y0 + h + 36.0,
        escape(&p.x_label),
        left + 16.0,
        y0 + h / 2.0,
        escape(&p.y_label)
    );
    if p.diagonal {
        let _ = writeln!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>",
            sx(0.0),
            sy(0.0),
            sx(x_max),
            sy(x_max.min(y_max))
        );
    }
    for rule in &p.rules {
        let py = sy(rule.y);
        let _ = writeln!(
            out,
            "<line x1=\"{x0}\" y1=\"{py}\" x2=\"{}\" y2=\"{py}\" stroke=\"#b00\" stroke-dasharray=\"2 3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#b00\" text-anchor=\"end\">{}</text>",
            x0 + w,
            x0 + w - 4.0,
            py - 4.0,
            escape(&rule.label)
        );
    }
    let mut legend_x = x0;
    let legend_y = y0 + h + 62.0;
    for (i, s) in p.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(_, y)| !p.log_y || *y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for point in &path {
            let (cx, cy) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                out,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{legend_x}\" y1=\"{legend_y}\" x2=\"{}\" y2=\"{legend_y}\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            legend_x + 22.0,
            legend_x + 27.0,
            legend_y + 4.0,
            escape(&s.label)
        );
        legend_x += 38.0 + 7.0 * s.label.len() as f64;
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label: 12000 → "12k", 0.5 → "0.5".
fn short(v: f64) -> String {
    if v >= 1_000.0 {
        let k = v / 1_000.0;
        if (k - k.round()).abs() < 1e-9 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else if v >= 1.0 || v == 0.0 {
        format!("{}", (v * 100.0).round() / 100.0)
    } else {
        format!("{v}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders an SVG file to PNG with headless Chromium (`CHROMIUM_PATH`, default
/// `/usr/bin/chromium`) at the SVG's own size.
pub(crate) fn render_png(svg_path: &Path, png_path: &Path, size: (u32, u32)) -> anyhow::Result<()> {
    let chromium =
        std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let svg_path = svg_path
        .canonicalize()
        .with_context(|| format!("{} is missing", svg_path.display()))?;
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(format!("file://{}", svg_path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {chromium} to render the PNG"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "{chromium} exited with {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{chromium} did not render the PNG within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::ensure!(
        png_path.exists(),
        "{chromium} wrote no {}",
        png_path.display()
    );
    Ok(())
}

/// The pixel size of an SVG made by [`svg`] with `panels` panels.
pub(crate) fn size(panels: usize) -> (u32, u32) {
    ((PANEL_W * panels as f64) as u32, (PANEL_H + 30.0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings_and_labels() {
        assert_eq!(nice_ceiling(37_000.0), 50_000.0);
        assert_eq!(nice_ceiling(20_000.0), 20_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(short(12_000.0), "12k");
        assert_eq!(short(2_500.0), "2.5k");
        assert_eq!(short(0.1), "0.1");
    }

    #[test]
    fn draws_every_series_and_escapes_text() {
        let panel = Panel {
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: true,
            diagonal: false,
            series: vec![Series {
                label: "1 process".into(),
                points: vec![(1.0, 5.0), (2.0, 500.0)],
            }],
            rules: vec![],
        };
        let svg = svg(
            "t",
            &[
                panel.clone(),
                Panel {
                    log_y: false,
                    diagonal: true,
                    ..panel
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(svg.starts_with("<svg"));
    }
}
