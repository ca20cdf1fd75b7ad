//! `lumiere` and `latent-shift`: diffusion models that generate whole moving Fashion-MNIST clips,
//! each measured against the frame-independent image U-Net trained the same way.
//!
//! * **lumiere** (Bar-Tal et al. 2024): the Space-Time U-Net — (2+1)D residual blocks, every
//!   down-sampling in time as well as space (8 → 4 → 2 frames by default), temporal attention at the
//!   coarsest level; the denoiser sees the whole clip at once.
//! * **latent-shift** (An et al. 2023): the image U-Net with the parameter-free temporal shift in
//!   every residual block; its parameter count is the image U-Net's, exactly. The paper shifts
//!   latents of a pretrained text-to-image autoencoder; here the clips are 32×32 pixels, so the
//!   shift runs in pixel space and the network is trained from scratch.
//! * **image** (the baseline): the same U-Net with per-frame convolutions only; sampling a clip
//!   gives independent frames.
//!
//! Recipe (all three): x₀-prediction, cosine schedule (T = 1000), Adam 1e-3 with warm-up and
//! cosine decay, EMA (the core [`Trainer`], resumable), a fresh batch of deterministic clips every
//! step; DDIM sampling (50 steps, η = 0). Evaluation on clips from the Fashion-MNIST **test**
//! split: per-frame FD-FMNIST of item crops, class consistency, centroid acceleration, frame difference.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};
use unet_core::checkpoint;
use unet_core::diffusion::{self, BetaSchedule, NoiseSchedule, Prediction, SampleOptions, Sampler};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::rng::Rng;
use unet_core::trainer::{Trainer, TrainerConfig, CHECKPOINT};
use unet_image::classifier::FmnistClassifier;
use unet_image::data::fashion_mnist::{FashionMnist, Split};

use super::artefacts::{grid_mp4, strip_png};
use super::secs;
use super::video_unet::{VideoUNet, VideoUNetConfig};
use crate::data::moving::{self, MovingConfig};
use crate::metrics;
use crate::{Result, VideoError};

/// The denoiser predicts the clean clip x₀ (ε-prediction is unstable with the cosine schedule's
/// last steps, where x̂₀ multiplies the error by 1/√ᾱ).
pub const PREDICTION: Prediction = Prediction::Sample;

/// Frames per second of written clips.
pub const FPS: f64 = 8.0;

/// Which temporal design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// Space-Time U-Net.
    Lumiere,
    /// Image U-Net + temporal shift.
    LatentShift,
    /// Frame-independent image U-Net.
    Image,
}

impl Variant {
    /// Name in reports and folders.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Lumiere => "lumiere",
            Variant::LatentShift => "latent-shift",
            Variant::Image => "image",
        }
    }

    /// The network of this variant with channels `channels`, `layers` res blocks per level.
    pub fn config(self, channels: &[i64], layers: i64, groups: i64) -> VideoUNetConfig {
        match self {
            Variant::Lumiere => VideoUNetConfig::lumiere(1, 1, channels, layers, groups),
            Variant::LatentShift => VideoUNetConfig::latent_shift(1, 1, channels, layers, groups),
            Variant::Image => VideoUNetConfig::image(1, 1, channels, layers, groups),
        }
    }

    /// The trained size: channels `base·(1, 2, 2)`, one res block per level, GroupNorm(8).
    pub fn small(self, base: i64) -> Result<VideoUNetConfig> {
        if base <= 0 || base % 8 != 0 {
            return Err(VideoError::invalid(format!(
                "base {base} must be a positive multiple of 8"
            )));
        }
        Ok(self.config(&[base, 2 * base, 2 * base], 1, 8))
    }

    /// The full-size preset: channels (128, 256, 512, 512), two res blocks per level,
    /// GroupNorm(32) — the widths of the Stable Diffusion / DDPM U-Nets these designs inflate.
    /// Our sizing: neither Lumiere nor Latent-Shift publishes its U-Net's parameter count.
    pub fn full(self) -> VideoUNetConfig {
        self.config(&[128, 256, 512, 512], 2, 32)
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache (`fashion-mnist/`; `../models/` caches the classifier and the image baseline).
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps (each model).
    pub steps: usize,
    /// Clips per batch.
    pub batch_size: i64,
    /// Channels of the first level.
    pub base: i64,
    /// Clips generated per model (and real reference clips).
    pub samples: usize,
    /// DDIM steps.
    pub sample_steps: i64,
    /// The clips.
    pub moving: MovingConfig,
    /// Training steps of the Fashion-MNIST classifier behind the FD (cached by data and steps).
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
            out: PathBuf::from("target/reproduce/lumiere"),
            data_cache: unet_core::checkpoint::cache_root().map(|c| c.join("datasets")),
            steps: 1200,
            batch_size: 8,
            base: 16,
            samples: 128,
            sample_steps: 50,
            moving: MovingConfig::default(),
            classifier_steps: 800,
            device: Device::Cpu,
            seed: 2024,
            progress: true,
        }
    }
}

