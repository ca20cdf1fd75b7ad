//! `sample`: load a trained checkpoint written by a reproduction and write images, the backend
//! of `cargo xtask sample <model> --checkpoint … [--prompt …] [--input …]`.
//!
//! | model | checkpoint | what is written |
//! |---|---|---|
//! | `ddpm` (also `freeu`) | `target/reproduce/ddpm/skips/checkpoint.safetensors` (EMA weights) | a grid of DDIM samples, optionally with FreeU |
//! | `pixelcnnpp` | `target/reproduce/pixelcnnpp/model.safetensors` | a grid of samples drawn pixel by pixel |
//! | `pix2pix` | `target/reproduce/pix2pix/generator.safetensors` | input and restored image side by side, for each `--input` PNG |
//! | `ldm` | `target/reproduce/ldm/ldm.safetensors` (or its folder) | `--n` samples per `--prompt`, one row per prompt, classifier-free guidance `--guidance` |
//!
//! A checkpoint's model is rebuilt from the config in its metadata (or, for the trainer's
//! `ddpm` checkpoints, from the width of `conv_in`) and loaded strictly.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{PixelCnnPP, PixelCnnPPConfig, UnetGenerator, UnetGeneratorConfig};
use unet_core::autoregressive::LogisticMixture;
use unet_core::diffusers::DiffusersUNet;
use unet_core::diffusion::{BetaSchedule, NoiseSchedule};
use unet_core::skip::FreeU;

use crate::io::{grid, read_gray, to_array2, write_gray_png};
use crate::models::{ddpm, pixelcnnpp};
use crate::{ImageError, Result};

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Model name (`ddpm`, `freeu`, `pixelcnnpp`, `pix2pix`).
    pub model: String,
    /// Checkpoint file written by the reproduction.
    pub checkpoint: PathBuf,
    /// Output PNG.
    pub out: PathBuf,
    /// Number of images (generative models).
    pub n: i64,
    /// Sampler steps (diffusion models).
    pub steps: i64,
    /// Seed of the initial noise.
    pub seed: u64,
    /// Device.
    pub device: Device,
    /// Input images (image-to-image models), 28×28 grey PNGs.
    pub inputs: Vec<PathBuf>,
    /// FreeU `(b1, b2, s1, s2)` for `freeu`.
    pub freeu: Option<FreeU>,
    /// Text prompts (text-conditioned models).
    pub prompts: Vec<String>,
    /// Classifier-free guidance scale (text-conditioned models).
    pub guidance: f64,
}

