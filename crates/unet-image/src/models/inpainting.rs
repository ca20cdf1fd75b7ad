//! `inpainting`: mask-conditioned diffusion inpainting (the SmartBrush / Stable Diffusion
//! inpainting design: the denoiser sees the noisy image, the masked image and the mask).
//!
//! Full size: Stable Diffusion's inpainting U-Net — the SD v1.5 `UNet2DConditionModel` with 9
//! input channels (4 latent + 1 mask + 4 masked-image latent), as in the `unet/config.json`
//! of `runwayml/stable-diffusion-inpainting`. The small run trains the `ddpm` small design
//! with 3 input channels on Fashion-MNIST with random rectangular holes, fills held-out
//! images' holes with DDIM (keeping the known region exactly) and compares PSNR/SSIM with
//! filling the hole by the mean of the known pixels.
//!
//! Run: `cargo xtask reproduce inpainting`.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use tch::{nn, Device, Kind, Tensor};
use unet_core::diffusers::{presets, DiffusersConfig, DiffusersUNet};
use unet_core::diffusion::{
    self, BetaSchedule, Inpaint, NoiseSchedule, Prediction, SampleOptions, Sampler,
};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};

use super::ddpm::{crop28, diffusion_trainer, image_grid, pad32};
use crate::classifier::to_model_range;
use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::io::write_gray_png;
use crate::metrics::ssim;
use crate::{ImageError, Result};

/// The full-size inpainting U-Net: SD v1.5 with 9 input channels.
pub fn full() -> Result<DiffusersConfig> {
    let mut v = presets::sd_v1_5_json();
    v["in_channels"] = 9.into();
    Ok(DiffusersConfig::from_json(&v)?)
}

/// The small model: the `ddpm` small design with inputs (x_t, masked image, mask).
pub fn small(base: i64) -> Result<DiffusersConfig> {
    let mut v = super::ddpm::small(base)?.raw;
    v["in_channels"] = json!(3);
    Ok(DiffusersConfig::from_json(&v)?)
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache.
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: usize,
    /// Batch size.
    pub batch_size: i64,
    /// First-level channels.
    pub base: i64,
    /// Held-out images evaluated.
    pub eval_images: i64,
    /// DDIM steps.
    pub sample_steps: i64,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bar.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/inpainting"),
            data_cache: None,
            steps: 1200,
            batch_size: 32,
            base: 32,
            eval_images: 200,
            sample_steps: 25,
            device: Device::Cpu,
            seed: 2023,
            progress: true,
        }
    }
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Full-size parameters.
    pub full_params: i64,
    /// Small-model parameters.
    pub small_params: i64,
    /// PSNR in the hole (dB): model, mean fill.
    pub psnr_hole: (f64, f64),
    /// SSIM of the whole 28×28 image: model, mean fill.
    pub ssim: (f64, f64),
    /// Largest change outside the hole (must be 0).
    pub background_change: f64,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
}

/// Random rectangular holes (1 = missing) of 8–16 px inside the 28×28 item area of 32×32
/// images, `[n, 1, 32, 32]`, drawn from libtorch's generator.
pub fn random_masks(n: i64, device: Device) -> Tensor {
    let mask = Tensor::zeros([n, 1, 32, 32], (Kind::Float, Device::Cpu));
    let sizes = Tensor::randint_low(8, 17, [n, 2], (Kind::Int64, Device::Cpu));
    let u = Tensor::rand([n, 2], (Kind::Float, Device::Cpu));
    for i in 0..n {
        let (h, w) = (sizes.int64_value(&[i, 0]), sizes.int64_value(&[i, 1]));
        let y = 2 + ((28 - h) as f64 * u.double_value(&[i, 0])) as i64;
        let x = 2 + ((28 - w) as f64 * u.double_value(&[i, 1])) as i64;
        let _ = mask.get(i).narrow(1, y, h).narrow(2, x, w).fill_(1.0);
    }
    mask.to_device(device)
}

fn condition(x0: &Tensor, mask: &Tensor) -> Tensor {
    // Masked image: the hole set to 0 (mid-grey in [-1, 1]), plus the mask itself.
    Tensor::cat(&[x0 * (mask.neg() + 1.0), mask.shallow_clone()], 1)
}