/// What a model folder's `video_model.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Variant.
    pub variant: Variant,
    /// Network.
    pub config: VideoUNetConfig,
    /// The clips it was trained on.
    pub moving: MovingConfig,
    /// Frames per second of written clips.
    pub fps: f64,
    /// Optimiser steps, batch size and seed of the run that trained it.
    #[serde(default)]
    pub run: Option<(usize, i64, u64)>,
}

/// Scores of a clip set against the real reference clips.
#[derive(Debug, Clone, Serialize)]
pub struct ClipScores {
    /// Per-frame FD-FMNIST of item crops.
    pub fd: f64,
    /// Share of clips whose item keeps one class in all frames.
    pub consistency: f64,
    /// Share of consecutive frame pairs with one predicted class.
    pub agreement: f64,
    /// Mean centroid acceleration, the second difference of its track (px / frame²).
    pub acceleration: f64,
    /// Mean |x_{t+1} − x_t| (data range 2).
    pub frame_difference: f64,
}

/// One trained model's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// Variant name.
    pub name: String,
    /// Trained parameters.
    pub params: i64,
    /// Full-size preset parameters.
    pub full_params: i64,
    /// Scores of its samples.
    pub scores: ClipScores,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds (of the earlier run when restored from the cache).
    pub train_seconds: f64,
    /// Restored from the cache of an identical earlier run.
    pub restored: bool,
    /// Frames generated per second (DDIM, batch 16).
    pub frames_per_second: f64,
}

/// Measured results of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The video model (`lumiere` or `latent-shift`).
    pub model: ModelResult,
    /// The frame-independent image U-Net.
    pub image: ModelResult,
    /// A second set of real clips.
    pub real: ClipScores,
    /// The classifier's test accuracy.
    pub classifier_accuracy: f64,
}

fn io_err(p: &Path) -> impl FnOnce(std::io::Error) -> VideoError + '_ {
    move |e| VideoError::io(p, e)
}

/// The seed of step `step`'s batch.
fn batch_seed(seed: u64, step: usize) -> u64 {
    Rng::new(seed).fork(step as u64).next_u64()
}

/// DDIM samples `[n, 1, T, H, W]` in [-1, 1] (batches of 16) and the seconds taken.
pub fn generate(
    model: &VideoUNet,
    moving: &MovingConfig,
    n: usize,
    steps: i64,
    device: Device,
    seed: u64,
) -> Result<(Tensor, f64)> {
    let sched = NoiseSchedule::new(BetaSchedule::cosine(), 1000)?;
    tch::manual_seed(seed as i64);
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut left = n as i64;
    let _g = tch::no_grad_guard();
    while left > 0 {
        let b = left.min(16);
        let xt = Tensor::randn(
            [b, 1, moving.frames, moving.canvas, moving.canvas],
            (Kind::Float, device),
        );
        let mut den = |x: &Tensor, t: &Tensor| -> unet_core::Result<Tensor> {
            model
                .forward(x, Some(t))
                .map_err(|e| unet_core::Error::config("video U-Net", "forward", e.to_string()))
        };
        let so = SampleOptions { clip_x0: Some(1.0), prediction: PREDICTION, ..Default::default() };
        let x = diffusion::sample(&sched, Sampler::Ddim { steps, eta: 0.0 }, xt, &mut den, &so)?;
        out.push(x.clamp(-1.0, 1.0).to_device(Device::Cpu));
        left -= b;
    }
    Ok((Tensor::cat(&out, 0), secs(t0)))
}

