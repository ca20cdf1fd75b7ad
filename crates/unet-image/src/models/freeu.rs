//! `freeu`: Si, Huang, Jiang & Liu 2023, "FreeU: Free Lunch in Diffusion U-Net" (CVPR 2024).
//!
//! FreeU re-weights a trained U-Net at inference: backbone features of the two coarsest decoder
//! stages are scaled by b₁, b₂ (half of the channels) and the low-frequency band of their skip
//! features by s₁, s₂ in the Fourier domain. No parameters are added, so the full-size count
//! is that of the model it is applied to (the `ddpm` CIFAR-10 U-Net, 35,746,307).
//!
//! The run loads the `ddpm` reproduction's trained model (training it first if it is missing),
//! samples the same noise with FreeU off and with several settings, and compares FD-FMNIST.
//!
//! Run: `cargo xtask reproduce freeu`.

use std::path::PathBuf;
use std::time::Instant;

use tch::nn;
use unet_core::diffusers::DiffusersUNet;
use unet_core::diffusion::{BetaSchedule, NoiseSchedule};
use unet_core::report::markdown_table;
use unet_core::skip::FreeU;

use super::ddpm;
use crate::classifier::{fd_fmnist, to_model_range, FmnistClassifier};
use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::io::write_gray_png;
use crate::{ImageError, Result};

/// Settings compared: off, the FreeU paper's SD 1.x and SD 2.x values, and a mild one.
pub fn settings() -> Vec<(&'static str, Option<FreeU>)> {
    vec![
        ("off (baseline)", None),
        ("b 1.1/1.2, s 0.9/0.2 (mild)", Some(FreeU { b1: 1.1, b2: 1.2, s1: 0.9, s2: 0.2 })),
        (
            "b 1.4/1.6, s 0.9/0.2 (paper, SD 2.1)",
            Some(FreeU { b1: 1.4, b2: 1.6, s1: 0.9, s2: 0.2 }),
        ),
        (
            "b 1.5/1.6, s 0.9/0.2 (paper, SD 1.4)",
            Some(FreeU { b1: 1.5, b2: 1.6, s1: 0.9, s2: 0.2 }),
        ),
    ]
}

/// One measured setting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    /// Description.
    pub name: String,
    /// FD-FMNIST against the test images.
    pub fd: f64,
    /// Sampling seconds.
    pub seconds: f64,
}

/// Loads the trained `ddpm` small model (EMA weights) from its reproduction folder, training
/// it with `ddpm_opts` first when no checkpoint exists.
pub fn trained_ddpm(ddpm_opts: &ddpm::RunOptions) -> Result<(nn::VarStore, DiffusersUNet)> {
    let ckpt = ddpm_opts.out.join("skips").join(unet_core::trainer::CHECKPOINT);
    if !ckpt.exists() {
        tracing::info!(
            "no trained ddpm model at {}; running the ddpm reproduction first",
            ckpt.display()
        );
        ddpm::run(ddpm_opts)?;
    }
    let cfg = ddpm::small(ddpm_opts.base)?;
    let mut vs = nn::VarStore::new(ddpm_opts.device);
    let model = DiffusersUNet::new(&vs.root(), &cfg)?;
    let ck = unet_core::checkpoint::read(&ckpt)?;
    let prefer_ema = ck.tensors.keys().any(|k| k.starts_with("ema."));
    let weights = ck
        .tensors
        .iter()
        .filter_map(|(k, t)| {
            let name = if prefer_ema { k.strip_prefix("ema.") } else { k.strip_prefix("model.") }?;
            Some((name.to_string(), t.shallow_clone()))
        })
        .collect();
    unet_core::checkpoint::assign_strict(&mut vs, &weights, &ckpt, false)?;
    Ok((vs, model))
}

/// Samples with every setting and writes `report.md`.
pub fn run(out: &PathBuf, ddpm_opts: &ddpm::RunOptions) -> Result<Vec<Setting>> {
    std::fs::create_dir_all(out).map_err(|e| ImageError::Io { path: out.clone(), source: e })?;
    let (_vs, mut model) = trained_ddpm(ddpm_opts)?;
    let fm_dir = ddpm_opts.data_cache.as_ref().map(|d| d.join("fashion-mnist"));
    let train = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let models_dir =
        ddpm_opts.data_cache.as_ref().and_then(|d| d.parent().map(|p| p.join("models")));
    let (clf, acc) = FmnistClassifier::load_or_train(
        models_dir.as_deref(),
        &train,
        &test,
        ddpm_opts.classifier_steps,
    )?;
    let test_x = to_model_range(&test);
    let sched = NoiseSchedule::new(BetaSchedule::ddpm(), 1000)?;
    let mut results = Vec::new();
    for (i, (name, f)) in settings().into_iter().enumerate() {
        model.set_freeu(f);
        let t0 = Instant::now();
        let samples = ddpm::generate(ddpm_opts, &model, &sched)?; // same seed: same noise
        let fd = fd_fmnist(&clf, &samples, &test_x)?;
        tracing::info!(setting = name, fd, "FD-FMNIST");
        write_gray_png(out.join(format!("samples_{i}.png")), &ddpm::image_grid(&samples, 32)?)?;
        results.push(Setting { name: name.into(), fd, seconds: t0.elapsed().as_secs_f64() });
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .enumerate()
        .map(|(i, s)| vec![s.name.clone(), format!("{:.2}", s.fd), format!("![](samples_{i}.png)")])
        .collect();
    let best = results.iter().skip(1).map(|s| s.fd).fold(f64::INFINITY, f64::min);
    let text = format!(
        "# freeu: Si et al. 2023 on the trained ddpm U-Net\n\n\
         FreeU re-weights the two coarsest decoder stages at inference (no parameters; full-size \
         count = the `ddpm` CIFAR-10 U-Net's 35,746,307). Same model ({}), same {} noise samples, \
         DDIM {} steps; FD-FMNIST (classifier accuracy {acc:.3}) against {} test images, lower is \
         better.\n\n{}\nBest FreeU setting vs off: {:.2} vs {:.2} — FreeU {}.\n\n\
         The FreeU paper tunes b/s for Stable Diffusion's 1280-channel stages; on this small \
         Fashion-MNIST model the recommended values are reported as measured.\n",
        ddpm_opts.out.join("skips").display(),
        ddpm_opts.samples,
        ddpm_opts.sample_steps,
        test.len(),
        markdown_table(&["setting", "FD-FMNIST", "samples"], &rows),
        best,
        results[0].fd,
        if best < results[0].fd { "helps" } else { "does not help here" },
    );
    unet_core::checkpoint::write_atomic(&out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(&results).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    Ok(results)
}
