//! `unet2015`: the U-Net of Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
//! Biomedical Image Segmentation", MICCAI 2015 (arXiv:1505.04597).
//!
//! Full size: [`UNetConfig::ronneberger2015`] (unpadded 3×3 convs, 64 → 1024 channels, 2×2
//! max-pool, 2×2 up-conv, crop-and-concat, 1×1 head, soft-max over 2 classes): 31,030,658
//! parameters. The small run trains a narrower, shallower copy of the same design on items
//! pasted on textures (see [`crate::data::segmentation`]) with the paper's overlap-tile input
//! (mirror padding so the valid-padding output covers the whole scene) and pixel-wise
//! soft-max cross-entropy, and compares Dice/IoU on held-out scenes with Otsu thresholding.
//!
//! Run: `cargo xtask reproduce unet2015` (add `--steps N`, `--device cuda`, `--base 64 --depth 4`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Array3, Axis};
use tch::{nn, Device, Tensor};
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::{checkpoint, parameter_count, UNet, UNetConfig};

use super::segment::{
    load_data, otsu_scores, scores, timed_predict, train, SegData, Segmenter, TrainConfig,
};
use crate::io::{grid, write_gray_png};
use crate::{ImageError, Result};

/// The full-size architecture (Fig. 1 of the paper).
pub fn full() -> UNetConfig {
    UNetConfig::ronneberger2015()
}

/// Parameter count of the full-size model. The paper states no count; this is the count of
/// the configuration of its Fig. 1, which PyTorch gives for the same layers (see
/// `docs/models/unet2015.md`).
pub const FULL_PARAMS: i64 = 31_030_658;

/// The same design scaled down: `base` channels at full resolution doubling over `depth`
/// levels, still unpadded convs with bias, no normalisation, soft-max head.
pub fn small(base: i64, depth: usize) -> UNetConfig {
    UNetConfig { channels: (0..=depth).map(|i| base << i).collect(), ..full() }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder (`report.md`, plots, images, checkpoint).
    pub out: PathBuf,
    /// Data cache with `fashion-mnist/` and `textures/` (embedded samples otherwise).
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: usize,
    /// Scenes per batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Channels at full resolution of the small model.
    pub base: i64,
    /// Down-sampling levels of the small model.
    pub depth: usize,
    /// Training scenes synthesised once.
    pub train_scenes: usize,
    /// Held-out test scenes.
    pub test_scenes: usize,
    /// Evaluate on a validation subset every this many steps.
    pub eval_every: usize,
    /// Device to train on.
    pub device: Device,
    /// Seed of scene synthesis and initialisation.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/unet2015"),
            data_cache: None,
            steps: 2500,
            batch_size: 16,
            lr: 1e-3,
            base: 16,
            depth: 3,
            train_scenes: 4000,
            test_scenes: 400,
            eval_every: 100,
            device: Device::Cpu,
            seed: 2015,
            progress: true,
        }
    }
}

/// Measured results of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Trainable parameters of the full-size preset.
    pub full_params: i64,
    /// Trainable parameters of the trained small model.
    pub small_params: i64,
    /// Mean Dice / IoU of the U-Net on the test scenes.
    pub unet: (f64, f64),
    /// Otsu with the minority class as foreground (the baseline).
    pub otsu: (f64, f64),
    /// Otsu with the better polarity per image chosen with the ground truth (an upper bound
    /// for a global threshold).
    pub otsu_oracle: (f64, f64),
    /// Training loss at each step.
    pub losses: Vec<f32>,
    /// `(step, validation Dice)` during training.
    pub val_dice: Vec<(usize, f64)>,
    /// Mean seconds per training step (after warm-up).
    pub step_seconds: f64,
    /// Total training seconds.
    pub train_seconds: f64,
    /// Test scenes segmented per second.
    pub eval_scenes_per_second: f64,
    /// Input tile side (mirror-padded scene).
    pub tile: i64,
}

/// Geometry of the overlap-tile input: mirror padding before, after, and the crop of the
/// output that covers the scene.
#[derive(Debug, Clone, Copy)]
struct Tile {
    input: i64,
    pad_before: i64,
    pad_after: i64,
    crop: i64,
}

fn tile_for(cfg: &UNetConfig, scene: i64) -> Result<Tile> {
    let input = cfg.input_size_for_output(scene);
    let output = cfg.output_size(input).map_err(ImageError::Invalid)?;
    let crop = (output - scene) / 2;
    let pad_before = (input - output) / 2 + crop;
    let pad_after = input - scene - pad_before;
    if pad_before >= scene || pad_after >= scene {
        return Err(ImageError::Invalid(format!(
            "mirror padding of {pad_before}/{pad_after} px needs scenes larger than {scene} px"
        )));
    }
    Ok(Tile { input, pad_before, pad_after, crop })
}

