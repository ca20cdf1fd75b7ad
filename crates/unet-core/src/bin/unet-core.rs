//! `unet-core`: the runner behind `cargo xtask params <preset>` and
//! `cargo xtask export-diffusers <preset> <dir> [--tiny] [--seed N]` for the diffusers presets.
//!
//! ```text
//! unet-core params sd-v1-5-unet            # sd-v1-5-unet params 859520964
//! unet-core export-diffusers ddpm-cifar10 out/ddpm --tiny
//! unet-core load-diffusers out/ddpm         # loads a diffusers folder and checks io.safetensors
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use tch::{nn, Device};
use unet_core::diffusers::{folder, presets, DiffusersConfig, DiffusersUNet};
use unet_core::{checkpoint, parameter_count, Error};

fn usage() -> String {
    format!(
        "usage: unet-core params <preset> | export-diffusers <preset> <dir> [--tiny] [--seed N] | load-diffusers <dir>\npresets: {}",
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
        _ => Err(usage()),
    }
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
