//! `pix2pix`: Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
//! Adversarial Networks", CVPR 2017 (arXiv:1611.07004): a U-Net generator trained with an L1
//! loss plus a conditional PatchGAN discriminator on (input, output) pairs.
//!
//! Full size: `unet_256` generator (54,413,955 parameters) + 70×70 PatchGAN on 6 channels
//! (2,768,705). The small run restores Fashion-MNIST images degraded by blur and noise
//! ([`crate::data::derived::degrade`]) and compares, on held-out images, the identity (the
//! degraded input), the same U-Net trained with L1 only, and pix2pix (L1 + cGAN): PSNR/SSIM
//! for fidelity and FD-FMNIST for realism.
//!
//! Run: `cargo xtask reproduce pix2pix` (add `--steps N`, `--device cuda`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array3;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use unet_core::arch::{UnetGenerator, UnetGeneratorConfig};
use unet_core::gan::{
    pix2pix_generator_loss, GanLoss, PatchDiscriminator, PatchDiscriminatorConfig,
};
use unet_core::report::{markdown_table, plot_lines, progress_bar, smooth, thousands, Series};
use unet_core::{checkpoint, parameter_count, Norm};

use super::ddpm::{crop28, pad32};
use crate::classifier::{fd_fmnist, FmnistClassifier};
use crate::data::derived::{degrade, head, Degradation};
use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::io::{grid, to_array2, write_gray_png};
use crate::metrics::{psnr, ssim};
use crate::{ImageError, Result};

/// The full-size generator.
pub fn full_generator() -> UnetGeneratorConfig {
    UnetGeneratorConfig::unet_256()
}

/// The full-size discriminator: 70×70 PatchGAN on concatenated (input, output) RGB pairs.
pub fn full_discriminator() -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig::default()
}

/// The small generator: grey 32² in and out, 5 levels (32 → 1), `ngf` filters.
pub fn small_generator(ngf: i64) -> UnetGeneratorConfig {
    UnetGeneratorConfig { input_nc: 1, output_nc: 1, num_downs: 5, ngf, ..full_generator() }
}

/// The small discriminator: 2 strided layers (34×34 receptive field on 32² images).
pub fn small_discriminator(ndf: i64) -> PatchDiscriminatorConfig {
    PatchDiscriminatorConfig { in_channels: 2, ndf, n_layers: 2, norm: Norm::Batch, dims: 2 }
}

/// Parameter counts of the full-size generator and discriminator.
pub fn full_params() -> Result<(i64, i64)> {
    let g = nn::VarStore::new(Device::Cpu);
    UnetGenerator::new(&g.root(), &full_generator())?;
    let d = nn::VarStore::new(Device::Cpu);
    PatchDiscriminator::new(&d.root(), &full_discriminator())?;
    Ok((parameter_count(&g), parameter_count(&d)))
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache (`fashion-mnist/`, and `../models/` for the FD-FMNIST classifier).
    pub data_cache: Option<PathBuf>,
    /// Steps of each model.
    pub steps: usize,
    /// Pairs per batch.
    pub batch_size: i64,
    /// Adam learning rate (β₁ = 0.5, as the paper).
    pub lr: f64,
    /// λ of the L1 term (100 in the paper).
    pub lambda_l1: f64,
    /// Generator filters at full resolution of the small model.
    pub ngf: i64,
    /// Training pairs (from the training split).
    pub train_images: usize,
    /// Held-out pairs (from the test split).
    pub test_images: usize,
    /// Classifier steps for FD-FMNIST.
    pub classifier_steps: usize,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/pix2pix"),
            data_cache: None,
            steps: 1500,
            batch_size: 32,
            lr: 2e-4,
            lambda_l1: 100.0,
            ngf: 16,
            train_images: 20_000,
            test_images: 1000,
            classifier_steps: 800,
            device: Device::Cpu,
            seed: 2017,
            progress: true,
        }
    }
}

/// One method's held-out scores.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// Row label.
    pub name: String,
    /// Mean PSNR (dB, images in [0, 1]).
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// FD-FMNIST of the outputs against the clean test images.
    pub fd: f64,
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Full-size generator / discriminator parameters.
    pub full_params: (i64, i64),
    /// Small generator / discriminator parameters.
    pub small_params: (i64, i64),
    /// Identity, L1-only U-Net, pix2pix.
    pub scores: Vec<Scores>,
    /// pix2pix: (L1, adversarial G, D) per step.
    pub gan_losses: Vec<(f32, f32, f32)>,
    /// L1-only U-Net: L1 per step.
    pub l1_losses: Vec<f32>,
    /// Training seconds (pix2pix, L1-only).
    pub train_seconds: (f64, f64),
    /// Classifier test accuracy.
    pub classifier_accuracy: f64,
}

