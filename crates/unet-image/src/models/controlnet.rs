//! `controlnet`: Zhang, Rao & Agrawala 2023, "Adding Conditional Control to Text-to-Image
//! Diffusion Models" (ICCV 2023, arXiv:2302.05543).
//!
//! A trainable copy of a trained U-Net's encoder sees a control image (here: an edge map) and
//! feeds the frozen U-Net through zero-initialised 1×1 convolutions, so training starts from
//! the unchanged base model. Full size: diffusers' `ControlNetModel` for Stable Diffusion v1.5
//! (`lllyasviel/sd-controlnet-canny`, `cross_attention_dim` 768) — 361,279,120 parameters.
//!
//! The small run loads the `ddpm` reproduction's trained Fashion-MNIST model (training it first
//! if it is missing), freezes it, attaches a ControlNet copied from it and trains only the
//! control branch on (Sobel edge map, image) pairs with the ε-objective. On held-out test
//! images it samples with the test image's edge map as control and without control (same
//! DDIM noise) and measures the edge F1 of the samples' edges against the control edges, and
//! FD-FMNIST.
//!
//! Run: `cargo xtask reproduce controlnet`.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array3;
use serde_json::json;
use tch::{nn, Device, Kind, Tensor};
use unet_core::diffusers::{presets, ControlNet, ControlNetConfig, DiffusersUNet};
use unet_core::diffusion::{self, BetaSchedule, NoiseSchedule, Prediction, SampleOptions, Sampler};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig};

use super::ddpm::{self, crop28, pad32};
use super::freeu::trained_ddpm;
use crate::classifier::{fd_fmnist, to_model_range, FmnistClassifier};
use crate::data::derived::sobel_edges;
use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::io::{grid, to_array2, write_gray_png};
use crate::{ImageError, Result};

/// Parameters of diffusers' `ControlNetModel` for SD v1.5 (`lllyasviel/sd-controlnet-canny`).
pub const FULL_PARAMS: i64 = 361_279_120;

/// The full-size ControlNet: SD v1.5's U-Net encoder (cross-attention width 768), RGB control
/// at 8× the latent size through `[16, 32, 96, 256]` embedding stages.
pub fn full() -> Result<ControlNetConfig> {
    Ok(ControlNetConfig::from_unet(&presets::sd_v1_5()?))
}

/// The small ControlNet of the `ddpm` small model: one-channel edge control at the sample's
/// own resolution (one 16-channel embedding stage, no down-sampling).
pub fn small(base: i64) -> Result<ControlNetConfig> {
    Ok(ControlNetConfig {
        conditioning_channels: 1,
        conditioning_embedding_out_channels: vec![16],
        ..ControlNetConfig::from_unet(&ddpm::small(base)?)
    })
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// The `ddpm` reproduction whose trained model is controlled (its `out` holds
    /// `skips/checkpoint.safetensors`; it runs first when that is missing). Its `data_cache`,
    /// `base`, `device`, `classifier_steps` are used here too.
    pub ddpm: ddpm::RunOptions,
    /// Optimiser steps of the control branch.
    pub steps: usize,
    /// Batch size.
    pub batch_size: i64,
    /// Peak learning rate.
    pub lr: f64,
    /// Held-out test images sampled with and without their edge map.
    pub eval_images: i64,
    /// DDIM steps.
    pub sample_steps: i64,
    /// Sobel magnitude threshold (on images in [0, 1]) of the edge maps.
    pub edge_threshold: f32,
    /// Seed.
    pub seed: u64,
    /// Progress bar.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/controlnet"),
            ddpm: ddpm::RunOptions {
                out: PathBuf::from("target/reproduce/ddpm"),
                ..ddpm::RunOptions::default()
            },
            steps: 400,
            batch_size: 32,
            lr: 1e-3,
            eval_images: 200,
            sample_steps: 25,
            edge_threshold: 1.0,
            seed: 2023,
            progress: true,
        }
    }
}

