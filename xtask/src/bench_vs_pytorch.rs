//! `cargo xtask bench-vs-pytorch`: unet-rs against PyTorch eager, model by model, in one
//! launch: the matrix-product peak first, then one process pair (our bench binary + its
//! PyTorch worker) per model so that each peak RSS belongs to one model, then the table
//! (`results.md`, `results.json`) and, with `--scaling`, the time/memory-vs-size plot.
//!
//! ```text
//! cargo xtask bench-vs-pytorch [--models a,b] [--rounds N] [--device cpu|cuda] [--threads N]
//!                              [--autocast] [--scaling] [--tiny] [--out DIR]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::util::{cargo, run_cmd, step, workspace_root};

/// Models of the table (`benches/vs_pytorch/models.rs` builds them).
const MODELS: &[&str] = &["algorithm1", "wave-unet", "unet3d", "ddpm", "sd-cond"];

/// Input sides of the scaling curves: 2D Algorithm 1 U-Net (batch 4) and 3D U-Net (batch 1).
const SCALING: &[(&str, &[i64])] =
    &[("algorithm1", &[32, 64, 96, 128, 192]), ("unet3d", &[16, 24, 32, 40])];

/// Flags of the subcommand.
#[derive(Args, Debug)]
pub struct BenchVsPytorch {
    /// Comma-separated models (default: all of algorithm1, wave-unet, unet3d, ddpm, sd-cond).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Alternating timing rounds per model (after one warm-up round).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads of both sides (default: libtorch's default, the core count).
    #[arg(long)]
    threads: Option<i32>,
    /// fp16 autocast on both sides (CUDA only: tch 0.24 exposes CUDA autocast, no CPU/bf16).
    #[arg(long)]
    autocast: bool,
    /// Also measure time and peak RSS against input size (2D and 3D) and plot them.
    #[arg(long)]
    scaling: bool,
    /// Minimal models of the same designs (the smoke test).
    #[arg(long)]
    tiny: bool,
    /// Results folder (default `target/bench-vs-pytorch/<device>`).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn common(cmd: &mut Command, a: &BenchVsPytorch) {
    cmd.args(["--device", &a.device]);
    if let Some(t) = a.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
}

/// Builds the bench binary, runs every model, writes and prints the table.
pub fn run(a: &BenchVsPytorch) -> Result<()> {
    let env = crate::setup::run()?;
    let models: Vec<String> = if a.models.is_empty() {
        MODELS.iter().map(|s| s.to_string()).collect()
    } else {
        a.models.clone()
    };
    if let Some(m) = models.iter().find(|m| !MODELS.contains(&m.as_str())) {
        bail!("unknown model `{m}` (known: {})", MODELS.join(", "));
    }
    let out = a.out.clone().unwrap_or_else(|| {
        workspace_root().join("target").join("bench-vs-pytorch").join(a.device.replace(':', "-"))
    });
    // Stale rows of an earlier launch must not mix into this table.
    for sub in ["rows", "scaling", "peak"] {
        let d = out.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("clearing {}", d.display()))?;
        }
    }
    std::fs::create_dir_all(out.join("rows"))?;

    step("cargo build -p unet-benches --bin bench-vs-pytorch");
    run_cmd(cargo(&env).args(["build", "-p", "unet-benches", "--bin", "bench-vs-pytorch"]))?;
    let bin = workspace_root().join("target").join("debug").join("bench-vs-pytorch");
    let bench = |args: &[&str]| -> Command {
        let mut c = Command::new(&bin);
        env.apply(&mut c);
        c.args(args);
        common(&mut c, a);
        c
    };

    // The matrix-product peak, measured before every model and at the end (the table uses the
    // best: on a shared machine a single measurement can land in a busy moment).
    let mut peaks = 0;
    let mut peak = || -> Result<()> {
        step("matrix-product peak");
        let file = out.join("peak").join(format!("{peaks:02}.json"));
        peaks += 1;
        let mut c = bench(&["peak", "--out", &path_str(&file)?]);
        if a.tiny {
            c.arg("--tiny");
        }
        run_cmd(&mut c)
    };
    let rounds = a.rounds.to_string();
    let run_model = |model: &str, side: Option<i64>, file: &Path| -> Result<()> {
        let mut c =
            bench(&["run", "--model", model, "--rounds", &rounds, "--out", &path_str(file)?]);
        if let Some(s) = side {
            c.args(["--side", &s.to_string()]);
        }
        if a.tiny {
            c.arg("--tiny");
        }
        if a.autocast {
            c.arg("--autocast");
        }
        run_cmd(&mut c)
    };
    for m in &models {
        peak()?;
        step(&format!("{m}: unet-rs vs PyTorch eager"));
        run_model(m, None, &out.join("rows").join(format!("{m}.json")))?;
    }
    if a.scaling {
        for (m, sides) in SCALING {
            for s in *sides {
                step(&format!("scaling: {m} side {s}"));
                run_model(m, Some(*s), &out.join("scaling").join(format!("{m}-{s:03}.json")))?;
            }
        }
    }
    peak()?;
    step("table");
    let mut report = Command::new(&bin);
    env.apply(&mut report);
    run_cmd(report.args(["report", "--dir", &path_str(&out)?]))?;
    eprintln!("results in {}", out.display());
    Ok(())
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(String::from).with_context(|| format!("non-UTF-8 path {}", p.display()))
}