fn to_unit(x: &Tensor) -> Tensor {
    (x + 1.0) / 2.0
}

fn images_tensor(a: &Array3<f32>) -> Tensor {
    crate::io::to_tensor(a) * 2.0 - 1.0 // [n, 1, 28, 28] in [-1, 1]
}

fn adam(vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer> {
    Ok(nn::Adam { beta1: 0.5, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false }.build(vs, lr)?)
}

/// Generator outputs for all of `x` (`[n, 1, 28, 28]` in [-1, 1]), cropped back to 28².
fn translate(g: &UnetGenerator, x: &Tensor, device: Device) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let mut out = Vec::new();
    for start in (0..x.size()[0]).step_by(200) {
        let b = x.narrow(0, start, (x.size()[0] - start).min(200));
        out.push(crop28(&g.forward_t(&pad32(&b).to_device(device), false)?).to_device(Device::Cpu));
    }
    Ok(Tensor::cat(&out, 0))
}

fn score(name: &str, clf: &FmnistClassifier, out: &Tensor, clean: &Tensor) -> Result<Scores> {
    let p = psnr(&to_unit(out), &to_unit(clean), 1.0)?;
    let s = ssim(&to_unit(out), &to_unit(clean), 1.0)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(Scores {
        name: name.into(),
        psnr: mean(&p),
        ssim: mean(&s),
        fd: fd_fmnist(clf, &out.clamp(-1.0, 1.0), clean)?,
    })
}

