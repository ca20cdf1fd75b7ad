//! The shared harness of the segmentation reproductions (`unet2015`, `resunet`,
//! `multiresunet`): the items-on-textures data, one training loop (Adam, cosine schedule,
//! pixel-wise soft-max cross-entropy over two classes), prediction, Dice/IoU scoring and the
//! Otsu baseline. Every model is seen through [`Segmenter`], so all are trained and scored the
//! same way.
//!
//! Run one: `cargo xtask reproduce resunet`.

use std::path::Path;
use std::time::Instant;

use ndarray::{s, Array3, Axis};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};
use unet_core::report::{cosine_lr, progress_bar};

use crate::data::fashion_mnist::{FashionMnist, Split};
use crate::data::segmentation::{synthesize, SceneConfig, SegmentationSet};
use crate::data::textures::Textures;
use crate::io::to_tensor;
use crate::metrics::{mean_dice_iou, otsu_segment, Overlap, Polarity};
use crate::{ImageError, Result};

/// A two-class segmentation network: grey scenes in, per-pixel class logits out.
pub trait Segmenter {
    /// `[N, 1, S, S]` scenes in `[0, 1]` → `[N, 2, S, S]` logits (background, item).
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor>;
}

/// Training and test scenes with the provenance of their sources.
#[derive(Debug, Clone)]
pub struct SegData {
    /// Scenes from training items and the top 60 % of each texture.
    pub train: SegmentationSet,
    /// Scenes from test items and the bottom 40 %.
    pub test: SegmentationSet,
    /// Scene side in pixels.
    pub scene: i64,
    /// Where the items came from.
    pub items_source: String,
    /// Where the textures came from.
    pub textures_source: String,
}

/// Loads Fashion-MNIST and the textures (the cache under `data_cache`, else the embedded
/// samples) and synthesises the scenes deterministically from `seed`.
pub fn load_data(
    data_cache: Option<&Path>,
    train_scenes: usize,
    test_scenes: usize,
    seed: u64,
) -> Result<SegData> {
    let fm_dir = data_cache.map(|d| d.join("fashion-mnist"));
    let tex_dir = data_cache.map(|d| d.join("textures"));
    let train_items = FashionMnist::load(fm_dir.as_deref(), Split::Train)?;
    let test_items = FashionMnist::load(fm_dir.as_deref(), Split::Test)?;
    let textures = Textures::load(tex_dir.as_deref())?;
    tracing::info!(items = %train_items.source, textures = %textures.source, "data");
    let cfg = SceneConfig::default();
    Ok(SegData {
        train: synthesize(&train_items, &textures, 0.0..0.6, train_scenes, seed, &cfg)?,
        test: synthesize(&test_items, &textures, 0.6..1.0, test_scenes, seed + 1, &cfg)?,
        scene: cfg.size as i64,
        items_source: train_items.source.to_string(),
        textures_source: textures.source.to_string(),
    })
}

/// How [`train`] trains.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Label of the progress bar.
    pub label: String,
    /// Optimiser steps.
    pub steps: usize,
    /// Scenes per batch.
    pub batch_size: usize,
    /// Peak Adam learning rate (2 % warm-up, cosine decay to 5 %).
    pub lr: f64,
    /// Validation Dice on 100 test scenes every this many steps.
    pub eval_every: usize,
    /// Device.
    pub device: Device,
    /// Show a progress bar.
    pub progress: bool,
}

/// What [`train`] measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainStats {
    /// Loss at every step.
    pub losses: Vec<f32>,
    /// `(step, validation Dice)`.
    pub val_dice: Vec<(usize, f64)>,
    /// Mean seconds per step after 5 warm-up steps.
    pub step_seconds: f64,
    /// Total training seconds.
    pub train_seconds: f64,
}

