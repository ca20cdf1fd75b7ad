//! `3dgaunet`: Shi et al. 2023, "3DGAUnet: 3D Generative Adversarial Networks with a 3D U-Net
//! Based Generator to Achieve the Accurate and Effective Synthesis of Clinical Tumor Image
//! Data for Pancreatic Cancer" (Cancers 15(23), 2023): a GAN whose generator is a 3D U-Net.
//!
//! Generator: the Çiçek 2016 3D U-Net of the core ([`UNet3d`]; two `conv 3 → BN → ReLU` per
//! level, channels doubled before pooling, 3 poolings, affine batch norm) mapping a Gaussian
//! noise volume `[B, 1, 32, 32, 32]` to a `tanh` occupancy in [-1, 1]. Discriminator
//! ([`VoxelDiscriminator`]): four stride-2 `4³` convolutions (`w, 2w, 4w, 8w` channels,
//! LeakyReLU 0.2, no normalisation) and a linear head on the `2³` map. Loss: the
//! non-saturating GAN loss (Goodfellow 2014) with the R1 gradient penalty on real shapes
//! (Mescheder et al. 2018), one discriminator step per generator step, Adam (β = 0.5, 0.99),
//! an EMA of the generator; each network's trainer checkpoints every 500 steps and a run
//! resumes from them. Data, evaluation and artefacts: [`super::shapes`].
//!
//! Run: `cargo xtask reproduce 3dgaunet` (add `--steps N`, `--device cuda`).

use std::path::PathBuf;
use std::time::Instant;

use tch::{nn, nn::Module, Device, Kind, Tensor};
use unet_core::arch::{UNet3d, UNet3dConfig};
use unet_core::gan::GanLoss;
use unet_core::layers::ConvKind;
use unet_core::parameter_count;
use unet_core::report::{plot_lines, progress_bar, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig, CHECKPOINT};

use super::shapes::{self, secs, ShapeData, ShapeMetrics};
use crate::error::{Error3d, Result};

/// Grid size of the generated shapes.
pub const RES: usize = 32;

/// The full-size generator: [`UNet3dConfig::cicek2016`] (base 32, 3 poolings) with one noise
/// channel in, one occupancy channel out and learnable batch-norm scale/shift.
pub fn full_generator() -> UNet3dConfig {
    UNet3dConfig { in_channels: 1, out_channels: 1, affine_norm: true, ..UNet3dConfig::cicek2016() }
}

/// The trained generator: the same design with `base` channels at the first convolution.
pub fn small_generator(base: i64) -> UNet3dConfig {
    UNet3dConfig {
        dims: 3,
        in_channels: 1,
        out_channels: 1,
        base,
        depth: 3,
        conv: ConvKind::Full,
        affine_norm: true,
    }
}

/// Configuration of [`VoxelDiscriminator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoxelDiscriminatorConfig {
    /// Channels of the first convolution; layer `i` has `width · 2^i`. Full size: 32
    /// (32 → 64 → 128 → 256).
    pub width: i64,
    /// Stride-2 convolutions (4).
    pub layers: usize,
    /// Input grid size (32).
    pub res: i64,
}

impl Default for VoxelDiscriminatorConfig {
    fn default() -> Self {
        Self { width: 32, layers: 4, res: RES as i64 }
    }
}

/// A 3D strided-convolution critic: `layers` × (`conv 4³ stride 2 pad 1` → LeakyReLU 0.2), then
/// a linear layer on the flattened map to one logit. Names: `convs.{i}`, `head`.
#[derive(Debug)]
pub struct VoxelDiscriminator {
    convs: Vec<nn::Conv3D>,
    head: nn::Linear,
}

impl VoxelDiscriminator {
    /// Builds it under `path`.
    pub fn new(path: &nn::Path, cfg: &VoxelDiscriminatorConfig) -> Result<Self> {
        let side = cfg.res >> cfg.layers;
        if cfg.width <= 0 || cfg.layers == 0 || side == 0 || side << cfg.layers != cfg.res {
            return Err(Error3d::invalid(format!(
                "3dgaunet: discriminator width {} with {} stride-2 layers does not fit a {}³ grid",
                cfg.width, cfg.layers, cfg.res
            )));
        }
        let conv_cfg = nn::ConvConfig { stride: 2, padding: 1, ..Default::default() };
        let mut convs = Vec::with_capacity(cfg.layers);
        let mut c_in = 1;
        for i in 0..cfg.layers {
            let c_out = cfg.width << i;
            convs.push(nn::conv3d(path / "convs" / i, c_in, c_out, 4, conv_cfg));
            c_in = c_out;
        }
        let head = nn::linear(path / "head", c_in * side * side * side, 1, Default::default());
        Ok(Self { convs, head })
    }

