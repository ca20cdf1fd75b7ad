//! `bench-vs-pytorch`: one model of unet-rs timed against the same architecture in PyTorch
//! eager, the two alternating round by round in one launch, on the same weights and inputs.
//!
//! Run with: `cargo xtask bench-vs-pytorch` (which builds this binary, runs it once per model
//! so that each process pair's peak RSS belongs to one model, then `report`).
//!
//! ```text
//! bench-vs-pytorch peak   [--device D] [--threads N] [--tiny] --out peak.json
//! bench-vs-pytorch run    --model M [--rounds N] [--device D] [--threads N] [--tiny]
//!                         [--side S] [--autocast] --out row.json
//! bench-vs-pytorch report --dir DIR
//! ```
//!
//! `run` writes our VarStore to safetensors, starts `benches/pytorch/worker.py` (the venv's
//! python: `UNET_RS_PYTHON`), which loads it strictly into the reference model, checks that the
//! eval outputs, the first train-step losses and their gradient norms agree, then alternates ours/PyTorch for the
//! forward (eval, no grad) and the train step (fwd + bwd + Adam, MSE), flipping which side goes
//! first each round.

mod measure;
mod models;
mod report;
mod worker;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tch::{nn::OptimizerConfig, Device, Tensor};
use unet_core::checkpoint;

use measure::{median, peak_rss, reset_peak_rss, rss, seconds};
use models::Subject;
use worker::Worker;

/// Relative tolerance of the output and loss check in float32 (and under fp16 autocast).
const TOL_F32: f64 = 1e-4;
const TOL_AUTOCAST: f64 = 2e-2;

struct Args {
    model: Option<String>,
    rounds: usize,
    device: String,
    threads: Option<i32>,
    tiny: bool,
    side: Option<i64>,
    autocast: bool,
    out: Option<PathBuf>,
    dir: Option<PathBuf>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let mut a = Args {
        model: None,
        rounds: 7,
        device: "cpu".into(),
        threads: None,
        tiny: false,
        side: None,
        autocast: false,
        out: None,
        dir: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = Some(value()?),
            "--rounds" => a.rounds = value()?.parse().context("--rounds")?,
            "--device" => a.device = value()?,
            "--threads" => a.threads = Some(value()?.parse().context("--threads")?),
            "--side" => a.side = Some(value()?.parse().context("--side")?),
            "--out" => a.out = Some(value()?.into()),
            "--dir" => a.dir = Some(value()?.into()),
            "--tiny" => a.tiny = true,
            "--autocast" => a.autocast = true,
            _ => bail!("unknown argument `{flag}`"),
        }
    }
    Ok(a)
}

fn setup_device(a: &Args) -> Result<(Device, i32)> {
    let device = unet_core::parse_device(&a.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if let Some(n) = a.threads {
        tch::set_num_threads(n);
    }
    Ok((device, tch::get_num_threads()))
}

/// The venv's python: `UNET_RS_PYTHON`, else derived from a venv `LIBTORCH`
/// (`<venv>/lib/python3.X/site-packages/torch`).
fn python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("UNET_RS_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let lt = std::env::var_os("LIBTORCH").context(
        "neither UNET_RS_PYTHON nor LIBTORCH is set: run `cargo xtask bench-vs-pytorch`",
    )?;
    let venv = Path::new(&lt).ancestors().nth(4).context("LIBTORCH is not inside a venv")?;
    Ok(venv.join("bin").join("python"))
}

/// `benches/pytorch/worker.py` of this checkout, or `UNET_RS_BENCH_WORKER` (a binary copied to
/// another machine).
fn script() -> PathBuf {
    std::env::var_os("UNET_RS_BENCH_WORKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("pytorch").join("worker.py"))
}

fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(tch::Kind::Double).to_device(Device::Cpu);
    let b = b.to_kind(tch::Kind::Double).to_device(Device::Cpu);
    (&a - &b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-30)
}

