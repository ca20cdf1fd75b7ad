//! `unet-video`: the runner behind `cargo xtask params|reproduce|sample <video model>`.
//!
//! ```text
//! unet-video params lumiere
//! unet-video reproduce lumiere --out target/reproduce/lumiere [--steps N] [--device cuda]
//! unet-video sample lumiere --checkpoint target/reproduce/lumiere/lumiere --n 16 --out clips
//!                                                      # clips.mp4 (4×4 grid) and clips.png
//! unet-video upscale --checkpoint target/reproduce/upscale-a-video/upscale-a-video in.mp4 out.mp4
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_video::models::clip_diffusion::{self, ClipModel, Variant};
use unet_video::models::upscale;
use unet_video::models::video_unet::VideoUNet;

#[derive(Parser)]
#[command(name = "unet-video", about = "Video U-Net reproductions of unet-rs")]
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
        /// Data cache with fetched data sets (the embedded samples otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps (each network).
        #[arg(long)]
        steps: Option<usize>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<i64>,
        /// Channels of the first level of the trained networks.
        #[arg(long)]
        base: Option<i64>,
        /// Clips generated per model (lumiere, latent-shift).
        #[arg(long)]
        samples: Option<usize>,
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
    /// Generate clips with a trained `lumiere` / `latent-shift` model folder.
    Sample {
        model: String,
        /// The model folder (`video_model.json`, `checkpoint.safetensors`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Clips to generate.
        #[arg(long, default_value_t = 16)]
        n: usize,
        /// DDIM steps.
        #[arg(long, default_value_t = 50)]
        steps: i64,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output prefix: `<out>.mp4` (grid) and `<out>.png` (frame strip).
        #[arg(long)]
        out: PathBuf,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Up-scale a video ×4 (its luma) with a trained `upscale-a-video` model folder, streamed
    /// in windows (bounded memory for any length).
    Upscale {
        /// The run's `upscale-a-video/` folder (`config.json`, `checkpoint.safetensors`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Input video (MP4 or anything ffmpeg reads).
        input: PathBuf,
        /// Output MP4.
        output: PathBuf,
        /// Frames per window.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

const MODELS: [&str; 3] = ["lumiere", "latent-shift", "upscale-a-video"];

fn variant(model: &str) -> Result<Variant, String> {
    match model {
        "lumiere" => Ok(Variant::Lumiere),
        "latent-shift" => Ok(Variant::LatentShift),
        m => Err(format!("`{m}` does not generate clips; use lumiere or latent-shift")),
    }
}

fn params(model: &str) -> Result<(), String> {
    let cfg = match model {
        "upscale-a-video" => upscale::full(),
        m if MODELS.contains(&m) => variant(m)?.full(),
        m => return Err(format!("unknown video model `{m}`; available: {}", MODELS.join(", "))),
    };
    let vs = nn::VarStore::new(Device::Cpu);
    VideoUNet::new(&vs.root(), &cfg).map_err(|e| e.to_string())?;
    println!("{model} params {}", unet_video::unet_core::parameter_count(&vs));
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,video=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res: Result<(), String> = match cli.cmd {
        Cmd::Params { model } => params(&model),
        Cmd::Reproduce {
            model,
            out,
            data_cache,
            steps,
            batch_size,
            base,
            samples,
            device,
            seed,
            quiet,
        } => {
            let device = match unet_video::unet_core::device::parse_device(&device) {
                Ok(d) => d,
                Err(e) => return fail(&e.to_string()),
            };
            let out = out.unwrap_or_else(|| PathBuf::from("target/reproduce").join(&model));
            macro_rules! overrides {
                ($o:ident) => {{
                    if data_cache.is_some() {
                        $o.data_cache = data_cache.clone();
                    }
                    $o.steps = steps.unwrap_or($o.steps);
                    $o.batch_size = batch_size.unwrap_or($o.batch_size);
                    $o.base = base.unwrap_or($o.base);
                    $o.seed = seed.unwrap_or($o.seed);
                    $o.device = device;
                    $o.progress = !quiet;
                    $o.out = out;
                }};
            }
            match model.as_str() {
                "lumiere" | "latent-shift" => {
                    let mut o = clip_diffusion::RunOptions::default();
                    overrides!(o);
                    o.samples = samples.unwrap_or(o.samples);
                    variant(&model).and_then(|v| {
                        clip_diffusion::run(v, &o).map(|_| ()).map_err(|e| e.to_string())
                    })
                }
                "upscale-a-video" => {
                    let mut o = upscale::RunOptions::default();
                    overrides!(o);
                    upscale::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                m => Err(format!("unknown video model `{m}`; available: {}", MODELS.join(", "))),
            }
        }
        Cmd::Sample { model, checkpoint, n, steps, seed, out, device } => (|| {
            let v = variant(&model)?;
            let device =
                unet_video::unet_core::device::parse_device(&device).map_err(|e| e.to_string())?;
            let m = ClipModel::load(&checkpoint, device).map_err(|e| e.to_string())?;
            if m.meta.variant != v {
                return Err(format!(
                    "{} holds a `{}` model, not `{model}`",
                    checkpoint.display(),
                    m.meta.variant.name()
                ));
            }
            let clips = m.sample(n, steps, seed).map_err(|e| e.to_string())?;
            let (mp4, png) = m.write(&clips, &out).map_err(|e| e.to_string())?;
            println!("{n} `{model}` clip(s) → {} and {}", mp4.display(), png.display());
            Ok(())
        })(),
        Cmd::Upscale { checkpoint, input, output, window, device } => (|| {
            let device =
                unet_video::unet_core::device::parse_device(&device).map_err(|e| e.to_string())?;
            let up = upscale::Upscaler::load(&checkpoint, device).map_err(|e| e.to_string())?;
            let n = up.upscale_file(&input, &output, window).map_err(|e| e.to_string())?;
            println!(
                "{}: {n} frames up-scaled ×{} → {}",
                input.display(),
                upscale::SCALE,
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
