//! Shared pieces of every reproduction report: loss plots (plotters, PNG), progress bars
//! (indicatif) and Markdown tables.

use std::path::Path;
use std::sync::Once;

use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;

use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is compiled in, so registration cannot fail for a valid build.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One named curve of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Draw thin and translucent (e.g. raw values under a smoothed curve).
    pub faint: bool,
}

impl Series {
    /// A curve from `label` and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, faint: false }
    }

    /// Marks the curve as faint.
    pub fn faint(mut self) -> Self {
        self.faint = true;
        self
    }
}

/// Exponential moving average of `ys` (for readable loss curves).
pub fn smooth(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc: Option<f64> = None;
    for &(x, y) in points {
        let v = match acc {
            None => y,
            Some(a) => alpha * y + (1.0 - alpha) * a,
        };
        acc = Some(v);
        out.push((x, v));
    }
    out
}

/// Draws `series` as a line plot (log-scale y when `log_y`) into a PNG at `path`.
pub fn plot_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    register_font();
    let draw_err =
        |e: String| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if !y.is_finite() || (log_y && y <= 0.0) {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 1e-3, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 * 1.1 + 1e-6;
    }
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.3}"))
                .draw()
                .map_err(|e| draw_err(e.to_string()))?;
            for (i, s) in series.iter().enumerate() {
                let c = colors[i % colors.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&(_, y)| y.is_finite() && (!log_y || y > 0.0))
                    .collect();
                let style = if s.faint { c.mix(0.3).stroke_width(1) } else { c.stroke_width(2) };
                chart
                    .draw_series(LineSeries::new(pts, style))
                    .map_err(|e| draw_err(e.to_string()))?
                    .label(s.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| draw_err(e.to_string()))?;
        }};
    }
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if log_y {
        let chart = builder
            .build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())
            .map_err(|e| draw_err(e.to_string()))?;
        draw!(chart);
    } else {
        let pad = (y1 - y0) * 0.05;
        let chart = builder
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| draw_err(e.to_string()))?;
        draw!(chart);
    }
    root.present().map_err(|e| draw_err(e.to_string()))?;
    Ok(())
}

/// A progress bar for `len` steps with ETA and a live message (loss, metric).
pub fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{prefix:>12.bold} [{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} (eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(prefix.to_string());
    pb
}

/// Formats an integer with thousands separators: `31030658` → `31,030,658`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Cosine learning-rate decay from `lr` to `lr * floor` over `total` steps, after `warmup`
/// linear warm-up steps.
pub fn cosine_lr(lr: f64, step: usize, total: usize, warmup: usize, floor: f64) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    lr * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
}

/// Renders a Markdown table.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_writes_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("loss.png");
        let pts: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 1.0 / (1.0 + i as f64))).collect();
        plot_lines(&p, "loss", "step", "loss", &[Series::new("train", smooth(&pts, 0.3))], true)
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 2000);
    }

    #[test]
    fn thousands_and_cosine() {
        assert_eq!(thousands(31_030_658), "31,030,658");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1000), "-1,000");
        assert!((cosine_lr(1.0, 0, 100, 0, 0.0) - 1.0).abs() < 1e-12);
        assert!(cosine_lr(1.0, 100, 100, 0, 0.1) - 0.1 < 1e-12);
        assert!((cosine_lr(1.0, 4, 100, 10, 0.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn table_renders() {
        let t = markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }
}