/// Trains the L1-only U-Net and pix2pix, scores them with the identity and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| ImageError::Io { path: out.clone(), source: e })?;
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

    // Pairs: degraded input → clean target, in [-1, 1].
    let deg = Degradation::default();
    let train_clean_u8 = head(&train.images, opts.train_images);
    let test_clean_u8 = head(&test.images, opts.test_images);
    let train_x = images_tensor(&degrade(&train_clean_u8, opts.seed, &deg)?);
    let test_x = images_tensor(&degrade(&test_clean_u8, opts.seed + 1, &deg)?);
    let as_f = |a: &Array3<u8>| a.mapv(|v| v as f32 / 255.0);
    let train_y = images_tensor(&as_f(&train_clean_u8));
    let test_y = images_tensor(&as_f(&test_clean_u8));
    let (train_x, train_y) = (pad32(&train_x), pad32(&train_y));
    let n = train_x.size()[0];

    let full_params = full_params()?;
    let gcfg = small_generator(opts.ngf);
    let dcfg = small_discriminator(opts.ngf);

    // 1. The L1-only U-Net (same generator, no discriminator).
    tch::manual_seed(opts.seed as i64);
    let l1_vs = nn::VarStore::new(opts.device);
    let l1_g = UnetGenerator::new(&l1_vs.root(), &gcfg)?;
    let mut l1_opt = adam(&l1_vs, opts.lr)?;
    let mut l1_losses = Vec::with_capacity(opts.steps);
    let pb = progress_bar(opts.steps as u64, "pix2pix: L1-only U-Net");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let t0 = Instant::now();
    for _ in 0..opts.steps {
        let idx = Tensor::randint(n, [opts.batch_size], (Kind::Int64, Device::Cpu));
        let x = train_x.index_select(0, &idx).to_device(opts.device);
        let y = train_y.index_select(0, &idx).to_device(opts.device);
        let loss = (l1_g.forward_t(&x, true)? - &y).abs().mean(Kind::Float);
        l1_opt.backward_step(&loss);
        let lv = loss.double_value(&[]) as f32;
        if !lv.is_finite() {
            return Err(ImageError::Invalid(format!("L1-only U-Net diverged (loss {lv})")));
        }
        l1_losses.push(lv);
        pb.set_message(format!("L1 {lv:.4}"));
        pb.inc(1);
    }
    pb.finish();
    let l1_seconds = t0.elapsed().as_secs_f64();

    // 2. pix2pix: the same generator with a conditional PatchGAN.
    tch::manual_seed(opts.seed as i64);
    let g_vs = nn::VarStore::new(opts.device);
    let g = UnetGenerator::new(&g_vs.root(), &gcfg)?;
    let d_vs = nn::VarStore::new(opts.device);
    let d = PatchDiscriminator::new(&d_vs.root(), &dcfg)?;
    let small_params = (parameter_count(&g_vs), parameter_count(&d_vs));
    let (mut g_opt, mut d_opt) = (adam(&g_vs, opts.lr)?, adam(&d_vs, opts.lr)?);
    let loss_kind = GanLoss::Vanilla;
    let mut gan_losses = Vec::with_capacity(opts.steps);
    let pb = progress_bar(opts.steps as u64, "pix2pix: L1 + cGAN");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let t0 = Instant::now();
    for _ in 0..opts.steps {
        let idx = Tensor::randint(n, [opts.batch_size], (Kind::Int64, Device::Cpu));
        let x = train_x.index_select(0, &idx).to_device(opts.device);
        let y = train_y.index_select(0, &idx).to_device(opts.device);
        let fake = g.forward_t(&x, true)?;
        // D step on (input, target) vs (input, detached output); the paper halves D's loss.
        let d_real = d.forward_t(&Tensor::f_cat(&[&x, &y], 1)?, true)?;
        let d_fake = d.forward_t(&Tensor::f_cat(&[&x, &fake.detach()], 1)?, true)?;
        let d_loss = loss_kind.discriminator(&d_real, &d_fake) * 0.5;
        d_opt.backward_step(&d_loss);
        // G step: fool D and stay close to the target in L1.
        let d_fake = d.forward_t(&Tensor::f_cat(&[&x, &fake], 1)?, true)?;
        let g_loss = pix2pix_generator_loss(loss_kind, &d_fake, &fake, &y, opts.lambda_l1);
        g_opt.backward_step(&g_loss);
        let l1 = (&fake - &y).abs().mean(Kind::Float).double_value(&[]) as f32;
        let gl = g_loss.double_value(&[]) as f32 - opts.lambda_l1 as f32 * l1;
        let dl = d_loss.double_value(&[]) as f32;
        if !(l1.is_finite() && gl.is_finite() && dl.is_finite()) {
            return Err(ImageError::Invalid(format!(
                "pix2pix diverged: L1 {l1}, G adversarial {gl}, D {dl}"
            )));
        }
        gan_losses.push((l1, gl, dl));
        pb.set_message(format!("L1 {l1:.4}  G {gl:.3}  D {dl:.3}"));
        pb.inc(1);
    }
    pb.finish();
    let gan_seconds = t0.elapsed().as_secs_f64();
    let meta = HashMap::from([
        ("model".to_string(), "pix2pix-small-generator".to_string()),
        ("config".to_string(), serde_json::to_string(&gcfg).unwrap_or_default()),
    ]);
    checkpoint::save(&g_vs, out.join("generator.safetensors"), Some(meta))?;

    // 3. Held-out scores.
    let l1_out = translate(&l1_g, &test_x, opts.device)?;
    let gan_out = translate(&g, &test_x, opts.device)?;
    let scores = vec![
        score("identity (the degraded input)", &clf, &test_x, &test_y)?,
        score("U-Net, L1 only (same generator and steps)", &clf, &l1_out, &test_y)?,
        score("pix2pix: U-Net + PatchGAN, L1 + cGAN", &clf, &gan_out, &test_y)?,
    ];
    let result = RunResult {
        full_params,
        small_params,
        scores,
        gan_losses,
        l1_losses,
        train_seconds: (gan_seconds, l1_seconds),
        classifier_accuracy,
    };

    // 4. Artefacts: a grid (columns degraded, L1-only, pix2pix, clean) and the loss plots.
    let mut cells = Vec::new();
    for i in 0..12.min(test_x.size()[0]) {
        for t in [&test_x, &l1_out, &gan_out, &test_y] {
            cells.push(to_array2(&to_unit(&t.get(i).get(0).clamp(-1.0, 1.0)))?);
        }
    }
    write_gray_png(out.join("samples.png"), &grid(&cells, 8, 2)?)?;
    let pts = |v: Vec<f32>| -> Vec<(f64, f64)> {
        v.into_iter().enumerate().map(|(i, l)| ((i + 1) as f64, l as f64)).collect()
    };
    let l1_gan = pts(result.gan_losses.iter().map(|l| l.0).collect());
    let l1_only = pts(result.l1_losses.clone());
    plot_lines(
        &out.join("loss.png"),
        "pix2pix: L1 to the clean target during training",
        "step",
        "L1 (images in [-1, 1])",
        &[
            Series::new("L1-only U-Net (EMA 0.05)", smooth(&l1_only, 0.05)),
            Series::new("pix2pix (EMA 0.05)", smooth(&l1_gan, 0.05)),
            Series::new("pix2pix raw", l1_gan).faint(),
        ],
        true,
    )?;
    plot_lines(
        &out.join("gan_loss.png"),
        "pix2pix: adversarial losses (EMA 0.05)",
        "step",
        "binary cross-entropy",
        &[
            Series::new(
                "G (fool D)",
                smooth(&pts(result.gan_losses.iter().map(|l| l.1).collect()), 0.05),
            ),
            Series::new(
                "D (real vs fake, halved)",
                smooth(&pts(result.gan_losses.iter().map(|l| l.2).collect()), 0.05),
            ),
        ],
        false,
    )?;
    write_report(opts, &gcfg, &dcfg, &result)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    gcfg: &UnetGeneratorConfig,
    dcfg: &PatchDiscriminatorConfig,
    r: &RunResult,
) -> Result<()> {
    let rows: Vec<Vec<String>> = r
        .scores
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format!("{:.2}", s.psnr),
                format!("{:.4}", s.ssim),
                format!("{:.2}", s.fd),
            ]
        })
        .collect();
    let table = markdown_table(&["method", "PSNR (dB) ↑", "SSIM ↑", "FD-FMNIST ↓"], &rows);
    let [id, l1, gan] = [&r.scores[0], &r.scores[1], &r.scores[2]];
    let cmp = |a: f64, b: f64, higher_better: bool| {
        if (a > b) == higher_better {
            "better"
        } else {
            "worse"
        }
    };
    let text = format!(
        r#"# pix2pix: Isola et al. 2017

Isola, Zhu, Zhou & Efros, *Image-to-Image Translation with Conditional Adversarial Networks*,
CVPR 2017 (arXiv:1611.07004). Reproduced with `cargo xtask reproduce pix2pix`.

## Architecture

| preset | generator | discriminator | notes |
|---|---|---|---|
| full size | {fg} | {fd} | `unet_256` (8 levels of 4×4 stride-2 convs, dropout in the 3 innermost 8·ngf decoder levels) + 70×70 PatchGAN on 6 channels; the official code prints 54.414 M and 2.769 M |
| small (trained here) | {sg} | {sd} | 5 levels on 32² grey images, ngf = ndf = {ngf}, 2-layer PatchGAN (34×34 patches) |

Generator config: `{gjson}`. Discriminator config: `{djson}`.

## Task

Restore Fashion-MNIST images degraded by a Gaussian blur (σ ∈ [0.8, 1.6] px) and additive
Gaussian noise (σ ∈ [0.08, 0.2]), drawn per image from a seed
(`unet_image::data::derived::degrade`). {ntrain} training pairs from the training split,
{ntest} held-out pairs from the test split. Both networks are the same generator trained for
{steps} steps of batch {batch} with Adam (lr {lr}, β₁ 0.5): once with L1 only, once as pix2pix
(L1 × {lambda} + conditional GAN). Images are padded to 32² for the network and cropped back.

## Results on held-out pairs

{table}
PSNR and SSIM (Gaussian window, Wang 2004) measure fidelity to the clean image on [0, 1];
FD-FMNIST is the Fréchet distance between the outputs and the clean test images in the
feature space of a Fashion-MNIST classifier trained here (test accuracy {acc:.3}); it is not FID.

- pix2pix against the identity: PSNR **{c1}**, SSIM **{c2}**, FD-FMNIST **{c3}**.
- pix2pix against the L1-only U-Net: PSNR {c4}, SSIM {c5}, FD-FMNIST {c6}.

The paper's finding is that L1 alone gives blurry but faithful outputs and the adversarial
term trades a little per-pixel fidelity for realism; the last row and its FD-FMNIST show how
that plays out here. The paper's own numbers (FCN scores on Cityscapes, AMT studies) cannot be
computed offline and are not comparable.

Columns: degraded, L1-only U-Net, pix2pix, clean (12 held-out images, two per row):

![samples](samples.png)

![L1 loss](loss.png)

![adversarial losses](gan_loss.png)

## Timings

| model | training seconds |
|---|---|
| L1-only U-Net | {t_l1:.1} |
| pix2pix (G + D) | {t_gan:.1} |

Device {device:?}, {threads} libtorch threads. Generator checkpoint: `generator.safetensors`.

## Not reproduced here

- Dropout as the noise source: the small 5-level generator has no 8·ngf middle levels, where
  the paper's dropout sits, so it is deterministic (as the paper notes, the noise barely
  matters in their generator either).
- 256² photos, random jitter and mirroring: Fashion-MNIST is 28² grey.
"#,
        fg = thousands(r.full_params.0),
        fd = thousands(r.full_params.1),
        sg = thousands(r.small_params.0),
        sd = thousands(r.small_params.1),
        ngf = opts.ngf,
        gjson = serde_json::to_string(gcfg).unwrap_or_default(),
        djson = serde_json::to_string(dcfg).unwrap_or_default(),
        ntrain = opts.train_images,
        ntest = opts.test_images,
        steps = opts.steps,
        batch = opts.batch_size,
        lr = opts.lr,
        lambda = opts.lambda_l1,
        acc = r.classifier_accuracy,
        c1 = cmp(gan.psnr, id.psnr, true),
        c2 = cmp(gan.ssim, id.ssim, true),
        c3 = cmp(gan.fd, id.fd, false),
        c4 = cmp(gan.psnr, l1.psnr, true),
        c5 = cmp(gan.ssim, l1.ssim, true),
        c6 = cmp(gan.fd, l1.fd, false),
        t_l1 = r.train_seconds.1,
        t_gan = r.train_seconds.0,
        device = opts.device,
        threads = tch::get_num_threads(),
    );
    checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