/// Scores of one sampling method on the held-out images.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// What was sampled.
    pub name: String,
    /// Mean per-image edge F1 (1-px tolerance) against the control edges.
    pub edge_f1: f64,
    /// Mean edge precision.
    pub precision: f64,
    /// Mean edge recall.
    pub recall: f64,
    /// FD-FMNIST against the test images.
    pub fd: f64,
    /// Sampling seconds.
    pub seconds: f64,
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Full-size parameter count.
    pub full_params: i64,
    /// Parameters of the small ControlNet (trained).
    pub small_params: i64,
    /// Parameters of the frozen base model.
    pub base_params: i64,
    /// Largest |difference| between the base model's output and the output with the untrained
    /// ControlNet attached (zero convolutions: exactly 0).
    pub zero_init_max_diff: f64,
    /// Mean fraction of edge pixels in the control maps.
    pub edge_density: f64,
    /// The classifier's test accuracy.
    pub classifier_accuracy: f64,
    /// No control (baseline), with control, and the real source images (reference).
    pub scores: Vec<Scores>,
    /// `(step, loss)` of the control branch.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
}

/// `[n, 1, 28, 28]` in [-1, 1] → `[n, 28, 28]` u8.
pub fn to_u8_images(x: &Tensor) -> Result<Array3<u8>> {
    let s = x.size();
    if s.len() != 4 || s[1] != 1 {
        return Err(ImageError::Invalid(format!("expected [n, 1, h, w] images, got {s:?}")));
    }
    let v = ((x.to_device(Device::Cpu).to_kind(Kind::Float) + 1.0) * 127.5)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .contiguous()
        .view([-1]);
    let v = Vec::<u8>::try_from(v)?;
    Array3::from_shape_vec((s[0] as usize, s[2] as usize, s[3] as usize), v)
        .map_err(|e| ImageError::Invalid(e.to_string()))
}

/// Edge maps `[n, 1, 28, 28]` float 0/1 of images `[n, 1, 28, 28]` in [-1, 1].
pub fn edge_maps(x: &Tensor, threshold: f32) -> Result<Tensor> {
    let e = sobel_edges(&to_u8_images(x)?, threshold);
    let (n, h, w) = e.dim();
    let v: Vec<u8> = e.iter().copied().collect();
    Ok(Tensor::from_slice(&v).view([n as i64, 1, h as i64, w as i64]).to_kind(Kind::Float))
}

/// Per-image edge precision, recall and F1 of `pred` against `target` (both `[n, 1, h, w]`
/// 0/1) with a 1-pixel tolerance: a predicted edge pixel is correct when a target edge pixel
/// lies in its 3×3 neighbourhood, a target edge pixel is recovered when a predicted one does.
/// F1 = 2PR/(P+R). Without predicted edges P = 1, without target edges R = 1, so an image
/// with no edges on either side scores F1 = 1 and with edges on one side only 0. Returns the
/// means of P, R and F1 over images.
pub fn edge_f1(pred: &Tensor, target: &Tensor) -> Result<(f64, f64, f64)> {
    if pred.size() != target.size() || pred.dim() != 4 {
        return Err(ImageError::Invalid(format!(
            "edge maps differ in shape: {:?} vs {:?}",
            pred.size(),
            target.size()
        )));
    }
    let dil = |t: &Tensor| t.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
    let sum = |t: &Tensor| t.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double);
    let (np, nt) = (sum(pred), sum(target));
    let tp_p = sum(&(pred * dil(target))); // predicted pixels near a target edge
    let tp_r = sum(&(target * dil(pred))); // target pixels near a predicted edge
                                           // No predicted edges: precision 1; no target edges: recall 1 (nothing wrong, nothing missed).
    let p = tp_p.f_div(&np.clamp_min(1.0))?.where_self(&np.gt(0.0), &np.ones_like());
    let r = tp_r.f_div(&nt.clamp_min(1.0))?.where_self(&nt.gt(0.0), &nt.ones_like());
    let f1 = (&p * &r * 2.0).f_div(&(&p + &r).clamp_min(1e-12))?;
    let m = |t: &Tensor| t.mean(Kind::Double).double_value(&[]);
    Ok((m(&p), m(&r), m(&f1)))
}