/// PSNR (dB, data range 2 for [-1, 1]) over the hole pixels only, per image.
fn psnr_hole(a: &Tensor, b: &Tensor, mask: &Tensor) -> Vec<f64> {
    let se = ((a - b).square() * mask).flatten(1, -1).sum_dim_intlist(1, false, Kind::Double);
    let n = mask.flatten(1, -1).sum_dim_intlist(1, false, Kind::Double);
    let mse = Vec::<f64>::try_from(se / n).unwrap_or_default();
    mse.into_iter().map(|m| 10.0 * (4.0 / m.max(1e-12)).log10()).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Trains, evaluates and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| ImageError::Io { path: opts.out.clone(), source: e })?;
    let fm_dir = opts.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let full_params = {
        let vs = nn::VarStore::new(Device::Cpu);
        DiffusersUNet::new(&vs.root(), &full()?)?;
        parameter_count(&vs)
    };
    let cfg = small(opts.base)?;
    let data = pad32(&to_model_range(&train));
    let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;

    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let model = DiffusersUNet::new(&vs.root(), &cfg)?;
    let small_params = parameter_count(&vs);
    let mut trainer =
        diffusion_trainer(&vs, opts.steps, opts.seed, opts.out.join("train"), opts.progress)?;
    let n = data.size()[0];
    let t0 = Instant::now();
    trainer.run(&mut vs, |_| {
        let idx = Tensor::randint(n, [opts.batch_size], (Kind::Int64, Device::Cpu));
        let x0 = data.index_select(0, &idx).to_device(opts.device);
        let mask = random_masks(opts.batch_size, opts.device);
        let t = sched.sample_timesteps(opts.batch_size, opts.device);
        let noise = Tensor::randn_like(&x0);
        let inp = Tensor::cat(&[sched.q_sample(&x0, &t, &noise), condition(&x0, &mask)], 1);
        let out = model.forward(&inp, &t, None, None)?;
        diffusion::loss(&sched, Prediction::Epsilon, &out, &x0, &noise, &t, None)
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    trainer.load_ema_into_model();

    // Held-out evaluation.
    tch::manual_seed(opts.seed as i64 + 1);
    let k = opts.eval_images.min(test.len() as i64);
    let x0 = pad32(&to_model_range(&test).narrow(0, 0, k)).to_device(opts.device);
    let mask = random_masks(k, opts.device);
    let cond = condition(&x0, &mask);
    let mut den = |x: &Tensor, t: &Tensor| -> unet_core::Result<Tensor> {
        model.forward(&Tensor::cat(&[x.shallow_clone(), cond.shallow_clone()], 1), t, None, None)
    };
    let so = SampleOptions {
        clip_x0: Some(1.0),
        inpaint: Some(Inpaint { known: &x0, mask: &mask }),
        ..Default::default()
    };
    let filled = diffusion::sample(
        &sched,
        Sampler::Ddim { steps: opts.sample_steps, eta: 0.0 },
        Tensor::randn_like(&x0),
        &mut den,
        &so,
    )?
    .clamp(-1.0, 1.0);
    // Baseline: the hole filled with the mean of the image's known pixels.
    let known_mean =
        (&x0 * (mask.neg() + 1.0)).flatten(1, -1).sum_dim_intlist(1, false, Kind::Float)
            / (mask.neg() + 1.0).flatten(1, -1).sum_dim_intlist(1, false, Kind::Float);
    let mean_fill = &x0 * (mask.neg() + 1.0) + &mask * known_mean.view([-1, 1, 1, 1]);

    let (x28, f28, m28, b28) = (crop28(&x0), crop28(&filled), crop28(&mask), crop28(&mean_fill));
    let background_change = ((&f28 - &x28) * (m28.neg() + 1.0)).abs().max().double_value(&[]);
    let psnr_hole = (mean(&psnr_hole(&f28, &x28, &m28)), mean(&psnr_hole(&b28, &x28, &m28)));
    let to01 = |t: &Tensor| (t + 1.0) / 2.0;
    let ssim =
        (mean(&ssim(&to01(&f28), &to01(&x28), 1.0)?), mean(&ssim(&to01(&b28), &to01(&x28), 1.0)?));
    let r = RunResult {
        full_params,
        small_params,
        psnr_hole,
        ssim,
        background_change,
        losses: trainer.losses().to_vec(),
        train_seconds,
    };

    // Grid rows: masked input, model, mean fill, original.
    let masked_view = &x28 * (m28.neg() + 1.0) + &m28 * 0.0;
    let rows: Vec<Tensor> =
        (0..8).flat_map(|i| [masked_view.get(i), f28.get(i), b28.get(i), x28.get(i)]).collect();
    write_gray_png(
        opts.out.join("samples.png"),
        &image_grid(&Tensor::stack(&rows, 0).to_device(Device::Cpu), 32)?,
    )?;
    plot_lines(
        &opts.out.join("loss.png"),
        "inpainting: ε-prediction loss",
        "step",
        "MSE",
        &[
            Series::new("loss", r.losses.clone()).faint(),
            Series::new("EMA 0.05", smooth(&r.losses, 0.05)),
        ],
        true,
    )?;
    let f = |x: f64| format!("{x:.3}");
    let table = markdown_table(
        &["method", "PSNR in the hole (dB) ↑", "SSIM, whole image ↑"],
        &[
            vec!["diffusion inpainting (small preset)".into(), f(r.psnr_hole.0), f(r.ssim.0)],
            vec!["mean fill of the known pixels (baseline)".into(), f(r.psnr_hole.1), f(r.ssim.1)],
        ],
    );
    let text = format!(
        "# inpainting: mask-conditioned diffusion\n\nReproduced with `cargo xtask reproduce inpainting`.\n\n\
         | preset | parameters |\n|---|---|\n| full size: SD v1.5 inpainting U-Net (9 input channels) | {} |\n| small (trained here) | {} |\n\n\
         Fashion-MNIST ({} training images, {}), random 8–16 px rectangular holes; {} held-out test images with \
         their own holes; DDIM {} steps with the known region re-imposed at every step.\n\n{}\n\
         Background preserved: largest change outside the hole {:.1e}.\n\nRows of the grid: masked input, \
         diffusion, mean fill, original.\n\n![samples](samples.png)\n\n![loss](loss.png)\n\n\
         Training: {} steps of batch {}, {:.0} s.\n",
        thousands(r.full_params),
        thousands(r.small_params),
        train.len(),
        train.source,
        k,
        opts.sample_steps,
        table,
        r.background_change,
        opts.steps,
        opts.batch_size,
        r.train_seconds,
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(&r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(r)
}