    /// `[B, 1, R, R, R]` → logits `[B, 1]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for c in &self.convs {
            h = c.forward(&h);
            h = h.maximum(&(&h * 0.2)); // LeakyReLU(0.2)
        }
        self.head.forward(&h.flatten(1, -1))
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// The datasets folder (`<cache>/cgal/data/meshes/…`); `None` = the embedded meshes.
    pub data_cache: Option<PathBuf>,
    /// Generator (and discriminator) steps.
    pub steps: usize,
    /// Batch size.
    pub batch_size: i64,
    /// Channels of the generator's first convolution.
    pub base: i64,
    /// Channels of the discriminator's first convolution.
    pub disc_width: i64,
    /// Adam learning rate of both networks.
    pub lr: f64,
    /// Weight γ of the R1 penalty `γ/2 · E‖∇D(x_real)‖²`.
    pub r1_gamma: f64,
    /// Samples to generate (0: 3 × the reference set, at least 16).
    pub samples: usize,
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
            out: PathBuf::from("target/reproduce/3dgaunet"),
            data_cache: crate::data::default_cache(),
            steps: 400,
            batch_size: 8,
            base: 8,
            disc_width: 16,
            lr: 2e-4,
            r1_gamma: 1.0,
            samples: 0,
            device: Device::Cpu,
            seed: 2023,
            progress: true,
        }
    }
}

/// Measured results.
#[derive(serde::Serialize, Debug, Clone)]
pub struct RunResult {
    /// Full-size generator / discriminator parameters.
    pub full_params: (i64, i64),
    /// Trained generator / discriminator parameters.
    pub small_params: (i64, i64),
    /// The generator's samples.
    pub model: ShapeMetrics,
    /// The training shapes taken as samples.
    pub memoriser: ShapeMetrics,
    /// Random blobs at the training occupancy.
    pub random: ShapeMetrics,
    /// `(step, generator loss)`.
    pub g_losses: Vec<(f64, f64)>,
    /// `(step, discriminator loss + R1)`.
    pub d_losses: Vec<(f64, f64)>,
    /// Training seconds (this process).
    pub train_seconds: f64,
    /// Seconds per step (one D and one G update; this process).
    pub seconds_per_step: f64,
    /// Sampling seconds.
    pub sample_seconds: f64,
    /// The PLY files written.
    pub ply_files: Vec<PathBuf>,
    /// Training / reference shapes.
    pub shapes: (usize, usize),
}

/// Generates `n` shapes: `tanh(G(z))` for Gaussian noise volumes, in batches of 16 with batch
/// statistics (as in training); `[n, 1, 32, 32, 32]` in [-1, 1] on the CPU.
pub fn generate(gen: &UNet3d, n: usize, device: Device, seed: u64) -> Result<Tensor> {
    tch::manual_seed(seed as i64);
    let r = RES as i64;
    let _guard = tch::no_grad_guard();
    let mut out = Vec::new();
    let mut left = n as i64;
    while left > 0 {
        let b = left.min(16);
        let z = Tensor::randn([b, 1, r, r, r], (Kind::Float, device));
        out.push(gen.forward_t(&z, true)?.tanh().to_device(Device::Cpu));
        left -= b;
    }
    Ok(Tensor::cat(&out, 0))
}

fn gan_trainer(
    vs: &nn::VarStore,
    opts: &RunOptions,
    name: &str,
    ema: Option<f64>,
) -> Result<Trainer> {
    let dir = opts.out.join(name);
    Ok(Trainer::new(
        vs,
        TrainerConfig {
            lr: opts.lr,
            betas: (0.5, 0.99),
            total_steps: opts.steps,
            warmup_steps: 0,
            min_lr_ratio: 1.0,
            ema_decay: ema,
            checkpoint_every: 500,
            seed: opts.seed,
            out_dir: dir,
            progress: false,
            ..TrainerConfig::default()
        },
    )?)
}