fn metadata_config<T: serde::de::DeserializeOwned>(
    ck: &unet_core::checkpoint::Checkpoint,
    path: &Path,
) -> Result<T> {
    let text = ck.metadata.get("config").ok_or_else(|| {
        ImageError::format(
            path,
            "no `config` in the checkpoint metadata (not written by a reproduction?)",
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        ImageError::format(path, format!("config in the metadata does not parse: {e}"))
    })
}

/// Loads the small ddpm U-Net from a trainer checkpoint (EMA weights when present).
pub fn load_ddpm(path: &Path, device: Device) -> Result<(nn::VarStore, DiffusersUNet)> {
    let ck = unet_core::checkpoint::read(path)?;
    let weights = unet_core::trainer::inference_weights(&ck);
    let base = weights
        .get("conv_in.weight")
        .map(|w| w.size()[0])
        .ok_or_else(|| ImageError::format(path, "no conv_in.weight: not a ddpm checkpoint"))?;
    let cfg = ddpm::small(base)?;
    let mut vs = nn::VarStore::new(device);
    let model = DiffusersUNet::new(&vs.root(), &cfg)?;
    unet_core::checkpoint::assign_strict(&mut vs, &weights, path, false)?;
    Ok((vs, model))
}

/// Samples and writes `opts.out`; returns its path.
pub fn run(opts: &SampleOptions) -> Result<PathBuf> {
    if opts.n <= 0 {
        return Err(ImageError::Invalid(format!("--n must be positive, got {}", opts.n)));
    }
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| ImageError::Io { path: dir.to_path_buf(), source: e })?;
    }
    let img = match opts.model.as_str() {
        "ddpm" | "freeu" => {
            let (_vs, mut model) = load_ddpm(&opts.checkpoint, opts.device)?;
            if opts.model == "freeu" {
                model.set_freeu(Some(opts.freeu.unwrap_or(FreeU {
                    b1: 1.5,
                    b2: 1.6,
                    s1: 0.9,
                    s2: 0.2,
                })));
            }
            let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;
            let ro = ddpm::RunOptions {
                samples: opts.n,
                sample_steps: opts.steps,
                seed: opts.seed,
                device: opts.device,
                ..ddpm::RunOptions::default()
            };
            let x = ddpm::generate(&ro, &model, &sched)?;
            ddpm::image_grid(&x, opts.n)?
        }
        "pixelcnnpp" => {
            let ck = unet_core::checkpoint::read(&opts.checkpoint)?;
            let cfg: PixelCnnPPConfig = metadata_config(&ck, &opts.checkpoint)?;
            let mut vs = nn::VarStore::new(opts.device);
            let net = PixelCnnPP::new(&vs.root(), &cfg)?;
            unet_core::checkpoint::load_strict(&mut vs, &opts.checkpoint)?;
            let mix = LogisticMixture { components: cfg.nr_logistic_mix, channels: 1 };
            tch::manual_seed(opts.seed as i64);
            let x = pixelcnnpp::sample(&net, &mix, opts.n, opts.device)?;
            ddpm::image_grid(&x, opts.n)?
        }
        "pix2pix" => {
            if opts.inputs.is_empty() {
                return Err(ImageError::Invalid(
                    "pix2pix translates images: pass one or more --input <28×28 grey PNG>".into(),
                ));
            }
            let ck = unet_core::checkpoint::read(&opts.checkpoint)?;
            let cfg: UnetGeneratorConfig = metadata_config(&ck, &opts.checkpoint)?;
            let mut vs = nn::VarStore::new(opts.device);
            let g = UnetGenerator::new(&vs.root(), &cfg)?;
            unet_core::checkpoint::load_strict(&mut vs, &opts.checkpoint)?;
            let _guard = tch::no_grad_guard();
            let mut cells: Vec<Array2<f32>> = Vec::new();
            for p in &opts.inputs {
                let a = read_gray(p)?;
                if a.dim() != (28, 28) {
                    return Err(ImageError::format(
                        p,
                        format!("pix2pix (small) takes 28×28 images, this one is {:?}", a.dim()),
                    ));
                }
                let v: Vec<f32> = a.iter().map(|&b| b as f32 / 127.5 - 1.0).collect();
                let x = Tensor::from_slice(&v).view([1, 1, 28, 28]).to_device(opts.device);
                let y = ddpm::crop28(&g.forward_t(&ddpm::pad32(&x), false)?);
                for t in [&x, &y] {
                    cells.push(to_array2(&((t.get(0).get(0).to_kind(Kind::Float) + 1.0) / 2.0))?);
                }
            }
            grid(&cells, 2, 2)?
        }
        "ldm" => {
            if opts.prompts.is_empty() {
                return Err(ImageError::Invalid(
                    "ldm is text-conditioned: pass one or more --prompt \"a photo of a sneaker\""
                        .into(),
                ));
            }
            let dir = if opts.checkpoint.is_dir() {
                opts.checkpoint.clone()
            } else {
                opts.checkpoint.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let x = crate::models::ldm::sample_from_checkpoint(
                &dir,
                &opts.prompts,
                opts.n,
                opts.steps,
                opts.guidance,
                opts.seed,
                opts.device,
            )?;
            crate::models::ldm::write_grid(&opts.out, &x, opts.n as usize)?;
            return Ok(opts.out.clone());
        }
        m => {
            return Err(ImageError::Invalid(format!(
                "`sample` knows ddpm, freeu, ldm, pixelcnnpp and pix2pix; got `{m}`"
            )))
        }
    };
    write_gray_png(&opts.out, &img)?;
    Ok(opts.out.clone())
}