/// The small U-Net seen through the overlap-tile strategy: mirror-pad the scene, run the
/// valid-padding network, crop the output to the scene.
pub struct Tiled<'a> {
    net: &'a UNet,
    tile: Tile,
    scene: i64,
}

impl<'a> Tiled<'a> {
    /// Wraps `net` for `scene`-sized inputs.
    pub fn new(net: &'a UNet, scene: i64) -> Result<Self> {
        Ok(Self { net, tile: tile_for(net.config(), scene)?, scene })
    }

    /// Side of the mirror-padded input tile.
    pub fn tile_size(&self) -> i64 {
        self.tile.input
    }
}

impl Segmenter for Tiled<'_> {
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (a, b) = (self.tile.pad_before, self.tile.pad_after);
        let padded = x.f_reflection_pad2d([a, b, a, b])?; // [N, 1, tile, tile]
        let y = self.net.forward_logits_t(&padded, train)?; // [N, 2, out, out]
        let (c, s) = (self.tile.crop, self.scene);
        Ok(y.narrow(2, c, s).narrow(3, c, s)) // [N, 2, scene, scene]
    }
}

/// Parameter count of the full-size preset (built on the CPU and dropped).
pub fn count_full() -> Result<i64> {
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &full())?;
    Ok(parameter_count(&vs))
}

