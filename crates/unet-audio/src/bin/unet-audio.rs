//! `unet-audio`: the runner behind `cargo xtask params|reproduce|enhance <audio model>`.
//!
//! ```text
//! unet-audio params wave-unet
//! unet-audio reproduce wave-unet --out target/reproduce/wave-unet [--steps N] [--device cuda]
//! unet-audio enhance --checkpoint target/reproduce/wave-unet/wave-unet.safetensors in.wav out.wav
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_audio::arch::{WaveUNet, WaveUNetConfig};
use unet_audio::gan::PatchDiscriminator;
use unet_audio::models::{deep_unet, unetgan, wave_unet};

#[derive(Parser)]
#[command(name = "unet-audio", about = "Audio U-Net reproductions of unet-rs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print `<model> params <N>` for the full-size preset.
    Params { model: String },
    /// Train, evaluate and write the report of a model.
    Reproduce {
        model: String,
        /// Output folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Data cache with fetched data sets (`speech/`; the embedded sample otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps (of each model).
        #[arg(long)]
        steps: Option<usize>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Hide the progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Enhance a WAV file of any length with a trained checkpoint (streamed, bounded memory).
    Enhance {
        /// Checkpoint written by a reproduction (`<model>.safetensors`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Input WAV.
        input: PathBuf,
        /// Output WAV (same rate, channels and length).
        output: PathBuf,
        /// Output samples per model call (at the model's rate).
        #[arg(long, default_value_t = 32_768)]
        chunk: usize,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

const MODELS: [&str; 4] = ["wave-unet", "attn-wave-unet", "deep-unet", "unetgan"];

fn params(model: &str) -> Result<(), String> {
    let count = |cfg: &WaveUNetConfig| -> Result<i64, String> {
        let vs = nn::VarStore::new(Device::Cpu);
        WaveUNet::new(&vs.root(), cfg).map_err(|e| e.to_string())?;
        Ok(unet_audio::parameter_count(&vs))
    };
    match model {
        "wave-unet" => {
            let n = count(&WaveUNetConfig::stoller2018())?;
            let m = count(&WaveUNetConfig::macartney2018())?;
            println!("wave-unet params {n} (Macartney & Weyde release, 2 outputs: {m})");
        }
        "attn-wave-unet" => {
            println!("attn-wave-unet params {}", count(&WaveUNetConfig::giri2019())?)
        }
        "deep-unet" => {
            let vs = nn::VarStore::new(Device::Cpu);
            unet_audio::arch::DeepUNet::new(
                &vs.root(),
                &unet_audio::arch::DeepUNetConfig::jansson2017(),
            )
            .map_err(|e| e.to_string())?;
            println!("deep-unet params {}", unet_audio::parameter_count(&vs));
        }
        "unetgan" => {
            let g = count(&WaveUNetConfig::hao2020())?;
            let vs = nn::VarStore::new(Device::Cpu);
            PatchDiscriminator::new(&vs.root(), &unetgan::full_discriminator())
                .map_err(|e| e.to_string())?;
            let d = unet_audio::parameter_count(&vs);
            println!("unetgan params {} (generator {g}, discriminator {d})", g + d);
        }
        m => return Err(format!("unknown audio model `{m}`; available: {}", MODELS.join(", "))),
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res: Result<(), String> = match cli.cmd {
        Cmd::Params { model } => params(&model),
        Cmd::Reproduce { model, out, data_cache, steps, batch_size, lr, device, seed, quiet } => {
            let device = match unet_audio::parse_device(&device) {
                Ok(d) => d,
                Err(e) => return fail(&e.to_string()),
            };
            let out = out.unwrap_or_else(|| PathBuf::from("target/reproduce").join(&model));
            let cache = data_cache.map(|d| d.join("speech"));
            // The command-line overrides every reproduction's options share.
            macro_rules! overrides {
                ($o:ident) => {{
                    if cache.is_some() {
                        $o.data_cache = cache.clone();
                    }
                    $o.steps = steps.unwrap_or($o.steps);
                    $o.batch = batch_size.unwrap_or($o.batch);
                    $o.lr = lr.unwrap_or($o.lr);
                    $o.seed = seed.unwrap_or($o.seed);
                    $o.device = device;
                    $o.progress = !quiet;
                    $o.out = out;
                }};
            }
            match model.as_str() {
                "wave-unet" | "attn-wave-unet" => {
                    let variant = if model == "wave-unet" {
                        wave_unet::Variant::Plain
                    } else {
                        wave_unet::Variant::Attention
                    };
                    let mut o = wave_unet::RunOptions::new(variant);
                    overrides!(o);
                    wave_unet::run(variant, &o).map(|_| ()).map_err(|e| e.to_string())
                }
                "deep-unet" => {
                    let mut o = deep_unet::RunOptions::default();
                    overrides!(o);
                    deep_unet::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                "unetgan" => {
                    let mut o = unetgan::RunOptions::default();
                    overrides!(o);
                    unetgan::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                m => Err(format!("unknown audio model `{m}`; available: {}", MODELS.join(", "))),
            }
        }
        Cmd::Enhance { checkpoint, input, output, chunk, device } => (|| {
            let device = unet_audio::parse_device(&device).map_err(|e| e.to_string())?;
            let loaded = unet_audio::enhance::load_enhancer(&checkpoint, device)
                .map_err(|e| e.to_string())?;
            let t0 = std::time::Instant::now();
            let stats = unet_audio::enhance::enhance_file(
                loaded.model.as_ref(),
                loaded.rate,
                &input,
                &output,
                chunk,
                device,
            )
            .map_err(|e| e.to_string())?;
            let secs = stats.frames as f64 / stats.rate as f64;
            println!(
                "{}: enhanced {:.1} s ({} channel(s), {} Hz) with `{}` in {:.1} s → {}",
                input.display(),
                secs,
                stats.channels,
                stats.rate,
                loaded.name,
                t0.elapsed().as_secs_f64(),
                output.display()
            );
            Ok(())
        })(),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}
