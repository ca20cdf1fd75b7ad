//! `ddpm`: Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (NeurIPS 2020).
//!
//! Full size: the CIFAR-10 U-Net (diffusers `UNet2DModel`, config of `google/ddpm-cifar10-32`:
//! ch 128, mult (1, 2, 2, 2), 2 res blocks, attention at 16×16) — 35,746,307 parameters; the
//! paper reports 35.7M. The small run trains a narrower model of the same design on
//! Fashion-MNIST (padded to 32×32, in [-1, 1]) with the ε-objective and the linear schedule,
//! samples with DDIM, and measures FD-FMNIST against held-out test images — next to the same
//! model trained with its skip connections zeroed (the survey's Fig. 6 ablation).
//!
//! Run: `cargo xtask reproduce ddpm` (add `--steps N`, `--device cuda`).

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array2;
use serde_json::json;
use tch::{nn, Device, Kind, Tensor};
use unet_core::diffusers::{presets, DiffusersConfig, DiffusersUNet};
use unet_core::diffusion::{self, BetaSchedule, NoiseSchedule, Prediction, SampleOptions, Sampler};
use unet_core::distributed::{self, ShardedSampler};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig};

use crate::classifier::{fd_fmnist, to_model_range, FmnistClassifier};
use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::io::{grid, to_array2, write_gray_png};
use crate::{ImageError, Result};

/// The published full-size parameter count (diffusers on google/ddpm-cifar10-32's config).
pub const FULL_PARAMS: i64 = 35_746_307;

/// The full-size CIFAR-10 model.
pub fn full() -> Result<DiffusersConfig> {
    Ok(presets::ddpm_cifar10()?)
}

/// The small model: the same block design (DDPM padding, sinusoid, attention at the middle
/// resolution), channels `base · (1, 2, 2)`, one residual block per level, one input channel.
pub fn small(base: i64) -> Result<DiffusersConfig> {
    Ok(DiffusersConfig::from_json(&json!({
        "_class_name": "UNet2DModel",
        "attention_head_dim": null,
        "block_out_channels": [base, 2 * base, 2 * base],
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
        "downsample_padding": 0, "flip_sin_to_cos": false, "freq_shift": 1,
        "in_channels": 1, "out_channels": 1, "layers_per_block": 1,
        "norm_eps": 1e-06, "norm_num_groups": 8, "sample_size": 32
    }))?)
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache (`fashion-mnist/`, and `../models/` for the cached classifier).
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps per model.
    pub steps: usize,
    /// Batch size.
    pub batch_size: i64,
    /// Channels of the first level of the small model.
    pub base: i64,
    /// Images generated per model for FD-FMNIST.
    pub samples: i64,
    /// DDIM steps when sampling.
    pub sample_steps: i64,
    /// Classifier training steps.
    pub classifier_steps: usize,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bars.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/ddpm"),
            data_cache: None,
            steps: 1000,
            batch_size: 32,
            base: 32,
            samples: 400,
            sample_steps: 25,
            classifier_steps: 800,
            device: Device::Cpu,
            seed: 2020,
            progress: true,
        }
    }
}

/// Results of one trained variant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Variant {
    /// `skips` or `no-skips`.
    pub name: String,
    /// FD-FMNIST of its samples against the test images.
    pub fd: f64,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
    /// Sampling seconds for all samples.
    pub sample_seconds: f64,
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Full-size parameter count.
    pub full_params: i64,
    /// Small-model parameter count.
    pub small_params: i64,
    /// The classifier's test accuracy.
    pub classifier_accuracy: f64,
    /// FD-FMNIST between real training and test images (the floor).
    pub fd_real: f64,
    /// FD-FMNIST of uniform noise images (the ceiling).
    pub fd_noise: f64,
    /// With skips, then without.
    pub variants: Vec<Variant>,
}

/// 28×28 → 32×32 with the background value −1.
pub(crate) fn pad32(x: &Tensor) -> Tensor {
    x.pad([2, 2, 2, 2], "constant", -1.0)
}

pub(crate) fn crop28(x: &Tensor) -> Tensor {
    x.narrow(2, 2, 28).narrow(3, 2, 28)
}

/// The trainer of the small diffusion runs (`ddpm`, `inpainting`): AdamW 2e-3 with 5 % warm-up
/// and cosine decay to 5 %, clipping 1.0, EMA 0.995, a checkpoint every 500 steps; a fresh
/// run starts a fresh `metrics.jsonl` in `out_dir`.
pub(crate) fn diffusion_trainer(
    vs: &nn::VarStore,
    steps: usize,
    seed: u64,
    out_dir: PathBuf,
    progress: bool,
) -> Result<Trainer> {
    if distributed::is_primary() {
        let _ = std::fs::remove_file(out_dir.join("metrics.jsonl"));
    }
    Ok(Trainer::new(vs, TrainerConfig::diffusion(2e-3, steps, seed, out_dir, progress))?)
}

