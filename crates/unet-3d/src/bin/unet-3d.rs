//! `unet-3d`: the runner behind `cargo xtask params|reproduce <3D model>`.
//!
//! ```text
//! unet-3d params unet3d
//! unet-3d reproduce unet3d --out target/reproduce/unet3d [--steps N] [--device cuda]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_3d::models::segment::{self, Arch};
use unet_3d::models::{gaunet, voxel_diffusion};
use unet_3d::unet_core::arch::{UNet3d, UNet3dConfig};
use unet_3d::unet_core::diffusers::DiffusersUNet;

#[derive(Parser)]
#[command(name = "unet-3d", about = "3D U-Net reproductions of unet-rs")]
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
        /// The datasets folder (`cgal/`, `pyvista/`; the embedded samples otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps.
        #[arg(long)]
        steps: Option<usize>,
        /// Batch size.
        #[arg(long)]
        batch_size: Option<i64>,
        /// Channels of the first level of the trained network.
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

const MODELS: [&str; 4] = ["unet3d", "s3d-unet", "3dgaunet", "voxel-diffusion"];

fn params(model: &str) -> Result<(), String> {
    let count = |cfg: &UNet3dConfig| -> Result<i64, String> {
        let vs = nn::VarStore::new(Device::Cpu);
        UNet3d::new(&vs.root(), cfg).map_err(|e| e.to_string())?;
        Ok(unet_3d::parameter_count(&vs))
    };
    match model {
        "unet3d" => println!("unet3d params {}", count(&UNet3dConfig::cicek2016())?),
        "s3d-unet" => println!("s3d-unet params {}", count(&UNet3dConfig::s3d_unet())?),
        "dresunet" => {
            let vs = nn::VarStore::new(Device::Cpu);
            unet_3d::unet_core::arch::ResUNet::new(
                &vs.root(),
                &unet_3d::unet_core::arch::ResUNetConfig::dresunet(),
            )
            .map_err(|e| e.to_string())?;
            println!(
                "dresunet params {} (preset; the survey quotes 30.5M)",
                unet_3d::parameter_count(&vs)
            );
        }
        "voxel-diffusion" => {
            let vs = nn::VarStore::new(Device::Cpu);
            let cfg = voxel_diffusion::full().map_err(|e| e.to_string())?;
            DiffusersUNet::new(&vs.root(), &cfg).map_err(|e| e.to_string())?;
            println!("voxel-diffusion params {}", unet_3d::parameter_count(&vs));
        }
        "3dgaunet" => {
            let g = count(&gaunet::full_generator())?;
            let vs = nn::VarStore::new(Device::Cpu);
            gaunet::VoxelDiscriminator::new(
                &vs.root(),
                &gaunet::VoxelDiscriminatorConfig::default(),
            )
            .map_err(|e| e.to_string())?;
            let d = unet_3d::parameter_count(&vs);
            println!("3dgaunet params {} (generator {g}, discriminator {d})", g + d);
        }
        m => return Err(format!("unknown 3D model `{m}`; available: {}", MODELS.join(", "))),
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
        Cmd::Reproduce { model, out, data_cache, steps, batch_size, base, device, seed, quiet } => {
            let device = match unet_3d::unet_core::device::parse_device(&device) {
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
                "unet3d" | "s3d-unet" => {
                    let arch = if model == "unet3d" { Arch::UNet3d } else { Arch::S3d };
                    let mut o = segment::RunOptions::new(arch);
                    overrides!(o);
                    segment::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                "voxel-diffusion" => {
                    let mut o = voxel_diffusion::RunOptions::default();
                    overrides!(o);
                    voxel_diffusion::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                "3dgaunet" => {
                    let mut o = gaunet::RunOptions::default();
                    overrides!(o);
                    gaunet::run(&o).map(|_| ()).map_err(|e| e.to_string())
                }
                m => Err(format!("unknown 3D model `{m}`; available: {}", MODELS.join(", "))),
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
