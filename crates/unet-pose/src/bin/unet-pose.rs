//! `unet-pose`: the runner behind `cargo xtask params|reproduce <pose model>`.
//!
//! ```text
//! unet-pose params motion-diffusion
//! unet-pose reproduce motion-diffusion --out target/reproduce/motion-diffusion [--steps N]
//! unet-pose generate motion-diffusion --checkpoint target/reproduce/motion-diffusion/model \
//!     --class walk --n 4 --out walk          # walk.gif and walk_0.bvh … walk_3.bvh
//! unet-pose view clip.bvh clip.gif           # any BVH, or a DeepMimic clip (.txt), as a GIF
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_pose::models::motion_generate::MotionGenerator;
use unet_pose::models::{hourglass, motion_diffusion};
use unet_pose::{bvh, render};

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
    /// Generate motions of a class with a trained `motion-diffusion` model folder.
    Generate {
        model: String,
        /// The run's model folder (`checkpoint.safetensors`, `motion_stats.json`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Class name (e.g. `walk`, `backflip`).
        #[arg(long)]
        class: String,
        /// Motions to generate.
        #[arg(long, default_value_t = 4)]
        n: i64,
        /// Classifier-free guidance scale.
        #[arg(long, default_value_t = 2.5)]
        guidance: f64,
        /// DDIM steps.
        #[arg(long, default_value_t = 50)]
        steps: i64,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Output prefix: `<out>.gif` and `<out>_<k>.bvh`.
        #[arg(long)]
        out: PathBuf,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Render a BVH file (any skeleton) or a DeepMimic clip as an animated GIF.
    View {
        /// `.bvh` or DeepMimic `.txt`.
        input: PathBuf,
        /// Output GIF.
        output: PathBuf,
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
        Cmd::Generate { model, checkpoint, class, n, guidance, steps, seed, out, device } => {
            generate_cmd(&model, &checkpoint, &class, n, guidance, steps, seed, &out, &device)
        }
        Cmd::View { input, output } => view(&input, &output).map_err(|e| e.to_string()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

#[allow(clippy::too_many_arguments)]
fn generate_cmd(
    model: &str,
    dir: &Path,
    class: &str,
    n: i64,
    guidance: f64,
    steps: i64,
    seed: i64,
    out: &Path,
    device: &str,
) -> Result<(), String> {
    if model != "motion-diffusion" {
        return Err(format!("`{model}` does not generate motions (motion-diffusion does)"));
    }
    let device = unet_pose::unet_core::device::parse_device(device).map_err(|e| e.to_string())?;
    let g = MotionGenerator::load(dir, device).map_err(|e| e.to_string())?;
    let motions = g.sample(class, n, guidance, steps, seed).map_err(|e| e.to_string())?;
    let skel = &g.layout.skeleton;
    let positions = motions
        .iter()
        .map(|m| m.iter().map(|p| skel.forward(p)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let gif = out.with_extension("gif");
    render::write_gif_grid(
        &gif,
        &positions,
        (n as usize).min(4),
        &skel.bones(),
        &skel.bone_colours(),
        g.stats.fps,
        200,
        200,
        35f64.to_radians(),
        12f64.to_radians(),
    )
    .map_err(|e| e.to_string())?;
    for (k, m) in motions.iter().enumerate() {
        let stem = out.file_name().and_then(|s| s.to_str()).unwrap_or("motion");
        let path = out.with_file_name(format!("{stem}_{k}.bvh"));
        bvh::humanoid_bvh(skel, m, 1.0 / g.stats.fps)
            .and_then(|b| b.write(&path))
            .map_err(|e| e.to_string())?;
    }
    println!("{n} `{class}` motion(s) → {} and {}_*.bvh", gif.display(), out.display());
    Ok(())
}

/// Renders a BVH (any skeleton, centimetres or metres) or a DeepMimic clip as a GIF.
fn view(input: &Path, output: &Path) -> unet_pose::Result<()> {
    let is_bvh = input.extension().is_some_and(|e| e.eq_ignore_ascii_case("bvh"));
    let (frames, bones, colours, fps) = if is_bvh {
        let b = bvh::Bvh::read(input)?;
        let frames =
            (0..b.frames.len()).map(|f| b.positions(f)).collect::<unet_pose::Result<Vec<_>>>()?;
        let bones: Vec<(usize, usize)> =
            b.joints.iter().enumerate().filter_map(|(i, j)| j.parent.map(|p| (p, i))).collect();
        let colours = vec![[60u8, 90, 200]; bones.len()];
        (frames, bones, colours, 1.0 / b.frame_time)
    } else {
        let clip = unet_pose::motion::Clip::read(input)?;
        let skel = unet_pose::skeleton::Skeleton::deepmimic_humanoid();
        let poses = clip.resample(30.0, 0)?;
        let frames =
            poses.iter().map(|p| skel.forward(p)).collect::<unet_pose::Result<Vec<_>>>()?;
        (frames, skel.bones(), skel.bone_colours(), 30.0)
    };
    if frames.is_empty() {
        return Err(unet_pose::PoseError::format(input, None, "no frames"));
    }
    let all: Vec<[f64; 3]> = frames.iter().flatten().copied().collect();
    let cam = render::Camera::fit(&all, 35f64.to_radians(), 12f64.to_radians());
    render::write_gif(output, &frames, &bones, &colours, fps, 320, 320, &cam)?;
    println!("{}: {} frames → {}", input.display(), frames.len(), output.display());
    Ok(())
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}
