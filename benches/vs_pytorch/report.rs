//! The table (markdown + JSON) from the per-model rows of one launch, and the scaling plot.
//!
//! Layout of a results folder (what `cargo xtask bench-vs-pytorch` writes):
//! `peak/NN.json` (matrix-product peaks; the best is used), `rows/<model>.json` (one per model),
//! `scaling/<model>-<side>.json` (optional); written here: `results.md`, `results.json`,
//! `scaling.png` (when scaling rows exist).

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::{json, Value};

fn read_dir_json(dir: &Path) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(out) };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        out.push(serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?);
    }
    Ok(out)
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn mib(v: &Value, k: &str) -> f64 {
    f(v, k) / (1024.0 * 1024.0)
}

/// The markdown table of `rows` with the matrix-product peak `peak` (GFLOP/s).
pub fn table(rows: &[Value], peak: f64) -> String {
    let mut s = String::from(
        "| model | fwd ours ms | fwd PyTorch ms | fwd ratio | fwd GFLOP/s ours (of peak) | \
         train ours ms | train PyTorch ms | train ratio | train GFLOP/s ours (of peak) | \
         peak RSS ours MiB | peak RSS PyTorch MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let gf = |flops: &str, ms: &str| f(r, flops) / (f(r, ms) * 1e-3) / 1e9;
        let (gf_f, gf_t) =
            (gf("flops_forward", "ours_forward_ms"), gf("flops_train", "ours_train_ms"));
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | **{:.3}** | {:.1} ({:.2}) | {:.1} | {:.1} | **{:.3}** | {:.1} ({:.2}) | {:.0} | {:.0} |\n",
            r["model"].as_str().unwrap_or("?"),
            f(r, "ours_forward_ms"),
            f(r, "pytorch_forward_ms"),
            f(r, "forward_ratio"),
            gf_f,
            gf_f / peak,
            f(r, "ours_train_ms"),
            f(r, "pytorch_train_ms"),
            f(r, "train_ratio"),
            gf_t,
            gf_t / peak,
            mib(r, "ours_peak_rss"),
            mib(r, "pytorch_peak_rss"),
        ));
    }
    s
}

fn notes(rows: &[Value]) -> String {
    let mut s = String::from(
        "\n| model | what | params | GFLOP fwd / train | output rel. diff | loss rel. diff | \
         grad-norm rel. diff | RSS at start ours / PyTorch MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} / {:.2} | {:.1e} | {:.1e} | {:.1e} | {:.0} / {:.0} |\n",
            r["model"].as_str().unwrap_or("?"),
            r["note"].as_str().unwrap_or(""),
            r["params"],
            f(r, "flops_forward") / 1e9,
            f(r, "flops_train") / 1e9,
            f(r, "forward_rel_diff"),
            f(r, "loss_rel_diff"),
            f(r, "grad_norm_rel_diff"),
            mib(r, "ours_base_rss"),
            mib(r, "pytorch_base_rss"),
        ));
    }
    s
}