/// A trained model folder, loaded for sampling (EMA weights).
pub struct ClipModel {
    /// The denoiser.
    pub unet: VideoUNet,
    _vs: nn::VarStore,
    /// What it is.
    pub meta: ModelMeta,
    device: Device,
}

impl ClipModel {
    /// Loads `dir` (`video_model.json`, `checkpoint.safetensors`) written by a reproduction.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let meta: ModelMeta = super::read_json(&dir.join("video_model.json"))?;
        meta.moving.validate()?;
        let mut vs = nn::VarStore::new(device);
        let unet = VideoUNet::new(&vs.root(), &meta.config)?;
        let ck_path = dir.join(CHECKPOINT);
        unet_core::trainer::load_inference_weights(&mut vs, &ck_path)?;
        Ok(Self { unet, _vs: vs, meta, device })
    }

    /// `n` clips `[n, 1, T, H, W]` in [-1, 1].
    pub fn sample(&self, n: usize, steps: i64, seed: u64) -> Result<Tensor> {
        if n == 0 || steps <= 0 {
            return Err(VideoError::invalid(format!(
                "sample: n ({n}) and steps ({steps}) must be positive"
            )));
        }
        Ok(generate(&self.unet, &self.meta.moving, n, steps, self.device, seed)?.0)
    }

    /// Writes `<out>.mp4` (grid of the clips, 4 columns, ×4 pixels) and `<out>.png` (frame strip).
    pub fn write(&self, clips: &Tensor, out: &Path) -> Result<(PathBuf, PathBuf)> {
        let mp4 = out.with_extension("mp4");
        let png = out.with_extension("png");
        grid_mp4(&mp4, clips, 4, (-1.0, 1.0), 4, self.meta.fps)?;
        strip_png(&png, clips, (-1.0, 1.0), 2)?;
        Ok((mp4, png))
    }
}

/// Scores `clips` against the reference clips' item features `reference`
/// ([`metrics::item_features`]).
pub fn score(clf: &FmnistClassifier, clips: &Tensor, reference: &Tensor) -> Result<ClipScores> {
    let classes = metrics::item_classes(clf, clips)?;
    let features = metrics::item_features(clf, clips)?;
    Ok(ClipScores {
        fd: unet_core::metrics::frechet_distance(&features, reference)?,
        consistency: metrics::consistency_of(&classes)?,
        agreement: metrics::agreement_of(&classes)?,
        acceleration: metrics::centroid_acceleration(clips)?,
        frame_difference: metrics::frame_difference(clips)?,
    })
}

struct Trained {
    unet: VideoUNet,
    _vs: nn::VarStore,
    params: i64,
    losses: Vec<(f64, f64)>,
    train_seconds: f64,
    restored: bool,
}

