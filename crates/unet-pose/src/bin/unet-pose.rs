//! `unet-pose`: the runner behind `cargo xtask params|reproduce <pose model>`.
//!
//! ```text
//! unet-pose params motion-diffusion
//! unet-pose reproduce motion-diffusion --out target/reproduce/motion-diffusion [--steps N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_pose::models::{hourglass, motion_diffusion};

#[derive(Parser)]
#[command(name = "unet-pose", about = "Pose and motion U-Net reproductions of unet-rs")]
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
        /// Data cache with fetched data sets (`motions/`; the embedded sample otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<i64>,
        /// Channels of the first level of the trained model.
        #[arg(long)]
        base: Option<i64>,
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
}

const MODELS: [&str; 2] = ["motion-diffusion", "hourglass-unet"];

fn params(model: &str) -> Result<(), String> {
    let vs = nn::VarStore::new(Device::Cpu);
    match model {
        "motion-diffusion" => {
            let cfg = motion_diffusion::full(61, 18).map_err(|e| e.to_string())?;
            unet_pose::unet_core::diffusers::DiffusersUNet::new(&vs.root(), &cfg)
                .map_err(|e| e.to_string())?;
        }
        "hourglass-unet" => {
            unet_pose::unet_core::arch::HourglassUNet::new(
                &vs.root(),
                &unet_pose::unet_core::arch::HourglassConfig::bulat2020(),
            )
            .map_err(|e| e.to_string())?;
        }
        m => return Err(format!("unknown pose model `{m}`; available: {}", MODELS.join(", "))),
    }
    println!("{model} params {}", unet_pose::unet_core::parameter_count(&vs));
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
        Cmd::Reproduce { model, out, data_cache, steps, batch_size, base, device, seed, quiet } => {
            let device = match unet_pose::unet_core::device::parse_device(&device) {
                Ok(d) => d,
                Err(e) => return fail(&e.to_string()),
            };
            let out = out.unwrap_or_else(|| PathBuf::from("target/reproduce").join(&model));
            let cache = data_cache.map(|d| d.join("motions"));
            macro_rules! overrides {
                ($o:ident) => {{
                    if cache.is_some() {
                        $o.data_cache = cache.clone();
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
                "motion-diffusion" => {
                    let mut o = motion_diffusion::RunOptions::default();
                    overrides!(o);
                    motion_diffusion::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                "hourglass-unet" => {
                    let mut o = hourglass::RunOptions::default();
                    overrides!(o);
                    hourglass::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                m => Err(format!("unknown pose model `{m}`; available: {}", MODELS.join(", "))),
            }
        }
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