/// Reads `dir`, writes `results.md`, `results.json` (and `scaling.png`), prints the table.
pub fn run(dir: &Path) -> Result<()> {
    let peaks = read_dir_json(&dir.join("peak"))?;
    let peak_v = peaks
        .iter()
        .max_by(|a, b| f(a, "matmul_gflops").total_cmp(&f(b, "matmul_gflops")))
        .cloned()
        .context("no matrix-product peak in peak/")?;
    let peak = f(&peak_v, "matmul_gflops");
    let all_peaks: Vec<String> =
        peaks.iter().map(|p| format!("{:.0}", f(p, "matmul_gflops"))).collect();
    let mut rows = read_dir_json(&dir.join("rows"))?;
    let order = |r: &Value| {
        let m = r["model"].as_str().unwrap_or("");
        crate::models::ALL.iter().position(|n| *n == m).unwrap_or(usize::MAX)
    };
    rows.sort_by_key(order);
    let first = rows.first().cloned().unwrap_or(Value::Null);
    let header = format!(
        "device {}, {} threads on both sides, {} alternating rounds (medians; ratio = median of \
         per-round ours/PyTorch), PyTorch {} eager; float32 matmul peak {:.1} GFLOP/s \
         (best {}×{} product of the {} measured in this launch: {}); GFLOP counted by torch.utils.flop_counter on the \
         reference{}.\n\n",
        first["device"].as_str().unwrap_or("?"),
        first["threads"],
        first["rounds"],
        first["torch"].as_str().unwrap_or("?"),
        peak,
        peak_v["n"],
        peak_v["n"],
        peaks.len(),
        all_peaks.join(", "),
        if first["autocast"] == json!(true) { "; fp16 autocast" } else { "" },
    );
    let md = header + &table(&rows, peak) + &notes(&rows);
    print!("{md}");
    std::fs::write(dir.join("results.md"), &md)?;
    let all = json!({"peak": peak_v, "peaks": peaks, "rows": rows});
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&all)? + "\n")?;
    let scaling = read_dir_json(&dir.join("scaling"))?;
    if !scaling.is_empty() {
        let png = dir.join("scaling.png");
        plot_scaling(&scaling, &png)?;
        println!("\nscaling plot: {}", png.display());
        std::fs::write(dir.join("scaling.json"), serde_json::to_string_pretty(&scaling)? + "\n")?;
    }
    Ok(())
}

type Series = Vec<(f64, f64)>;

fn series(rows: &[Value], model: &str, key: &str, scale: f64) -> Series {
    let mut v: Series = rows
        .iter()
        .filter(|r| r["model"] == json!(model))
        .map(|r| {
            let side = f(r, "side");
            let dims = if model == "unet3d" { 3 } else { 2 };
            (side.powi(dims), f(r, key) * scale)
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    lines: &[(&str, Series, RGBColor)],
) -> Result<()> {
    let xs = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0));
    let ys = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1));
    let x_max = xs.fold(1.0f64, f64::max) * 1.05;
    let y_max = ys.filter(|y| y.is_finite()).fold(1e-9f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("input elements per sample (side^dims)")
        .y_desc(y_label)
        .draw()
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    for (name, pts, color) in lines {
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    Ok(())
}

/// unet-core's bundled DejaVu Sans (plotters' ab_glyph backend has no system fonts).
static FONT: &[u8] = include_bytes!("../../crates/unet-core/assets/DejaVuSans.ttf");

/// Time and peak RSS against input size: algorithm1 (2D) and unet3d (3D), ours and PyTorch.
pub fn plot_scaling(rows: &[Value], png: &Path) -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the bundled font does not load"))?;
    let root = BitMapBackend::new(png, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    let areas = root.split_evenly((2, 2));
    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    let green = RGBColor(44, 160, 44);
    let red = RGBColor(214, 39, 40);
    let mib = 1.0 / (1024.0 * 1024.0);
    for (i, (model, label)) in
        [("algorithm1", "2D Algorithm 1 U-Net"), ("unet3d", "3D U-Net")].into_iter().enumerate()
    {
        let s = |k: &str, scale: f64| series(rows, model, k, scale);
        panel(
            &areas[2 * i],
            &format!("{label}: time"),
            "ms",
            &[
                ("forward ours", s("ours_forward_ms", 1.0), blue),
                ("forward PyTorch", s("pytorch_forward_ms", 1.0), orange),
                ("train ours", s("ours_train_ms", 1.0), green),
                ("train PyTorch", s("pytorch_train_ms", 1.0), red),
            ],
        )?;
        panel(
            &areas[2 * i + 1],
            &format!("{label}: peak RSS (fwd + train)"),
            "MiB",
            &[
                ("ours", s("ours_peak_rss", mib), blue),
                ("PyTorch", s("pytorch_peak_rss", mib), orange),
            ],
        )?;
    }
    root.present().map_err(|e| anyhow::anyhow!("plot {}: {e}", png.display()))?;
    Ok(())
}