/// Trains `variant` in `dir` (resuming), or, for the image baseline, restores it from the
/// cache `models_dir` when an identical run was trained before.
fn train(
    variant: Variant,
    opts: &RunOptions,
    set: &FashionMnist,
    dir: &Path,
    cache_key: Option<&Path>,
) -> Result<Trained> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let cfg = variant.small(opts.base)?;
    let meta = ModelMeta {
        variant,
        config: cfg.clone(),
        moving: opts.moving.clone(),
        fps: FPS,
        run: Some((opts.steps, opts.batch_size, opts.seed)),
    };
    let json = serde_json::to_string_pretty(&meta).unwrap_or_default();
    let ck = dir.join(CHECKPOINT);
    let log = dir.join("metrics.jsonl");
    super::fresh_if_changed(dir, "video_model.json", &json, &[&ck, &log])?;
    let mut restored = false;
    if let Some(key) = cache_key {
        if key.exists() && !ck.exists() {
            restored = true;
            tracing::info!(from = %key.display(), "image baseline restored from the cache");
            std::fs::copy(key, &ck).map_err(io_err(&ck))?;
            let klog = key.with_extension("jsonl");
            if klog.exists() {
                std::fs::copy(&klog, &log).map_err(io_err(&log))?;
            }
        }
    }
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let unet = VideoUNet::new(&vs.root(), &cfg)?;
    let params = parameter_count(&vs);
    let sched = NoiseSchedule::new(BetaSchedule::cosine(), 1000)?;
    let mut trainer = Trainer::new(
        &vs,
        TrainerConfig::diffusion(1e-3, opts.steps, opts.seed, dir.to_path_buf(), opts.progress),
    )?;
    trainer.resume(&mut vs)?;
    let first = trainer.step();
    let t0 = Instant::now();
    tracing::info!(model = variant.name(), params, "training");
    trainer.run(&mut vs, |step| {
        let x0 = moving::generate(
            set,
            opts.batch_size as usize,
            &opts.moving,
            batch_seed(opts.seed, step),
        )
        .map_err(|e| unet_core::Error::config("moving clips", step, e.to_string()))?
        .clips
        .to_device(opts.device);
        let t = sched.sample_timesteps(opts.batch_size, opts.device);
        let noise = Tensor::randn_like(&x0);
        let pred = unet
            .forward(&sched.q_sample(&x0, &t, &noise), Some(&t))
            .map_err(|e| unet_core::Error::config("video U-Net", "forward", e.to_string()))?;
        diffusion::loss(&sched, PREDICTION, &pred, &x0, &noise, &t, None)
    })?;
    // A restored run reports the training time its log recorded.
    let train_seconds = if trainer.step() > first { secs(t0) } else { trainer.logged_seconds() };
    trainer.load_ema_into_model();
    if let Some(key) = cache_key {
        if !key.exists() {
            if let Some(p) = key.parent() {
                std::fs::create_dir_all(p).map_err(io_err(p))?;
            }
            std::fs::copy(&ck, key).map_err(io_err(key))?;
            if log.exists() {
                std::fs::copy(&log, key.with_extension("jsonl")).map_err(io_err(key))?;
            }
        }
    }
    Ok(Trained {
        unet,
        _vs: vs,
        params,
        losses: trainer.losses().to_vec(),
        train_seconds,
        restored,
    })
}

fn full_params(variant: Variant) -> Result<i64> {
    let vs = nn::VarStore::new(Device::Cpu);
    VideoUNet::new(&vs.root(), &variant.full())?;
    Ok(parameter_count(&vs))
}

