//! `unet-core`: the runner behind `cargo xtask params <preset>` and
//! `cargo xtask export-diffusers <preset> <dir> [--tiny] [--seed N]` for the diffusers presets.
//!
//! ```text
//! unet-core params sd-v1-5-unet            # sd-v1-5-unet params 859520964
//! unet-core export-diffusers ddpm-cifar10 out/ddpm --tiny
//! unet-core load-diffusers out/ddpm         # loads a diffusers folder and checks io.safetensors
//! unet-core train-throughput --steps 10      # images/s of DDPM training (data-parallel under torchrun)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use tch::{nn, Device, Kind, Tensor};
use unet_core::diffusers::{folder, presets, DiffusersConfig, DiffusersUNet};
use unet_core::trainer::{Trainer, TrainerConfig};
use unet_core::{checkpoint, distributed, parameter_count, Error};

fn usage() -> String {
    format!(
        "usage: unet-core params <preset> | export-diffusers <preset> <dir> [--tiny] [--seed N] | load-diffusers <dir> | train-throughput [--preset P] [--steps N] [--batch B] [--report F]\npresets: {}",
        presets::PRESETS.join(", ")
    )
}

fn preset(name: &str, tiny: bool) -> Result<DiffusersConfig, String> {
    let json = if tiny { presets::tiny_json(name) } else { presets::full_json(name) };
    let json = json.ok_or_else(|| format!("unknown preset `{name}`\n{}", usage()))?;
    DiffusersConfig::from_json(&json).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<(), String> {
    let e = |x: Error| x.to_string();
    match args.first().map(String::as_str) {
        Some("params") => {
            let name = args.get(1).ok_or_else(usage)?;
            let cfg = preset(name, false)?;
            let vs = nn::VarStore::new(Device::Cpu);
            DiffusersUNet::new(&vs.root(), &cfg).map_err(e)?;
            println!("{name} params {}", parameter_count(&vs));
            Ok(())
        }
        Some("export-diffusers") => {
            let name = args.get(1).ok_or_else(usage)?;
            let dir = PathBuf::from(args.get(2).ok_or_else(usage)?);
            let tiny = args.iter().any(|a| a == "--tiny");
            let seed = match args.iter().position(|a| a == "--seed") {
                Some(i) => {
                    args.get(i + 1).and_then(|s| s.parse().ok()).ok_or("--seed needs an integer")?
                }
                None => 0i64,
            };
            let cfg = preset(name, tiny)?;
            tch::manual_seed(seed);
            let vs = nn::VarStore::new(Device::Cpu);
            let model = DiffusersUNet::new(&vs.root(), &cfg).map_err(e)?;
            folder::perturb_vectors(&vs, 0.1);
            let side = cfg.raw.get("sample_size").and_then(|v| v.as_i64()).unwrap_or(8);
            folder::export_with_io(&vs, &model, &dir, side).map_err(e)?;
            println!(
                "wrote {} ({} parameters): config.json, {}, io.safetensors",
                dir.display(),
                parameter_count(&vs),
                folder::WEIGHTS
            );
            Ok(())
        }
        Some("load-diffusers") => {
            let dir = PathBuf::from(args.get(1).ok_or_else(usage)?);
            let (vs, model) = folder::load(&dir, Device::Cpu).map_err(e)?;
            println!("loaded {} ({} parameters)", dir.display(), parameter_count(&vs));
            let io_path = dir.join("io.safetensors");
            if io_path.exists() {
                let io = checkpoint::read(&io_path).map_err(e)?.tensors;
                let out = folder::run_on(&model, &io).map_err(e)?;
                let want = io.get("output").ok_or("io.safetensors has no `output`")?;
                let rel = (&out - want).norm().double_value(&[]) / want.norm().double_value(&[]);
                println!("relative difference to io.safetensors `output`: {rel:.3e}");
            }
            Ok(())
        }
        Some("train-throughput") => train_throughput(&args[1..]),
        _ => Err(usage()),
    }
}

/// `train-throughput [--preset P] [--steps N] [--batch B] [--report F.json]`: trains the
/// full-size diffusers preset (default `ddpm-cifar10`, 35.7M parameters) on random 32×32
/// images for N steps with the [`Trainer`], data-parallel when launched with torchrun's
/// variables, and writes rank 0's images per second (after one warm-up step) to the report.
fn train_throughput(args: &[String]) -> Result<(), String> {
    let e = |x: Error| x.to_string();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let num = |name: &str, default: usize| -> Result<usize, String> {
        flag(name).map_or(Ok(default), |v| {
            v.parse().ok().filter(|n| *n > 0).ok_or(format!("{name} {v}: need a positive integer"))
        })
    };
    let (steps, batch) = (num("--steps", 10)?, num("--batch", 4)? as i64);
    let name = flag("--preset").map_or("ddpm-cifar10", String::as_str);
    let cfg = preset(name, false)?;
    let group = distributed::init_from_env().map_err(e)?;
    let world = group.as_ref().map_or(1, |g| g.world_size());
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = DiffusersUNet::new(&vs.root(), &cfg).map_err(e)?;
    let side = cfg.raw.get("sample_size").and_then(|v| v.as_i64()).unwrap_or(32);
    let channels = cfg.raw.get("in_channels").and_then(|v| v.as_i64()).unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("unet-rs-throughput-{}", std::process::id()));
    let tcfg = TrainerConfig {
        total_steps: steps + 1,
        lr: 1e-4,
        out_dir: dir.clone(),
        ..Default::default()
    };
    let mut trainer = Trainer::new(&vs, tcfg).map_err(e)?;
    let mut started = None;
    trainer
        .run(&mut vs, |step| {
            if step == 1 {
                started = Some(std::time::Instant::now());
            }
            let x = Tensor::randn([batch, channels, side, side], (Kind::Float, Device::Cpu));
            let t = Tensor::randint(1000, [batch], (Kind::Int64, Device::Cpu));
            let noise = x.randn_like();
            let out = model.forward(&(&x * 0.8 + &noise * 0.6), &t, None, None)?;
            Ok((out - noise).square().mean(Kind::Float))
        })
        .map_err(e)?;
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
    if distributed::is_primary() {
        let report = serde_json::json!({
            "preset": name, "params": parameter_count(&vs), "world_size": world,
            "threads": tch::get_num_threads(), "batch_per_process": batch, "steps": steps,
            "seconds": seconds, "images_per_s": (world as f64 * batch as f64 * steps as f64) / seconds,
        });
        println!("{report}");
        if let Some(path) = flag("--report") {
            std::fs::write(path, report.to_string()).map_err(|x| format!("{path}: {x}"))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
