//! `cargo xtask bench-ddp`: training throughput of one process against N data-parallel
//! processes on this machine (same per-process batch, OMP threads split between processes),
//! alternating the two in one launch, with the full-size DDPM CIFAR-10 U-Net.

use std::process::Command;

use anyhow::{Context, Result};

use crate::reproduce::launch;
use crate::util::{cargo, run_cmd, step, workspace_root};

/// Options of the comparison.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Processes of the data-parallel side.
    #[arg(long, default_value_t = 2)]
    pub nproc: usize,
    /// Alternating rounds (each runs both sides once); medians are reported.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Timed optimiser steps per run (after one warm-up step).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Images per process and step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
}

fn images_per_s(path: &std::path::Path) -> Result<(f64, u64)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no report at {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let ips = v["images_per_s"].as_f64().context("report without images_per_s")?;
    Ok((ips, v["params"].as_u64().unwrap_or(0)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the comparison and prints a markdown table.
pub fn run(a: &Args) -> Result<()> {
    anyhow::ensure!(a.nproc >= 2 && a.rounds >= 1, "need --nproc ≥ 2 and --rounds ≥ 1");
    let env = crate::setup::run()?;
    crate::test::ensure_gloo_headers()?;
    step("building unet-core");
    run_cmd(cargo(&env).args(["build", "--quiet", "-p", "unet-core", "--bin", "unet-core"]))?;
    let bin = workspace_root().join("target").join("debug").join("unet-core");
    let dir = tempfile_dir()?;
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
    let common = |cmd: &mut Command, report: &std::path::Path| {
        env.apply(cmd);
        cmd.args([
            "train-throughput",
            "--steps",
            &a.steps.to_string(),
            "--batch",
            &a.batch.to_string(),
        ])
        .arg("--report")
        .arg(report);
    };
    let per = (cores / a.nproc).max(1);
    let (mut one, mut thin, mut many, mut params) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for round in 0..a.rounds {
        for (threads, into) in [(cores, &mut one), (per, &mut thin)] {
            step(&format!("round {}/{}: 1 process, {threads} threads", round + 1, a.rounds));
            let r1 = dir.join(format!("one-{threads}-{round}.json"));
            let mut cmd = Command::new(&bin);
            common(&mut cmd, &r1);
            run_cmd(cmd.env("OMP_NUM_THREADS", threads.to_string()))?;
            let (ips, p) = images_per_s(&r1)?;
            into.push(ips);
            params = p;
        }
        step(&format!("round {}/{}: {} processes", round + 1, a.rounds, a.nproc));
        let rn = dir.join(format!("many-{round}.json"));
        launch(a.nproc, &bin, |cmd| common(cmd, &rn))?;
        many.push(images_per_s(&rn)?.0);
    }
    let (m1, mt, mn) = (median(one.clone()), median(thin.clone()), median(many.clone()));
    println!("\nDDPM CIFAR-10 U-Net ({params} parameters), 32×32, batch {} per process, {} timed steps, {cores} cores\n", a.batch, a.steps);
    println!(
        "| processes | threads each | images/s (median of {}) | runs | vs 1 process, {cores} threads | vs 1 process, {per} thread(s) |",
        a.rounds
    );
    println!("|---|---|---|---|---|---|");
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    println!("| 1 | {cores} | {m1:.2} | {} | 1.00 | {:.2} |", fmt(&one), m1 / mt);
    println!("| 1 | {per} | {mt:.2} | {} | {:.2} | 1.00 |", fmt(&thin), mt / m1);
    println!(
        "| {} | {per} | {mn:.2} | {} | {:.2} | {:.2} |",
        a.nproc,
        fmt(&many),
        mn / m1,
        mn / mt
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = workspace_root().join("target").join("bench-ddp");
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}