/// Trains `variant` (lumiere or latent-shift) and the image baseline, samples both, scores
/// them against real test-split clips and writes the report, MP4s and PNG strips.
pub fn run(variant: Variant, opts: &RunOptions) -> Result<RunResult> {
    if variant == Variant::Image {
        return Err(VideoError::invalid("the image U-Net is the baseline, not a reproduction"));
    }
    if opts.steps == 0 || opts.batch_size <= 0 || opts.samples < 2 || opts.sample_steps <= 0 {
        return Err(VideoError::invalid(
            "need steps, a batch, at least 2 samples and sampling steps",
        ));
    }
    opts.moving.validate()?;
    if opts.moving.items != 1 {
        return Err(VideoError::invalid(format!(
            "the clip metrics follow one item per clip; got items = {}",
            opts.moving.items
        )));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let fm_dir = opts.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train_set = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test_set = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let models_dir = opts.data_cache.as_ref().and_then(|d| d.parent().map(|p| p.join("models")));
    let (clf, classifier_accuracy) = FmnistClassifier::load_or_train(
        models_dir.as_deref(),
        &train_set,
        &test_set,
        opts.classifier_steps,
    )?;

    let m = &opts.moving;
    let key = models_dir.as_ref().map(|d| {
        d.join(format!(
            "video-image-unet-n{}-b{}-s{}-bs{}-seed{}-c{}i{}t{}k{}v{}-{}.safetensors",
            train_set.len(),
            opts.base,
            opts.steps,
            opts.batch_size,
            opts.seed,
            m.canvas,
            m.item_size,
            m.frames,
            m.items,
            m.speed.0,
            m.speed.1
        ))
    });
    let image = train(Variant::Image, opts, &train_set, &out.join("image"), key.as_deref())?;
    let video = train(variant, opts, &train_set, &out.join(variant.name()), None)?;

    let n = opts.samples;
    let reference = moving::generate(&test_set, n, m, opts.seed + 100)?.clips;
    let reference = metrics::item_features(&clf, &reference)?;
    let real2 = moving::generate(&test_set, n, m, opts.seed + 200)?.clips;
    let real = score(&clf, &real2, &reference)?;
    let mut results = Vec::new();
    for (v, t) in [(variant, &video), (Variant::Image, &image)] {
        let (clips, s) = generate(&t.unet, m, n, opts.sample_steps, opts.device, opts.seed + 7)?;
        let name = v.name();
        grid_mp4(
            &out.join(format!("{name}.mp4")),
            &clips.narrow(0, 0, (n as i64).min(16)),
            4,
            (-1.0, 1.0),
            4,
            FPS,
        )?;
        strip_png(
            &out.join(format!("{name}.png")),
            &clips.narrow(0, 0, (n as i64).min(8)),
            (-1.0, 1.0),
            2,
        )?;
        results.push(ModelResult {
            name: name.into(),
            params: t.params,
            full_params: full_params(v)?,
            scores: score(&clf, &clips, &reference)?,
            losses: t.losses.clone(),
            train_seconds: t.train_seconds,
            restored: t.restored,
            frames_per_second: (n as i64 * m.frames) as f64 / s.max(1e-9),
        });
    }
    grid_mp4(
        &out.join("real.mp4"),
        &real2.narrow(0, 0, (n as i64).min(16)),
        4,
        (-1.0, 1.0),
        4,
        FPS,
    )?;
    strip_png(&out.join("real.png"), &real2.narrow(0, 0, (n as i64).min(8)), (-1.0, 1.0), 2)?;
    let image_r = results.pop().ok_or_else(|| VideoError::invalid("no image result"))?;
    let model_r = results.pop().ok_or_else(|| VideoError::invalid("no model result"))?;
    let r = RunResult { model: model_r, image: image_r, real, classifier_accuracy };
    write_report(variant, opts, &train_set, &r)?;
    Ok(r)
}

fn row(name: &str, s: &ClipScores, params: &str, fps: &str) -> Vec<String> {
    vec![
        name.into(),
        format!("{:.2}", s.fd),
        format!("{:.3}", s.consistency),
        format!("{:.3}", s.agreement),
        format!("{:.3}", s.acceleration),
        format!("{:.4}", s.frame_difference),
        params.into(),
        fps.into(),
    ]
}

fn write_report(
    variant: Variant,
    opts: &RunOptions,
    set: &FashionMnist,
    r: &RunResult,
) -> Result<()> {
    let out = &opts.out;
    let name = variant.name();
    plot_lines(
        &out.join("loss.png"),
        &format!("{name} vs the image U-Net: x₀-prediction loss"),
        "step",
        "MSE",
        &[
            Series::new(format!("{name} (EMA 0.05)"), smooth(&r.model.losses, 0.05)),
            Series::new("image U-Net (EMA 0.05)", smooth(&r.image.losses, 0.05)),
        ],
        true,
    )?;
    let table = markdown_table(
        &[
            "clips",
            "per-frame FD-FMNIST ↓",
            "class consistency ↑",
            "class agreement ↑",
            "centroid acceleration px/frame² ↓",
            "frame difference",
            "parameters",
            "frames/s",
        ],
        &[
            row("real test-split clips (second draw)", &r.real, "–", "–"),
            row(
                &format!("**{name}**"),
                &r.model.scores,
                &thousands(r.model.params),
                &format!("{:.1}", r.model.frames_per_second),
            ),
            row(
                "frame-independent image U-Net",
                &r.image.scores,
                &thousands(r.image.params),
                &format!("{:.1}", r.image.frames_per_second),
            ),
        ],
    );
    let m = &opts.moving;
    let design = match variant {
        Variant::Lumiere => "the Space-Time U-Net of Lumiere (Bar-Tal et al. 2024): (2+1)D residual blocks (a 1×3×3 spatial then a 3×1×1 temporal convolution, the core's `ConvKind::Factorised`), every down-sampling halving frames as well as height and width (a stride-2 step over frames after the 3-tap temporal convolutions), temporal self-attention with a sinusoidal frame-index encoding at the coarsest level and in the mid block, the whole clip denoised in one pass",
        _ => "Latent-Shift (An et al. 2023): the image U-Net with the parameter-free temporal shift before both convolutions of every residual block (1/8 of the channels from the next frame, 1/8 from the previous one; the core's `ResnetBlockConfig::temporal_shift`). Its parameters are the image U-Net's, exactly. The paper shifts latents of a pretrained text-to-image model; these clips are 32×32 pixels, so the shift runs in pixel space and the network is trained from scratch",
    };
    let cached = if r.image.restored {
        " (trained by an identical earlier run and restored from the cache; time from its log)"
    } else {
        ""
    };
    let text = format!(
        r#"# {name}: generating moving Fashion-MNIST clips

Survey Section 4.4. The model is {design}. It is compared with the **frame-independent image
U-Net**: the same network with per-frame convolutions only (kernel 1 over time), trained the
same way, whose clips are independent frames.

## Task

Unconditional generation of {t}-frame {c}×{c} clips of one Fashion-MNIST item ({s}×{s}) moving at
{v0}–{v1} px/frame and bouncing off the borders. Training clips are generated afresh at every
step from the {ntrain} training images ({src}); reference clips come from the **test** split.
x₀-prediction, cosine schedule (T = 1000), Adam 1e-3 with warm-up and cosine decay, EMA,
{steps} steps of {batch} clips per model; DDIM with {ss} steps, η = 0; {n} clips per row.

## Results

| network | trained parameters | full-size preset |
|---|---|---|
| {name} | {pm} | {pmf} |
| image U-Net | {pi} | {pif} |

{table}
- **per-frame FD-FMNIST**: Fréchet distance between the features (the 128-d penultimate layer of
  this project's Fashion-MNIST classifier, test accuracy {acc:.3}) of every frame's item, cropped
  around its bounding box and scaled to 28×28, and those of the reference clips. Not comparable
  with published FIDs.
- **class consistency**: share of clips whose item gets one predicted class in all {t} frames;
  **class agreement**: share of consecutive frame pairs whose items get one predicted class
  (the stricter measure fails a whole clip for one frame whose blurry item the classifier
  reads differently).
- **centroid acceleration**: mean ‖c(t+1) − 2c(t) + c(t−1)‖ of the item's intensity centroid; the real
  clips' value is from the bounces.
- **frame difference**: mean |x(t+1) − x(t)| on the [-1, 1] scale.
- **frames/s**: frames generated per second (DDIM {ss} steps, batches of 16, {dev:?}).

Training: {name} {tm:.0} s; image U-Net {ti:.0} s{cached}.

![loss](loss.png)

Samples, one row per clip, one column per frame ({name}, then the image U-Net, then real clips):

![{name}]({name}.png)

![image U-Net](image.png)

![real](real.png)

Videos: [{name}.mp4]({name}.mp4), [image.mp4](image.mp4), [real.mp4](real.mp4) (4×4 clips, ×4
pixels, {fps} frames/s). The trained model folders `{name}/` and `image/` sample more clips with
`cargo xtask sample {name} --checkpoint target/reproduce/{name}/{name} --n 16 --out clips`.
"#,
        t = m.frames,
        c = m.canvas,
        s = m.item_size,
        v0 = m.speed.0,
        v1 = m.speed.1,
        ntrain = set.len(),
        src = set.source,
        steps = opts.steps,
        batch = opts.batch_size,
        ss = opts.sample_steps,
        n = opts.samples,
        pm = thousands(r.model.params),
        pmf = thousands(r.model.full_params),
        pi = thousands(r.image.params),
        pif = thousands(r.image.full_params),
        acc = r.classifier_accuracy,
        dev = opts.device,
        tm = r.model.train_seconds,
        ti = r.image.train_seconds,
        fps = FPS,
    );
    checkpoint::write_atomic(&out.join("report.md"), text.as_bytes())?;
    let json = serde_json::json!({
        "model": name,
        "steps": opts.steps,
        "batch_size": opts.batch_size,
        "base": opts.base,
        "moving": m,
        "result": r,
    });
    checkpoint::write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&json).unwrap_or_default().as_bytes(),
    )?;
    Ok(())
}