/// Trains the GAN (resuming from `<out>/{generator,discriminator}/checkpoint.safetensors` when
/// both exist), samples, measures the samples and both baselines, and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    if opts.steps == 0 || opts.batch_size <= 0 || opts.base <= 0 {
        return Err(Error3d::invalid("3dgaunet: need steps, a batch and a base width"));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| Error3d::io(out, e))?;
    let data = ShapeData::load(opts.data_cache.as_deref(), RES)?;
    let x = data.augmented_train()?;
    let n_train = x.size()[0];
    let dcfg = VoxelDiscriminatorConfig { width: opts.disc_width, ..Default::default() };
    let gcfg = small_generator(opts.base);

    let full_params = {
        let g = nn::VarStore::new(Device::Cpu);
        UNet3d::new(&g.root(), &full_generator())?;
        let d = nn::VarStore::new(Device::Cpu);
        VoxelDiscriminator::new(&d.root(), &VoxelDiscriminatorConfig::default())?;
        (parameter_count(&g), parameter_count(&d))
    };

    tch::manual_seed(opts.seed as i64);
    let mut g_vs = nn::VarStore::new(opts.device);
    let gen = UNet3d::new(&g_vs.root(), &gcfg)?;
    let mut d_vs = nn::VarStore::new(opts.device);
    let disc = VoxelDiscriminator::new(&d_vs.root(), &dcfg)?;
    let small_params = (parameter_count(&g_vs), parameter_count(&d_vs));
    let mut g_tr = gan_trainer(&g_vs, opts, "generator", Some(0.995))?;
    let mut d_tr = gan_trainer(&d_vs, opts, "discriminator", None)?;
    if out.join("generator").join(CHECKPOINT).exists()
        && out.join("discriminator").join(CHECKPOINT).exists()
    {
        g_tr.resume(&mut g_vs)?;
        d_tr.resume(&mut d_vs)?;
        if g_tr.step() != d_tr.step() {
            return Err(Error3d::invalid(format!(
                "3dgaunet: generator checkpoint at step {} but discriminator at {}",
                g_tr.step(),
                d_tr.step()
            )));
        }
    }
    let loss = GanLoss::Vanilla;
    let r = RES as i64;
    let first = g_tr.step();
    let bar = opts.progress.then(|| {
        let b = progress_bar(opts.steps as u64, "3dgaunet: G + D");
        b.set_position(first as u64);
        b
    });
    let t0 = Instant::now();
    for step in first..opts.steps {
        tch::manual_seed((opts.seed + step as u64) as i64);
        let idx = Tensor::randint(n_train, [opts.batch_size], (Kind::Int64, Device::Cpu));
        let real = x.index_select(0, &idx).to_device(opts.device).set_requires_grad(true);
        let z = Tensor::randn([opts.batch_size, 1, r, r, r], (Kind::Float, opts.device));
        let fake = gen.forward_t(&z, true)?.tanh();
        // 1. Discriminator: non-saturating loss + R1 on the real shapes.
        let d_real = disc.forward(&real);
        let d_fake = disc.forward(&fake.detach());
        let grads = Tensor::run_backward(&[d_real.sum(Kind::Float)], &[&real], true, true);
        let r1 = grads
            .first()
            .map(|g| {
                g.square().flatten(1, -1).sum_dim_intlist(1, false, Kind::Float).mean(Kind::Float)
            })
            .ok_or_else(|| Error3d::invalid("3dgaunet: no R1 gradient"))?;
        let d_loss = loss.discriminator(&d_real, &d_fake) + r1 * (0.5 * opts.r1_gamma);
        let dl = d_tr.update(&d_loss)?;
        // 2. Generator: fool the updated discriminator.
        let g_loss = loss.generator(&disc.forward(&fake));
        let gl = g_tr.update(&g_loss)?;
        if let Some(b) = &bar {
            b.set_message(format!("G {gl:.3}  D {dl:.3}"));
            b.inc(1);
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    let train_seconds = secs(t0);
    let seconds_per_step = train_seconds / opts.steps.saturating_sub(first).max(1) as f64;
    if first < opts.steps {
        g_tr.save()?;
        d_tr.save()?;
    }
    g_tr.load_ema_into_model();
    let (g_losses, d_losses) = (g_tr.losses().to_vec(), d_tr.losses().to_vec());

    let n = if opts.samples == 0 { data.sample_count() } else { opts.samples };
    let t0 = Instant::now();
    let gen_x = generate(&gen, n, opts.device, opts.seed + 7)?;
    let sample_seconds = secs(t0);
    let scored = shapes::score_samples(&data, &gen_x, out, opts.seed + 11)?;
    let result = RunResult {
        full_params,
        small_params,
        model: scored.model,
        memoriser: scored.memoriser,
        random: scored.random,
        g_losses,
        d_losses,
        train_seconds,
        seconds_per_step,
        sample_seconds,
        ply_files: scored.ply_files,
        shapes: (data.train.len(), data.reference.len()),
    };
    write_report(opts, &gcfg, &dcfg, &data, &result)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    gcfg: &UNet3dConfig,
    dcfg: &VoxelDiscriminatorConfig,
    data: &ShapeData,
    r: &RunResult,
) -> Result<()> {
    let out = &opts.out;
    plot_lines(
        &out.join("loss.png"),
        "3dgaunet: non-saturating GAN losses (EMA 0.05)",
        "step",
        "loss",
        &[
            Series::new("G raw", r.g_losses.clone()).faint(),
            Series::new("G (fool D)", smooth(&r.g_losses, 0.05)),
            Series::new("D raw", r.d_losses.clone()).faint(),
            Series::new("D (real vs fake) + R1", smooth(&r.d_losses, 0.05)),
        ],
        false,
    )?;
    let n = r.model.samples;
    let table = shapes::results_table(&[
        ("**3DGAUnet (trained preset)**", &r.model),
        ("nearest-training-shape memoriser", &r.memoriser),
        ("random blobs", &r.random),
    ]);
    let text = format!(
        r#"# 3dgaunet: Shi et al. 2023

*3DGAUnet: 3D Generative Adversarial Networks with a 3D U-Net Based Generator to Achieve the
Accurate and Effective Synthesis of Clinical Tumor Image Data for Pancreatic Cancer*, Cancers
15(23), 2023. Reproduced with `cargo xtask reproduce 3dgaunet`.

## Architecture

| preset | generator | discriminator |
|---|---|---|
| full size (`gaunet::full_generator()`, `VoxelDiscriminatorConfig::default()`) | {fg} | {fd} |
| trained here | {sg} | {sd} |

Generator: the Çiçek 2016 3D U-Net (`UNet3dConfig::cicek2016()`: two `conv 3³ → BN → ReLU`
per level, channels doubled before each of 3 max-pools, up-convolutions, skip
concatenation; here 1 noise channel in, 1 channel out, learnable batch-norm scale/shift),
`tanh` output; its input is a Gaussian noise volume of the output's size. Discriminator: four
stride-2 `4³` convolutions ({dw}·(1, 2, 4, 8) channels trained, 32·(1, 2, 4, 8) full size),
LeakyReLU 0.2, no normalisation, a linear head on the 2³ map. Trained generator base
{base} (full size 32). The paper's exact layer table and loss weights were not available
offline: this is our reading of "a GAN with a 3D U-Net generator". Trained generator config:
`{gjson:?}`.

## Task

Unconditional generation of solid {res}³ voxel shapes (the paper's pancreatic-tumour CT
volumes are not available offline): {src}, sorted by name, every 5th held out as the
reference set ({nr} shapes), {nt} training shapes × 8 symmetries about the vertical y axis
(90° rotations, mirror flip of x) in {{-1, 1}}. Loss: non-saturating GAN (Goodfellow 2014)
with the R1 penalty γ/2·E‖∇D(x_real)‖² (Mescheder et al. 2018, γ = {gamma}) — chosen over
WGAN-GP because it needs one critic step per generator step instead of five; Adam lr {lr}
(β = 0.5, 0.99) for both networks, one D step per G step, {steps} steps of batch {batch}, EMA
0.995 of the generator's weights for sampling (batch statistics in its batch norm). Occupancy
= `tanh` output > 0.

## Results

{metrics_md}

{table}
![losses](loss.png)

Top: 16 samples; bottom: 16 training shapes; each as three depth-shaded views (along z with y
up, along x with y up, from above):

![samples](samples.png)

Marching-cubes meshes (iso 0.5 of the occupancy, binary PLY, open in MeshLab):

{plys}

## Timings

Training {train:.1} s ({sps:.3} s per G+D step, {device:?}); sampling {n} shapes {samp:.1} s.
"#,
        fg = thousands(r.full_params.0),
        fd = thousands(r.full_params.1),
        sg = thousands(r.small_params.0),
        sd = thousands(r.small_params.1),
        dw = dcfg.width,
        base = gcfg.base,
        gjson = gcfg,
        res = RES,
        src = data.source,
        nr = data.reference.len(),
        nt = data.train.len(),
        gamma = opts.r1_gamma,
        lr = opts.lr,
        steps = opts.steps,
        batch = opts.batch_size,
        metrics_md = shapes::metrics_markdown(data, n),
        plys = shapes::ply_list(&r.ply_files),
        train = r.train_seconds,
        sps = r.seconds_per_step,
        device = opts.device,
        samp = r.sample_seconds,
    );
    crate::error::write_atomic(&out.join("report.md"), text.as_bytes())?;
    let json = serde_json::json!({
        "model": "3dgaunet",
        "loss": "non-saturating + R1",
        "base": gcfg.base,
        "disc_width": dcfg.width,
        "r1_gamma": opts.r1_gamma,
        "lr": opts.lr,
        "steps": opts.steps,
        "batch_size": opts.batch_size,
        "source": data.source,
        "result": r,
    });
    let json = serde_json::to_string_pretty(&json).unwrap_or_default();
    crate::error::write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