/// Global L2 norm of the gradients of `vs`'s trainable variables (0 for those without one).
fn grad_norm(vs: &tch::nn::VarStore) -> f64 {
    let sq: f64 = vs
        .trainable_variables()
        .iter()
        .map(|v| v.grad())
        .filter(|g| g.defined())
        .map(|g| g.to_kind(tch::Kind::Double).square().sum(tch::Kind::Double).double_value(&[]))
        .sum();
    sq.sqrt()
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(v)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

fn peak(a: &Args) -> Result<()> {
    let (device, threads) = setup_device(a)?;
    let n = match (device.is_cuda(), a.tiny) {
        (_, true) => 512,
        (true, false) => 8192,
        (false, false) => 4096,
    };
    let gflops = measure::matmul_gflops(device, n, 3)?;
    let v = json!({"matmul_gflops": gflops, "n": n, "threads": threads, "device": a.device});
    println!("{v}");
    if let Some(out) = &a.out {
        write_json(out, &v)?;
    }
    Ok(())
}

fn run(a: &Args) -> Result<()> {
    let name = a.model.as_deref().context("--model is required")?;
    let out = a.out.as_deref().context("--out is required")?;
    let (device, threads) = setup_device(a)?;
    let subject = Subject::new(name, a.tiny, a.side, device)?;
    let mut opt = tch::nn::Adam::default().build(&subject.vs, 1e-4)?;
    let params = checkpoint::parameter_count(&subject.vs);

    // The same weights and inputs for both sides.
    let tmp = std::env::temp_dir().join(format!("unet-rs-vs-pytorch-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let weights = tmp.join("weights.safetensors");
    let inputs = tmp.join("inputs.safetensors");
    let py_out = tmp.join("output.safetensors");
    checkpoint::save(&subject.vs, &weights, None)?;
    checkpoint::write_atomic(&inputs, &checkpoint::to_bytes(&subject.inputs, None)?)?;
    let mut py = Worker::start(&python()?, &script())?;
    let init = py.call(json!({"cmd": "init", "model": subject.spec, "weights": weights,
        "inputs": inputs, "threads": threads, "device": a.device, "autocast": a.autocast,
        "lr": 1e-4}))?;
    if init["params"].as_i64() != Some(params) {
        bail!("{name}: parameter counts differ: ours {params}, PyTorch {}", init["params"]);
    }
    let _ = std::fs::remove_file(&weights);
    // Peak RSS from here on: the check and the timed forwards and train steps; the RSS at this
    // point (weights, inputs, libraries, interpreter) is recorded as each side's baseline.
    let reset_ours = reset_peak_rss();
    let our_base = rss();
    let reset = py.call(json!({"cmd": "reset_rss"}))?;
    let reset_py = reset["reset"] == json!(true);
    let py_base = reset["rss"].as_u64().unwrap_or(0);

    // 1. Equal outputs (eval, no grad) and equal first train-step losses.
    let amp = a.autocast;
    // (`tch::autocast` asks CUDA whether it is available on every call: only when asked for.)
    let forward = || {
        if amp {
            tch::autocast(true, || tch::no_grad(|| subject.run(false)))
        } else {
            tch::no_grad(|| subject.run(false))
        }
    };
    let ours = forward()?;
    py.call(json!({"cmd": "forward", "out": py_out}))?;
    let theirs = checkpoint::read(&py_out)?.tensors.remove("output").context("output")?;
    let forward_rel = rel_diff(&ours, &theirs);
    drop((ours, theirs));
    let tol = if amp { TOL_AUTOCAST } else { TOL_F32 };
    if forward_rel.is_nan() || forward_rel > tol {
        bail!("{name}: outputs differ from PyTorch (relative {forward_rel:.3e} > {tol:e})");
    }
    let mut train = || -> Result<f64> {
        let loss = if amp { tch::autocast(true, || subject.loss())? } else { subject.loss()? };
        opt.backward_step(&loss);
        Ok(loss.double_value(&[]))
    };
    let our_loss = train()?;
    let our_grad = grad_norm(&subject.vs);
    let reply = py.call(json!({"cmd": "train"}))?;
    let their_loss = reply["loss"].as_f64().context("loss")?;
    let their_grad = reply["grad_norm"].as_f64().context("grad_norm")?;
    let loss_rel = (our_loss - their_loss).abs() / their_loss.abs().max(1e-30);
    let grad_rel = (our_grad - their_grad).abs() / their_grad.abs().max(1e-30);
    if loss_rel.is_nan() || loss_rel > tol {
        bail!("{name}: train losses differ: ours {our_loss}, PyTorch {their_loss}");
    }
    // The gradient norm is a sum of squares over millions of terms: float32 order effects
    // are larger than in the loss, hence 10× the tolerance.
    if grad_rel.is_nan() || grad_rel > 10.0 * tol {
        bail!("{name}: gradient norms differ: ours {our_grad}, PyTorch {their_grad}");
    }
    eprintln!(
        "{name}: output rel. diff {forward_rel:.2e}, loss {loss_rel:.2e}, grad norm \
         {grad_rel:.2e}; timing"
    );

    // 2. Alternating rounds (one warm-up round first, not counted).
    let mut py_time = |what: &str| -> Result<f64> {
        let r = py.call(json!({"cmd": "time", "what": what, "reps": 1}))?;
        r["seconds"][0].as_f64().context("seconds")
    };
    let mut t = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]]; // [fwd, train][ours, py]
    for round in 0..=a.rounds {
        for (k, what) in ["forward", "train"].into_iter().enumerate() {
            let mut pair = [0.0; 2];
            for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
                pair[side] = match (side, k) {
                    (0, 0) => seconds(device, forward)?,
                    (0, _) => seconds(device, &mut train)?,
                    _ => py_time(what)?,
                };
            }
            if round > 0 {
                t[k][0].push(pair[0]);
                t[k][1].push(pair[1]);
            }
        }
    }
    let py_rss = py.call(json!({"cmd": "rss"}))?["peak_rss"].as_u64().unwrap_or(0);
    let our_rss = peak_rss();
    let flops = py.call(json!({"cmd": "flops"}))?;
    py.quit()?;
    let _ = std::fs::remove_dir_all(&tmp);

    let ratios =
        |k: usize| -> Vec<f64> { t[k][0].iter().zip(&t[k][1]).map(|(o, p)| o / p).collect() };
    let ms = |v: &[f64]| median(v) * 1e3;
    let row = json!({
        "model": name,
        "note": subject.note,
        "device": a.device,
        "autocast": amp,
        "threads": threads,
        "rounds": a.rounds,
        "side": a.side,
        "params": params,
        "torch": init["torch"],
        "flops_forward": flops["flops_forward"],
        "flops_train": flops["flops_train"],
        "forward_rel_diff": forward_rel,
        "loss_rel_diff": loss_rel,
        "grad_norm_rel_diff": grad_rel,
        "ours_forward_ms": ms(&t[0][0]),
        "pytorch_forward_ms": ms(&t[0][1]),
        "forward_ratio": median(&ratios(0)),
        "ours_train_ms": ms(&t[1][0]),
        "pytorch_train_ms": ms(&t[1][1]),
        "train_ratio": median(&ratios(1)),
        "forward_ratios": ratios(0),
        "train_ratios": ratios(1),
        "ours_peak_rss": our_rss,
        "pytorch_peak_rss": py_rss,
        "ours_base_rss": our_base,
        "pytorch_base_rss": py_base,
        "peak_rss_reset": reset_ours && reset_py,
    });
    eprintln!(
        "{name}: forward {:.1} / {:.1} ms (ratio {:.3}), train {:.1} / {:.1} ms (ratio {:.3})",
        row["ours_forward_ms"].as_f64().unwrap_or(f64::NAN),
        row["pytorch_forward_ms"].as_f64().unwrap_or(f64::NAN),
        row["forward_ratio"].as_f64().unwrap_or(f64::NAN),
        row["ours_train_ms"].as_f64().unwrap_or(f64::NAN),
        row["pytorch_train_ms"].as_f64().unwrap_or(f64::NAN),
        row["train_ratio"].as_f64().unwrap_or(f64::NAN),
    );
    write_json(out, &row)
}

fn main() -> Result<()> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_default();
    let a = parse(it)?;
    match cmd.as_str() {
        "peak" => peak(&a),
        "run" => run(&a),
        "report" => report::run(a.dir.as_deref().context("--dir is required")?),
        _ => bail!("usage: bench-vs-pytorch peak|run|report [flags] (see the module docs)"),
    }
}