/// DDIM samples (seeded: the same noise for every call with the same `seed`), cropped to
/// 28×28 in [-1, 1]; with `control`, each chunk uses its rows of `cond` (`[n, 1, 32, 32]`).
fn generate(
    base: &DiffusersUNet,
    control: Option<(&ControlNet, &Tensor)>,
    sched: &NoiseSchedule,
    n: i64,
    steps: i64,
    seed: u64,
    device: Device,
) -> Result<Tensor> {
    tch::manual_seed(seed as i64 + 7);
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let b = (n - start).min(100);
        let xt = Tensor::randn([b, 1, 32, 32], (Kind::Float, device));
        let cond = control.map(|(_, c)| c.narrow(0, start, b).to_device(device));
        let mut den = |x: &Tensor, t: &Tensor| -> unet_core::Result<Tensor> {
            match (control, &cond) {
                (Some((cn, _)), Some(c)) => {
                    let r = cn.forward(x, t, None, None, c, 1.0)?;
                    base.forward_with_control(x, t, None, None, Some(r.residuals()))
                }
                _ => base.forward(x, t, None, None),
            }
        };
        let so = SampleOptions { clip_x0: Some(1.0), ..Default::default() };
        let x = diffusion::sample(sched, Sampler::Ddim { steps, eta: 0.0 }, xt, &mut den, &so)?;
        out.push(crop28(&x).clamp(-1.0, 1.0).to_device(Device::Cpu));
        start += b;
    }
    Ok(Tensor::cat(&out, 0))
}