/// Trains `net` (whose parameters live in `vs`) with pixel-wise soft-max cross-entropy.
/// Batches are drawn with libtorch's global generator: seed it first for a repeatable run.
pub fn train(
    net: &dyn Segmenter,
    vs: &nn::VarStore,
    data: &SegData,
    cfg: &TrainConfig,
) -> Result<TrainStats> {
    let n = data.train.images.dim().0;
    let scene = data.scene;
    let mut opt = nn::Adam::default().build(vs, cfg.lr)?;
    let train_x = to_tensor(&data.train.images); // [n, 1, S, S] on CPU
    let masks: Vec<u8> = data.train.masks.iter().copied().collect();
    let train_y = Tensor::from_slice(&masks).view([n as i64, scene, scene]).to_kind(Kind::Int64);
    let val_n = data.test.images.dim().0.min(100);
    let val_images = data.test.images.slice(s![..val_n, .., ..]).to_owned();
    let val_masks = data.test.masks.slice(s![..val_n, .., ..]).to_owned();

    let pb = progress_bar(cfg.steps as u64, &cfg.label);
    if !cfg.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut losses = Vec::with_capacity(cfg.steps);
    let mut val_dice = Vec::new();
    let mut step_times = Vec::with_capacity(cfg.steps);
    let t_train = Instant::now();
    for step in 0..cfg.steps {
        let t0 = Instant::now();
        opt.set_lr(cosine_lr(cfg.lr, step, cfg.steps, cfg.steps / 50, 0.05));
        let idx = Tensor::randint(n as i64, [cfg.batch_size as i64], (Kind::Int64, Device::Cpu));
        let x = train_x.index_select(0, &idx).to_device(cfg.device);
        let y = train_y.index_select(0, &idx).to_device(cfg.device);
        let l = net.logits(&x, true)?;
        let loss = l.f_cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0)?;
        opt.backward_step(&loss);
        let lv = loss.double_value(&[]) as f32;
        if !lv.is_finite() {
            return Err(ImageError::Invalid(format!(
                "{}: training diverged at step {step} (loss {lv})",
                cfg.label
            )));
        }
        losses.push(lv);
        step_times.push(t0.elapsed().as_secs_f64());
        if (step + 1) % cfg.eval_every.max(1) == 0 || step + 1 == cfg.steps {
            let pred = predict(net, &val_images, cfg.device)?;
            let (d, _) = scores(&pred, &val_masks);
            val_dice.push((step + 1, d));
            pb.set_message(format!("loss {lv:.4}  val Dice {d:.3}"));
        } else if step % 10 == 0 {
            pb.set_message(format!("loss {lv:.4}"));
        }
        pb.inc(1);
    }
    pb.finish();
    let warm = step_times.len().min(5);
    let timed = &step_times[if step_times.len() > warm { warm } else { 0 }..];
    Ok(TrainStats {
        losses,
        val_dice,
        step_seconds: timed.iter().sum::<f64>() / timed.len().max(1) as f64,
        train_seconds: t_train.elapsed().as_secs_f64(),
    })
}

/// Arg-max class of every pixel of `images` (`[n, h, w]`), in batches of 64, without grad.
pub fn predict(net: &dyn Segmenter, images: &Array3<f32>, device: Device) -> Result<Array3<u8>> {
    let (n, h, w) = images.dim();
    let mut out = Array3::<u8>::zeros((n, h, w));
    let _guard = tch::no_grad_guard();
    for start in (0..n).step_by(64) {
        let end = (start + 64).min(n);
        let x = to_tensor(&images.slice(s![start..end, .., ..]).to_owned()).to_device(device);
        let y = net.logits(&x, false)?.argmax(1, false).to_kind(Kind::Uint8);
        let v = Vec::<u8>::try_from(y.to_device(Device::Cpu).contiguous().view([-1]))?;
        let block = Array3::from_shape_vec((end - start, h, w), v)
            .map_err(|e| ImageError::Invalid(e.to_string()))?;
        out.slice_mut(s![start..end, .., ..]).assign(&block);
    }
    Ok(out)
}

/// Mean per-image (Dice, IoU) of `pred` against `truth`.
pub fn scores(pred: &Array3<u8>, truth: &Array3<u8>) -> (f64, f64) {
    mean_dice_iou(pred.outer_iter().zip(truth.outer_iter()))
}

/// The Otsu baselines on `set`: (Dice, IoU) with the minority class as foreground, the same
/// with the better polarity per image chosen from the ground truth (an upper bound for any
/// global threshold), and the minority-polarity masks.
pub fn otsu_scores(set: &SegmentationSet) -> ((f64, f64), (f64, f64), Array3<u8>) {
    let imgs = set.images_u8();
    let mut minority = Array3::<u8>::zeros(imgs.dim());
    let mut oracle = Array3::<u8>::zeros(imgs.dim());
    for (i, img) in imgs.outer_iter().enumerate() {
        let m = otsu_segment(img, Polarity::Minority);
        let bright = otsu_segment(img, Polarity::Bright);
        let dark = otsu_segment(img, Polarity::Dark);
        let t = set.masks.index_axis(Axis(0), i);
        let db = Overlap::of(bright.view(), t).dice();
        let dd = Overlap::of(dark.view(), t).dice();
        minority.slice_mut(s![i, .., ..]).assign(&m);
        oracle.slice_mut(s![i, .., ..]).assign(if db >= dd { &bright } else { &dark });
    }
    (scores(&minority, &set.masks), scores(&oracle, &set.masks), minority)
}

/// Test scenes segmented per second by `net`, with the prediction.
pub fn timed_predict(
    net: &dyn Segmenter,
    images: &Array3<f32>,
    device: Device,
) -> Result<(Array3<u8>, f64)> {
    let t = Instant::now();
    let pred = predict(net, images, device)?;
    Ok((pred, images.dim().0 as f64 / t.elapsed().as_secs_f64().max(1e-9)))
}