fn train_variant(
    opts: &RunOptions,
    cfg: &DiffusersConfig,
    skips: bool,
    data: &Tensor,
    sched: &NoiseSchedule,
) -> Result<(nn::VarStore, DiffusersUNet, Variant)> {
    let name = if skips { "skips" } else { "no-skips" };
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let mut model = DiffusersUNet::new(&vs.root(), cfg)?;
    model.set_skips_enabled(skips);
    let mut trainer =
        diffusion_trainer(&vs, opts.steps, opts.seed, opts.out.join(name), opts.progress)?;
    let n = data.size()[0];
    // In a data-parallel launch every rank takes its own shard of each epoch; alone, batches
    // are drawn with replacement under the trainer's per-step seed.
    let shards = match trainer.group() {
        Some(_) => Some(ShardedSampler::for_current(n as usize, opts.seed, true)?),
        None => None,
    };
    let t0 = Instant::now();
    trainer.run(&mut vs, |step| {
        let idx = match &shards {
            Some(s) => Tensor::from_slice(&s.batch(step, opts.batch_size as usize)),
            None => Tensor::randint(n, [opts.batch_size], (Kind::Int64, Device::Cpu)),
        };
        let x0 = data.index_select(0, &idx).to_device(opts.device);
        let t = sched.sample_timesteps(opts.batch_size, opts.device);
        let noise = Tensor::randn_like(&x0);
        let out = model.forward(&sched.q_sample(&x0, &t, &noise), &t, None, None)?;
        diffusion::loss(sched, Prediction::Epsilon, &out, &x0, &noise, &t, None)
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    trainer.load_ema_into_model();
    let losses = trainer.losses().to_vec();
    Ok((
        vs,
        model,
        Variant { name: name.into(), fd: f64::NAN, losses, train_seconds, sample_seconds: 0.0 },
    ))
}

/// Generates `opts.samples` images (DDIM, seeded) cropped to 28×28 in [-1, 1].
pub fn generate(opts: &RunOptions, model: &DiffusersUNet, sched: &NoiseSchedule) -> Result<Tensor> {
    tch::manual_seed(opts.seed as i64 + 7);
    let mut out = Vec::new();
    let mut left = opts.samples;
    while left > 0 {
        let b = left.min(100);
        let xt = Tensor::randn([b, 1, 32, 32], (Kind::Float, opts.device));
        let mut den = |x: &Tensor, t: &Tensor| -> unet_core::Result<Tensor> {
            model.forward(x, t, None, None)
        };
        let so = SampleOptions { clip_x0: Some(1.0), ..Default::default() };
        let x = diffusion::sample(
            sched,
            Sampler::Ddim { steps: opts.sample_steps, eta: 0.0 },
            xt,
            &mut den,
            &so,
        )?;
        out.push(crop28(&x).clamp(-1.0, 1.0).to_device(Device::Cpu));
        left -= b;
    }
    Ok(Tensor::cat(&out, 0))
}

/// The first `n` images of `[N, 1, H, W]` in [-1, 1] as an 8-column grid in [0, 1].
pub fn image_grid(x: &Tensor, n: i64) -> Result<Array2<f32>> {
    let cells = (0..n.min(x.size()[0]))
        .map(|i| to_array2(&((x.get(i).get(0) + 1.0) / 2.0)))
        .collect::<Result<Vec<_>>>()?;
    grid(&cells, 8, 2)
}

/// A worker (rank > 0) of a data-parallel launch: trains both variants with rank 0, which
/// measures them and writes every file.
pub fn train_worker(opts: &RunOptions) -> Result<()> {
    let fm_dir = opts.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let data = pad32(&to_model_range(&train));
    let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;
    let cfg = small(opts.base)?;
    for skips in [true, false] {
        train_variant(opts, &cfg, skips, &data, &sched)?;
    }
    Ok(())
}

/// Trains both variants, measures them and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| ImageError::Io { path: opts.out.clone(), source: e })?;
    let fm_dir = opts.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let models_dir = opts.data_cache.as_ref().and_then(|d| d.parent().map(|p| p.join("models")));
    let (clf, classifier_accuracy) = FmnistClassifier::load_or_train(
        models_dir.as_deref(),
        &train,
        &test,
        opts.classifier_steps,
    )?;
    tracing::info!(accuracy = classifier_accuracy, "FD-FMNIST classifier");

    let full_params = {
        let vs = nn::VarStore::new(Device::Cpu);
        DiffusersUNet::new(&vs.root(), &full()?)?;
        parameter_count(&vs)
    };
    let cfg = small(opts.base)?;
    let train_x = to_model_range(&train);
    let test_x = to_model_range(&test);
    let data = pad32(&train_x);
    let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;

    let k = opts.samples.min(train_x.size()[0]);
    let fd_real = fd_fmnist(&clf, &train_x.narrow(0, 0, k), &test_x)?;
    tch::manual_seed(1);
    let noise = Tensor::rand([opts.samples, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let fd_noise = fd_fmnist(&clf, &noise, &test_x)?;

    // Both variants train before either is measured, so the workers of a data-parallel launch
    // (which only train) never wait for rank 0's sampling.
    let trained = [true, false]
        .into_iter()
        .map(|skips| train_variant(opts, &cfg, skips, &data, &sched))
        .collect::<Result<Vec<_>>>()?;
    let mut variants = Vec::new();
    let mut small_params = 0;
    for (vs, model, mut v) in trained {
        small_params = parameter_count(&vs);
        let t0 = Instant::now();
        let samples = generate(opts, &model, &sched)?;
        v.sample_seconds = t0.elapsed().as_secs_f64();
        v.fd = fd_fmnist(&clf, &samples, &test_x)?;
        tracing::info!(variant = %v.name, fd = v.fd, "FD-FMNIST");
        let g = image_grid(&samples, 64)?;
        write_gray_png(opts.out.join(format!("samples_{}.png", v.name)), &g)?;
        variants.push(v);
    }
    write_gray_png(opts.out.join("real_test.png"), &image_grid(&test_x, 64)?)?;
    let result =
        RunResult { full_params, small_params, classifier_accuracy, fd_real, fd_noise, variants };
    write_report(opts, &cfg, &train, test.len(), &result)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    cfg: &DiffusersConfig,
    train: &FashionMnist,
    n_test: usize,
    r: &RunResult,
) -> Result<()> {
    let series: Vec<Series> = r
        .variants
        .iter()
        .flat_map(|v| {
            [
                Series::new(format!("{} (raw)", v.name), v.losses.clone()).faint(),
                Series::new(format!("{} EMA", v.name), smooth(&v.losses, 0.05)),
            ]
        })
        .collect();
    plot_lines(
        &opts.out.join("loss.png"),
        "ddpm: ε-prediction loss",
        "step",
        "MSE",
        &series,
        true,
    )?;
    let f = |x: f64| format!("{x:.2}");
    let mut rows = vec![vec!["real training images (floor)".to_string(), f(r.fd_real)]];
    for v in &r.variants {
        let label = if v.name == "skips" {
            "DDPM U-Net (small preset)"
        } else {
            "same U-Net, skips zeroed (Fig. 6 ablation)"
        };
        rows.push(vec![label.to_string(), f(v.fd)]);
    }
    rows.push(vec!["uniform noise (ceiling)".to_string(), f(r.fd_noise)]);
    let (with, without) = (r.variants[0].fd, r.variants[1].fd);
    let text = format!(
        r#"# ddpm: Ho, Jain & Abbeel 2020

*Denoising Diffusion Probabilistic Models*, NeurIPS 2020 (arXiv:2006.11239). Reproduced with
`cargo xtask reproduce ddpm`.

## Architecture

| preset | parameters | notes |
|---|---|---|
| full size (`presets::ddpm_cifar10()`, diffusers `UNet2DModel`) | {full} | CIFAR-10: ch 128, mult (1,2,2,2), 2 res blocks, attention at 16×16; paper: 35.7M |
| small (trained here) | {small} | channels {ch:?}, 1 res block per level, attention at the middle level, 32×32 |

## Task

Unconditional generation of Fashion-MNIST ({n} training images from {src}, padded to 32×32,
scaled to [-1, 1]); ε-prediction, linear β schedule (1e-4 → 0.02, T = 1000), AdamW with warm-up
and cosine decay, EMA 0.995, {steps} steps of batch {batch} per model; sampling with DDIM
({ss} steps, η = 0), {ns} samples per model.

**FD-FMNIST**: Fréchet distance on the 128-d features of a Fashion-MNIST classifier trained
here (test accuracy {acc:.3}); *not* FID (no Inception-v3 weights are available offline).
Lower is better; measured against the {nt} held-out test images.

## Results

{table}
Skips help: **{better}** (FD {with:.2} with skips vs {without:.2} without).

![loss](loss.png)

Samples with skips / without skips / real test images:

![with skips](samples_skips.png) ![without skips](samples_no-skips.png) ![real](real_test.png)

## Timings

{timing}
"#,
        full = thousands(r.full_params),
        small = thousands(r.small_params),
        ch = cfg.block_out_channels,
        n = train.len(),
        src = train.source,
        steps = opts.steps,
        batch = opts.batch_size,
        ss = opts.sample_steps,
        ns = opts.samples,
        acc = r.classifier_accuracy,
        nt = n_test,
        table = markdown_table(&["samples", "FD-FMNIST"], &rows),
        better = with < without,
        timing = markdown_table(
            &["variant", "training (s)", "sampling (s)"],
            &r.variants
                .iter()
                .map(|v| vec![
                    v.name.clone(),
                    format!("{:.1}", v.train_seconds),
                    format!("{:.1}", v.sample_seconds)
                ])
                .collect::<Vec<_>>()
        ),
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