/// Trains the control branch, evaluates it and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| ImageError::Io { path: opts.out.clone(), source: e })?;
    let device = opts.ddpm.device;
    let (mut base_vs, base) = trained_ddpm(&opts.ddpm)?;
    base_vs.freeze();
    let base_params = base_vs.variables().values().map(|t| t.numel() as i64).sum();

    let fm_dir = opts.ddpm.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let models_dir =
        opts.ddpm.data_cache.as_ref().and_then(|d| d.parent().map(|p| p.join("models")));
    let (clf, classifier_accuracy) = FmnistClassifier::load_or_train(
        models_dir.as_deref(),
        &train,
        &test,
        opts.ddpm.classifier_steps,
    )?;

    let full_params = {
        let vs = nn::VarStore::new(Device::Cpu);
        ControlNet::new(&vs.root(), &full()?)?;
        parameter_count(&vs)
    };

    // Data: images padded with the background (−1), edge maps padded with 0 (no edge).
    let train_x = to_model_range(&train);
    let test_x = to_model_range(&test);
    let th = opts.edge_threshold;
    let train_e = edge_maps(&train_x, th)?;
    let data = pad32(&train_x);
    let data_c = train_e.pad([2, 2, 2, 2], "constant", 0.0);
    let k = opts.eval_images.min(test_x.size()[0]);
    let eval_x = test_x.narrow(0, 0, k);
    let eval_e = edge_maps(&eval_x, th)?;
    let eval_c = eval_e.pad([2, 2, 2, 2], "constant", 0.0);
    let edge_density = eval_e.mean(Kind::Double).double_value(&[]);
    let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;

    // The ControlNet, its encoder copied from the trained base model.
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let cn = ControlNet::from_unet_with(&vs.root(), &small(opts.ddpm.base)?, &base_vs)?;
    let small_params = parameter_count(&vs);

    // The ControlNet property: untrained, it leaves the base model's output unchanged.
    let zero_init_max_diff = tch::no_grad(|| -> Result<f64> {
        let b = k.min(8);
        let x = Tensor::randn([b, 1, 32, 32], (Kind::Float, device));
        let t = Tensor::from_slice(&[999i64, 500, 250, 10, 700, 100, 50, 900][..b as usize])
            .to_device(device);
        let plain = base.forward(&x, &t, None, None)?;
        let r = cn.forward(&x, &t, None, None, &eval_c.narrow(0, 0, b).to_device(device), 1.0)?;
        let ctrl = base.forward_with_control(&x, &t, None, None, Some(r.residuals()))?;
        Ok((plain - ctrl).abs().max().double_value(&[]))
    })?;
    tracing::info!(zero_init_max_diff, "base output with the untrained ControlNet attached");

    let _ = std::fs::remove_file(opts.out.join("train").join("metrics.jsonl"));
    let mut trainer = Trainer::new(
        &vs,
        TrainerConfig {
            lr: opts.lr,
            total_steps: opts.steps,
            warmup_steps: opts.steps / 20,
            min_lr_ratio: 0.05,
            grad_clip: Some(1.0),
            ema_decay: Some(0.99),
            checkpoint_every: 500,
            seed: opts.seed,
            out_dir: opts.out.join("train"),
            progress: opts.progress,
            ..TrainerConfig::default()
        },
    )?;
    let n = data.size()[0];
    let t0 = Instant::now();
    trainer.run(&mut vs, |_| {
        let idx = Tensor::randint(n, [opts.batch_size], (Kind::Int64, Device::Cpu));
        let x0 = data.index_select(0, &idx).to_device(device);
        let c = data_c.index_select(0, &idx).to_device(device);
        let t = sched.sample_timesteps(opts.batch_size, device);
        let noise = Tensor::randn_like(&x0);
        let xt = sched.q_sample(&x0, &t, &noise);
        let r = cn.forward(&xt, &t, None, None, &c, 1.0)?;
        let out = base.forward_with_control(&xt, &t, None, None, Some(r.residuals()))?;
        diffusion::loss(&sched, Prediction::Epsilon, &out, &x0, &noise, &t, None)
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    trainer.load_ema_into_model();
    let losses = trainer.losses().to_vec();

    // Evaluation: the same noise without and with control; the real images as reference.
    let mut scores = Vec::new();
    let mut samples = Vec::new();
    for (name, control) in
        [("no control (baseline)", None), ("ControlNet, test edge map", Some((&cn, &eval_c)))]
    {
        let t0 = Instant::now();
        let s = generate(&base, control, &sched, k, opts.sample_steps, opts.seed, device)?;
        let seconds = t0.elapsed().as_secs_f64();
        let (precision, recall, f1) = edge_f1(&edge_maps(&s, th)?, &eval_e)?;
        let fd = fd_fmnist(&clf, &s, &test_x)?;
        tracing::info!(method = name, edge_f1 = f1, fd, "scores");
        scores.push(Scores { name: name.into(), edge_f1: f1, precision, recall, fd, seconds });
        samples.push(s);
    }
    // Reference: the edges of other test images (a shifted pairing) — chance level.
    let shifted = eval_x.roll([1], [0]);
    let (precision, recall, f1) = edge_f1(&edge_maps(&shifted, th)?, &eval_e)?;
    let fd = fd_fmnist(&clf, &shifted, &test_x)?;
    scores.push(Scores {
        name: "another real test image (chance)".into(),
        edge_f1: f1,
        precision,
        recall,
        fd,
        seconds: 0.0,
    });

    // Grid: control edges | no-control sample | controlled sample | source image.
    let rows = k.min(12);
    let mut cells = Vec::new();
    for i in 0..rows {
        cells.push(to_array2(&eval_e.get(i).get(0))?);
        for img in [&samples[0], &samples[1], &eval_x] {
            cells.push(to_array2(&((img.get(i).get(0) + 1.0) / 2.0))?);
        }
    }
    write_gray_png(opts.out.join("samples.png"), &grid(&cells, 8, 2)?)?;

    let result = RunResult {
        full_params,
        small_params,
        base_params,
        zero_init_max_diff,
        edge_density,
        classifier_accuracy,
        scores,
        losses,
        train_seconds,
    };
    write_report(opts, &train, k, &result)?;
    Ok(result)
}

fn write_report(opts: &RunOptions, train: &FashionMnist, k: i64, r: &RunResult) -> Result<()> {
    plot_lines(
        &opts.out.join("loss.png"),
        "controlnet: ε-prediction loss (control branch only)",
        "step",
        "MSE",
        &[
            Series::new("raw", r.losses.clone()).faint(),
            Series::new("EMA", smooth(&r.losses, 0.05)),
        ],
        true,
    )?;
    let rows: Vec<Vec<String>> = r
        .scores
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format!("{:.4}", s.edge_f1),
                format!("{:.4}", s.precision),
                format!("{:.4}", s.recall),
                format!("{:.2}", s.fd),
                format!("{:.1}", s.seconds),
            ]
        })
        .collect();
    let (base_f1, ctrl_f1) = (r.scores[0].edge_f1, r.scores[1].edge_f1);
    let text = format!(
        r#"# controlnet: Zhang, Rao & Agrawala 2023

*Adding Conditional Control to Text-to-Image Diffusion Models*, ICCV 2023 (arXiv:2302.05543).
Reproduced with `cargo xtask reproduce controlnet`.

## Architecture

| model | parameters | notes |
|---|---|---|
| full size: diffusers `ControlNetModel` for SD v1.5 | {full} | `lllyasviel/sd-controlnet-canny` config (cross-attention 768); embedding `[16, 32, 96, 256]` |
| small ControlNet (trained here) | {small} | copy of the `ddpm` small model's encoder + 1-channel edge embedding `[16]` + {nz} zero convs |
| frozen base (`ddpm` reproduction, EMA weights) | {basep} | `{ddpm_out}` |

Zero-convolution check: largest |output difference| of the base model with the untrained
ControlNet attached vs without = **{zd:e}** (exactly 0 expected).

## Task

Control signal: binary Sobel edge maps (gradient magnitude of the image in [0, 1] above
{th}; mean edge density {dens:.3}) of Fashion-MNIST images ({ntrain} training images from
{src}), 28×28 padded with 0 to 32×32. Only the ControlNet trains ({steps} steps, batch
{batch}, AdamW peak lr {lr:e} with warm-up and cosine decay, EMA 0.99), on the ε-prediction
loss of the frozen base model with the control residuals added. Evaluation on the first {k}
held-out test images: DDIM ({ss} steps, η = 0) from the same noise for every method.

**Edge F1**: Sobel edges (same threshold) of each 28×28 sample against the control edges of
its test image; precision = share of sample edge pixels with a control edge pixel in their
3×3 neighbourhood, recall = share of control edge pixels with a sample edge pixel in theirs
(1-pixel tolerance), F1 = 2PR/(P+R) per image, averaged. **FD-FMNIST**: Fréchet distance on
the features of a Fashion-MNIST classifier trained here (accuracy {acc:.3}) against all test
images; not FID.

## Results

{table}
Control helps edge F1: **{better}** ({ctrl_f1:.4} with control vs {base_f1:.4} without).
The paper reports no edge F1 for its Canny model (it shows qualitative results and user
studies), so there is no published figure to compare with.

![loss](loss.png)

Each row holds two examples: control edges | no-control sample | controlled sample | source image.

![samples](samples.png)

## Timings

Training {ts:.1} s ({sps:.3} s/step); sampling times in the table.
"#,
        full = thousands(r.full_params),
        small = thousands(r.small_params),
        nz = unet_core::diffusers::skip_count(&ddpm::small(opts.ddpm.base)?) + 1,
        basep = thousands(r.base_params),
        ddpm_out = opts.ddpm.out.join("skips").display(),
        zd = r.zero_init_max_diff,
        th = opts.edge_threshold,
        dens = r.edge_density,
        ntrain = train.len(),
        src = train.source,
        steps = opts.steps,
        batch = opts.batch_size,
        lr = opts.lr,
        ss = opts.sample_steps,
        acc = r.classifier_accuracy,
        table = markdown_table(
            &["samples", "edge F1", "precision", "recall", "FD-FMNIST", "sampling (s)"],
            &rows
        ),
        better = ctrl_f1 > base_f1,
        ts = r.train_seconds,
        sps = r.train_seconds / opts.steps.max(1) as f64,
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("losses");
        o.insert("edge_threshold".into(), json!(opts.edge_threshold));
    }
    let json = serde_json::to_string_pretty(&v).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