/// Trains and evaluates the small model and writes the report into `opts.out`.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| ImageError::Io { path: out.clone(), source: e })?;
    let data =
        load_data(opts.data_cache.as_deref(), opts.train_scenes, opts.test_scenes, opts.seed)?;
    let full_params = count_full()?;

    tch::manual_seed(opts.seed as i64);
    let cfg = small(opts.base, opts.depth);
    let mut vs = nn::VarStore::new(opts.device);
    let net = UNet::new(&vs.root(), &cfg)?;
    let small_params = parameter_count(&vs);
    let tiled = Tiled::new(&net, data.scene)?;
    let stats = train(
        &tiled,
        &vs,
        &data,
        &TrainConfig {
            label: "unet2015".into(),
            steps: opts.steps,
            batch_size: opts.batch_size,
            lr: opts.lr,
            eval_every: opts.eval_every,
            device: opts.device,
            progress: opts.progress,
        },
    )?;

    let meta = HashMap::from([
        ("model".to_string(), "unet2015-small".to_string()),
        ("config".to_string(), serde_json::to_string(&cfg).unwrap_or_default()),
    ]);
    checkpoint::save(&vs, out.join("model.safetensors"), Some(meta))?;
    // The checkpoint must load back into a fresh model (strict keys and shapes).
    checkpoint::load_strict(&mut vs, out.join("model.safetensors"))?;

    let (pred, eval_scenes_per_second) = timed_predict(&tiled, &data.test.images, opts.device)?;
    let unet = scores(&pred, &data.test.masks);
    let (otsu, otsu_oracle, otsu_pred) = otsu_scores(&data.test);

    let result = RunResult {
        full_params,
        small_params,
        unet,
        otsu,
        otsu_oracle,
        losses: stats.losses,
        val_dice: stats.val_dice,
        step_seconds: stats.step_seconds,
        train_seconds: stats.train_seconds,
        eval_scenes_per_second,
        tile: tiled.tile_size(),
    };
    write_report(opts, &cfg, &data, &pred, &otsu_pred, &result)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    cfg: &UNetConfig,
    data: &SegData,
    pred: &Array3<u8>,
    otsu: &Array3<u8>,
    r: &RunResult,
) -> Result<()> {
    let out = &opts.out;
    let test = &data.test;
    // Loss curve and validation Dice.
    let pts: Vec<(f64, f64)> =
        r.losses.iter().enumerate().map(|(i, &l)| ((i + 1) as f64, l as f64)).collect();
    plot_lines(
        &out.join("loss.png"),
        "unet2015: training loss (pixel-wise soft-max cross-entropy)",
        "step",
        "loss",
        &[
            Series::new("train loss", pts.clone()).faint(),
            Series::new("EMA 0.05", smooth(&pts, 0.05)),
        ],
        true,
    )?;
    let vd: Vec<(f64, f64)> = r.val_dice.iter().map(|&(s, d)| (s as f64, d)).collect();
    let flat = |v: f64| vec![(1.0, v), (opts.steps as f64, v)];
    plot_lines(
        &out.join("val_dice.png"),
        "unet2015: validation Dice",
        "step",
        "Dice",
        &[
            Series::new("U-Net (validation subset)", vd),
            Series::new("Otsu, minority polarity (test)", flat(r.otsu.0)),
            Series::new("Otsu, oracle polarity (test)", flat(r.otsu_oracle.0)),
        ],
        false,
    )?;
    // Sample grid: scene | ground truth | U-Net | Otsu, 8 test scenes.
    let mut cells: Vec<Array2<f32>> = Vec::new();
    for i in 0..test.images.dim().0.min(8) {
        cells.push(test.images.index_axis(Axis(0), i).to_owned());
        cells.push(test.masks.index_axis(Axis(0), i).mapv(|v| v as f32));
        cells.push(pred.index_axis(Axis(0), i).mapv(|v| v as f32));
        cells.push(otsu.index_axis(Axis(0), i).mapv(|v| v as f32));
    }
    write_gray_png(out.join("samples.png"), &grid(&cells, 4, 2)?)?;

    let f = |x: f64| format!("{x:.4}");
    let rows = vec![
        vec!["U-Net (small preset, trained here)".into(), f(r.unet.0), f(r.unet.1)],
        vec![
            "Otsu threshold, minority class as foreground (baseline)".into(),
            f(r.otsu.0),
            f(r.otsu.1),
        ],
        vec![
            "Otsu threshold, best polarity per image from ground truth (upper bound)".into(),
            f(r.otsu_oracle.0),
            f(r.otsu_oracle.1),
        ],
    ];
    let beats = r.unet.0 > r.otsu.0 && r.unet.1 > r.otsu.1;
    let text = format!(
        r#"# unet2015: Ronneberger et al. 2015 U-Net

Ronneberger, Fischer & Brox, *U-Net: Convolutional Networks for Biomedical Image Segmentation*,
MICCAI 2015 (arXiv:1505.04597). Reproduced with `cargo xtask reproduce unet2015`.

## Architecture

| preset | parameters | notes |
|---|---|---|
| full size (`UNetConfig::ronneberger2015()`) | {full} | Fig. 1: 1 → 2 channels, 64…1024, 23 conv layers, unpadded 3×3 convs, 572² tile → 388² map |
| small (trained here) | {small} | channels {channels:?}, same design, {tile}² mirror-padded tile → 64² map |

The paper states no parameter count; {full} is the count of its Fig. 1 configuration
(the same figure PyTorch gives for those layers), asserted in `crates/unet-core/tests`.

Small-run config:

```json
{cfg_json}
```

## Task and data

Segment Fashion-MNIST items pasted on texture photographs (1-3 items per 64×64 scene, each
item with a random grey ramp, so it may be brighter, darker or as bright as the background;
Gaussian noise σ = 0.03). Training scenes: {train_n} from training items and the top 60 % of
each texture. Test scenes: {test_n} from test items and the bottom 40 %: no item or texture
region is shared.

- items: {items_src}
- textures: {tex_src}

## Results on held-out test scenes

{table}
U-Net beats the baseline: **{beats}**. Dice and IoU are per-image foreground scores, averaged
over the test scenes. For context only, the paper reports IoU 0.9203 (PhC-U373) and 0.7756
(DIC-HeLa) on the ISBI 2015 cell tracking data, which is not available offline; these figures
are not comparable with the task above.

![loss](loss.png)

![validation Dice](val_dice.png)

Columns: scene, ground truth, U-Net, Otsu (minority) — 8 test scenes:

![samples](samples.png)

## Training and timings

| quantity | value |
|---|---|
| device | {device:?} ({threads} CPU threads for libtorch) |
| optimiser | Adam, lr {lr} with 2 % warm-up and cosine decay to 5 %, batch {batch}, {steps} steps |
| loss | pixel-wise soft-max cross-entropy (the paper's energy without its border weight map) |
| mean train step | {step_ms:.1} ms |
| total training | {train_s:.1} s |
| test inference | {eval_sps:.0} scenes/s |
| final training loss (mean of last 50 steps) | {final_loss:.4} |

Checkpoint: `model.safetensors` (config in its metadata; reloaded strictly after saving).

## Not reproduced here

- The paper's elastic-deformation augmentation and the weight map that emphasises borders
  between touching cells (the task has no touching-instance borders to separate).
- SGD with momentum 0.99 and one-tile batches: Adam with batches of {batch} converges in the
  few minutes a CPU run allows.
"#,
        full = thousands(r.full_params),
        small = thousands(r.small_params),
        channels = cfg.channels,
        tile = r.tile,
        cfg_json = serde_json::to_string_pretty(cfg).unwrap_or_default(),
        train_n = opts.train_scenes,
        test_n = opts.test_scenes,
        items_src = data.items_source,
        tex_src = data.textures_source,
        table = markdown_table(&["method", "Dice", "IoU"], &rows),
        device = opts.device,
        threads = tch::get_num_threads(),
        lr = opts.lr,
        batch = opts.batch_size,
        steps = opts.steps,
        step_ms = r.step_seconds * 1e3,
        train_s = r.train_seconds,
        eval_sps = r.eval_scenes_per_second,
        final_loss = {
            let k = r.losses.len().clamp(1, 50);
            r.losses.iter().rev().take(k).sum::<f32>() / k as f32
        },
    );
    let path = out.join("report.md");
    unet_core::checkpoint::write_atomic(&path, text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}

/// Where `run` writes its report.
pub fn report_path(out: &Path) -> PathBuf {
    out.join("report.md")
}
