//! The digest's one chart: posts per bucket (the area, left axis) and the share of them that
//! were negative (the line, right axis) over the period, drawn here into a PNG. The font is
//! compiled in (Ubuntu Light, from egui's default fonts), so the host needs neither a browser
//! nor fonts of its own.

use std::sync::Once;

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use super::content::DigestSeries;

/// The image's size in pixels: wide enough for an e-mail's column.
pub const WIDTH: u32 = 720;
pub const HEIGHT: u32 = 300;

const FONT: &str = "pulse-sans";
const VOLUME: RGBColor = RGBColor(59, 130, 246);
const NEGATIVE: RGBColor = RGBColor(220, 38, 38);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font, checked by the test below.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// The chart of `series` over `[from, to)` as a PNG.
pub fn png(
    series: &DigestSeries,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    draw(&mut rgb, series, from, to).map_err(|e| format!("drawing the chart: {e}"))?;
    encode(&rgb)
}

fn draw(
    rgb: &mut [u8],
    series: &DigestSeries,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let points: Vec<(i64, i64, f64)> = series
        .points
        .iter()
        .map(|p| {
            (
                p.at.timestamp(),
                p.stats.posts,
                p.stats.sentiment.negative_share * 100.0,
            )
        })
        .collect();
    let max_posts = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let x = from.timestamp()..to.timestamp().max(from.timestamp() + 60);
    let span_days = (to - from).num_days();
    let label_time = move |t: &i64| {
        let at = DateTime::<Utc>::from_timestamp(*t, 0).unwrap_or_default();
        if span_days >= 2 {
            at.format("%a %d").to_string()
        } else {
            at.format("%H:%M").to_string()
        }
    };
    let font = |size: u32| (FONT, size).into_font();
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(52)
        .right_y_label_area_size(44)
        .caption("Posts and negative share (UTC)", font(16))
        .build_cartesian_2d(x.clone(), 0i64..(max_posts + max_posts / 10 + 1))?
        .set_secondary_coord(x, 0f64..100f64);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&label_time)
        .label_style(font(12))
        .y_desc("posts")
        .axis_desc_style(font(12))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.0}%"))
        .label_style(font(12))
        .y_desc("negative")
        .axis_desc_style(font(12))
        .draw()?;
    chart.draw_series(
        AreaSeries::new(
            points.iter().map(|p| (p.0, p.1)),
            0,
            VOLUME.mix(0.25).filled(),
        )
        .border_style(VOLUME.stroke_width(2)),
    )?;
    chart.draw_secondary_series(LineSeries::new(
        points.iter().map(|p| (p.0, p.2)),
        NEGATIVE.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

fn encode(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| format!("encoding the chart: {e}"))?;
    writer
        .write_image_data(rgb)
        .map_err(|e| format!("encoding the chart: {e}"))?;
    writer
        .finish()
        .map_err(|e| format!("encoding the chart: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::metrics::{Bucket, SeriesPoint};
    use crate::models::metrics::Stats;

    #[test]
    fn a_chart_is_a_png_of_its_size_with_the_series_drawn() {
        let from: DateTime<Utc> = "2026-11-02T00:00:00Z".parse().unwrap();
        let to: DateTime<Utc> = "2026-11-09T00:00:00Z".parse().unwrap();
        let points = (0..168)
            .map(|h| {
                let mut stats = Stats {
                    posts: 100 + (h % 24) * 10,
                    ..Default::default()
                };
                stats.sentiment.negative_share = 0.2;
                SeriesPoint {
                    at: from + chrono::TimeDelta::hours(h),
                    stats,
                }
            })
            .collect();
        let series = DigestSeries {
            bucket: Bucket::OneHour,
            points,
        };
        let bytes = png(&series, from, to).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let colour_near = |c: RGBColor| {
            pixels
                .chunks(3)
                .filter(|p| {
                    (p[0] as i32 - c.0 as i32).abs() < 8
                        && (p[1] as i32 - c.1 as i32).abs() < 8
                        && (p[2] as i32 - c.2 as i32).abs() < 8
                })
                .count()
        };
        assert!(colour_near(VOLUME) > 500, "the volume is drawn");
        assert!(colour_near(NEGATIVE) > 500, "the negative share is drawn");
        // Text was drawn: dark pixels beyond the axes' lines.
        let dark = pixels
            .chunks(3)
            .filter(|p| p[0] < 90 && p[1] < 90 && p[2] < 90)
            .count();
        assert!(dark > 800, "labels drawn ({dark} dark pixels)");
        // An empty period still draws its axes.
        let empty = DigestSeries {
            bucket: Bucket::OneHour,
            points: Vec::new(),
        };
        assert!(png(&empty, from, to).unwrap().len() > 1_000);
    }
}
