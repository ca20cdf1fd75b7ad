//! `resunet` and `multiresunet`: the U-Net variants of survey Table 2 that change the block
//! (residual units, MultiRes blocks with ResPaths), trained on the `unet2015` task and compared
//! at an equal budget (same data, steps, batch, optimiser and similar width) with the
//! `unet2015` design and the Otsu threshold.
//!
//! - ResUNet: Zhang, Liu & Wang 2018, [`unet_core::arch::ResUNet`].
//! - MultiResUNet: Ibtehaz & Rahman 2020, [`unet_core::arch::MultiResUNet`].
//!
//! Run: `cargo xtask reproduce resunet` (or `multiresunet`; add `--steps N`, `--device cuda`).

use std::collections::HashMap;
use std::path::PathBuf;

use ndarray::{Array2, Axis};
use tch::{nn, Device, Tensor};
use unet_core::arch::{MultiResUNet, MultiResUNetConfig, ResUNet, ResUNetConfig};
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::{checkpoint, parameter_count, FinalActivation, UNet};

use super::segment::{
    load_data, otsu_scores, scores, timed_predict, train, SegData, Segmenter, TrainConfig,
    TrainStats,
};
use super::unet2015;
use crate::io::{grid, write_gray_png};
use crate::{ImageError, Result};

/// Which variant to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Zhang et al. 2018.
    ResUNet,
    /// Ibtehaz & Rahman 2020.
    MultiResUNet,
}

impl Variant {
    /// Model name of `cargo xtask reproduce`.
    pub fn name(&self) -> &'static str {
        match self {
            Variant::ResUNet => "resunet",
            Variant::MultiResUNet => "multiresunet",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Variant::ResUNet => "ResUNet (Zhang, Liu & Wang 2018)",
            Variant::MultiResUNet => "MultiResUNet (Ibtehaz & Rahman 2020)",
        }
    }

    fn citation(&self) -> &'static str {
        match self {
            Variant::ResUNet => {
                "Zhang, Liu & Wang, *Road Extraction by Deep Residual U-Net*, IEEE Geoscience and \
                 Remote Sensing Letters 15(5), 2018 (arXiv:1711.10684)"
            }
            Variant::MultiResUNet => {
                "Ibtehaz & Rahman, *MultiResUNet: Rethinking the U-Net architecture for multimodal \
                 biomedical image segmentation*, Neural Networks 121, 2020 (arXiv:1902.04049)"
            }
        }
    }

    /// Parameter count of the full-size preset.
    pub fn full_params(&self) -> Result<i64> {
        let vs = nn::VarStore::new(Device::Cpu);
        match self {
            Variant::ResUNet => drop(ResUNet::new(&vs.root(), &ResUNetConfig::zhang2018())?),
            Variant::MultiResUNet => {
                drop(MultiResUNet::new(&vs.root(), &MultiResUNetConfig::ibtehaz2020())?)
            }
        }
        Ok(parameter_count(&vs))
    }
}

/// The small ResUNet: `base·2^l` channels over `depth` levels, grey in, two-class logits out.
pub fn small_resunet(base: i64, depth: usize) -> ResUNetConfig {
    ResUNetConfig {
        in_channels: 1,
        out_channels: 2,
        channels: (0..=depth).map(|l| base << l).collect(),
        final_activation: FinalActivation::Softmax,
        ..ResUNetConfig::zhang2018()
    }
}

/// The small MultiResUNet: nominal width `base·2^l`, grey in, two-class logits out.
pub fn small_multiresunet(base: i64, depth: usize) -> MultiResUNetConfig {
    MultiResUNetConfig {
        in_channels: 1,
        out_channels: 2,
        base,
        depth,
        final_activation: FinalActivation::Softmax,
        ..MultiResUNetConfig::ibtehaz2020()
    }
}

enum Net {
    Res(ResUNet),
    MultiRes(MultiResUNet),
}

impl Segmenter for Net {
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            Net::Res(n) => n.forward_logits_t(x, train)?,
            Net::MultiRes(n) => n.forward_logits_t(x, train)?,
        })
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache with `fashion-mnist/` and `textures/` (embedded samples otherwise).
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps of each model.
    pub steps: usize,
    /// Scenes per batch.
    pub batch_size: usize,
    /// Peak Adam learning rate.
    pub lr: f64,
    /// Channels (nominal width) at full resolution of the small models.
    pub base: i64,
    /// Down-sampling levels of the small models.
    pub depth: usize,
    /// Training scenes.
    pub train_scenes: usize,
    /// Held-out test scenes.
    pub test_scenes: usize,
    /// Validation every this many steps.
    pub eval_every: usize,
    /// Device.
    pub device: Device,
    /// Seed of data and initialisation.
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
}

impl RunOptions {
    /// Defaults for `variant`, writing to `target/reproduce/<name>`.
    pub fn for_variant(variant: Variant) -> Self {
        Self {
            out: PathBuf::from("target/reproduce").join(variant.name()),
            data_cache: None,
            steps: 1200,
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

/// One trained model's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contender {
    /// Row label.
    pub name: String,
    /// Trainable parameters of the small model.
    pub params: i64,
    /// Test (Dice, IoU).
    pub scores: (f64, f64),
    /// Training curve and timings.
    pub train: TrainStats,
    /// Test scenes per second.
    pub scenes_per_second: f64,
}

/// Measured results of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The variant's full-size parameter count.
    pub full_params: i64,
    /// The variant, small.
    pub variant: Contender,
    /// The `unet2015` design at the same budget.
    pub unet2015: Contender,
    /// Otsu, minority polarity (Dice, IoU).
    pub otsu: (f64, f64),
    /// Otsu, oracle polarity (Dice, IoU).
    pub otsu_oracle: (f64, f64),
}

fn train_cfg(opts: &RunOptions, label: &str) -> TrainConfig {
    TrainConfig {
        label: label.into(),
        steps: opts.steps,
        batch_size: opts.batch_size,
        lr: opts.lr,
        eval_every: opts.eval_every,
        device: opts.device,
        progress: opts.progress,
    }
}

/// Trains the variant and the `unet2015` baseline at equal budget and writes the report.
pub fn run(variant: Variant, opts: &RunOptions) -> Result<RunResult> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| ImageError::Io { path: out.clone(), source: e })?;
    let data =
        load_data(opts.data_cache.as_deref(), opts.train_scenes, opts.test_scenes, opts.seed)?;
    let full_params = variant.full_params()?;

    // 1. The variant.
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let (net, cfg_json) = match variant {
        Variant::ResUNet => {
            let cfg = small_resunet(opts.base, opts.depth);
            (Net::Res(ResUNet::new(&vs.root(), &cfg)?), serde_json::to_string_pretty(&cfg))
        }
        Variant::MultiResUNet => {
            let cfg = small_multiresunet(opts.base, opts.depth);
            let net = MultiResUNet::new(&vs.root(), &cfg)?;
            (Net::MultiRes(net), serde_json::to_string_pretty(&cfg))
        }
    };
    let cfg_json = cfg_json.unwrap_or_default();
    let params = parameter_count(&vs);
    let stats = train(&net, &vs, &data, &train_cfg(opts, variant.name()))?;
    let meta = HashMap::from([
        ("model".to_string(), format!("{}-small", variant.name())),
        ("config".to_string(), cfg_json.clone()),
    ]);
    checkpoint::save(&vs, out.join("model.safetensors"), Some(meta))?;
    checkpoint::load_strict(&mut vs, out.join("model.safetensors"))?;
    let (pred, sps) = timed_predict(&net, &data.test.images, opts.device)?;
    let variant_row = Contender {
        name: format!("{} (small, trained here)", variant.title()),
        params,
        scores: scores(&pred, &data.test.masks),
        train: stats,
        scenes_per_second: sps,
    };

    // 2. The unet2015 design at the same budget.
    tch::manual_seed(opts.seed as i64);
    let base_cfg = unet2015::small(opts.base, opts.depth);
    let bvs = nn::VarStore::new(opts.device);
    let bnet = UNet::new(&bvs.root(), &base_cfg)?;
    let tiled = unet2015::Tiled::new(&bnet, data.scene)?;
    let bstats = train(&tiled, &bvs, &data, &train_cfg(opts, "unet2015 (baseline)"))?;
    let (bpred, bsps) = timed_predict(&tiled, &data.test.images, opts.device)?;
    let baseline = Contender {
        name: "U-Net 2015 design (small, same budget)".into(),
        params: parameter_count(&bvs),
        scores: scores(&bpred, &data.test.masks),
        train: bstats,
        scenes_per_second: bsps,
    };

    // 3. Otsu.
    let (otsu, otsu_oracle, otsu_pred) = otsu_scores(&data.test);
    let result =
        RunResult { full_params, variant: variant_row, unet2015: baseline, otsu, otsu_oracle };

    // Artefacts.
    let curve = |c: &Contender| -> Vec<(f64, f64)> {
        c.train.losses.iter().enumerate().map(|(i, &l)| ((i + 1) as f64, l as f64)).collect()
    };
    let (pv, pb) = (curve(&result.variant), curve(&result.unet2015));
    plot_lines(
        &out.join("loss.png"),
        &format!("{}: training loss (soft-max cross-entropy)", variant.name()),
        "step",
        "loss",
        &[
            Series::new(format!("{} (EMA 0.05)", variant.name()), smooth(&pv, 0.05)),
            Series::new("unet2015 design (EMA 0.05)", smooth(&pb, 0.05)),
            Series::new(format!("{} raw", variant.name()), pv).faint(),
        ],
        true,
    )?;
    let vd = |c: &Contender| -> Vec<(f64, f64)> {
        c.train.val_dice.iter().map(|&(s, d)| (s as f64, d)).collect()
    };
    let flat = |v: f64| vec![(1.0, v), (opts.steps as f64, v)];
    plot_lines(
        &out.join("val_dice.png"),
        &format!("{}: validation Dice", variant.name()),
        "step",
        "Dice",
        &[
            Series::new(variant.name(), vd(&result.variant)),
            Series::new("unet2015 design", vd(&result.unet2015)),
            Series::new("Otsu, minority polarity (test)", flat(otsu.0)),
        ],
        false,
    )?;
    let mut cells: Vec<Array2<f32>> = Vec::new();
    for i in 0..data.test.images.dim().0.min(8) {
        cells.push(data.test.images.index_axis(Axis(0), i).to_owned());
        cells.push(data.test.masks.index_axis(Axis(0), i).mapv(|v| v as f32));
        cells.push(pred.index_axis(Axis(0), i).mapv(|v| v as f32));
        cells.push(bpred.index_axis(Axis(0), i).mapv(|v| v as f32));
        cells.push(otsu_pred.index_axis(Axis(0), i).mapv(|v| v as f32));
    }
    write_gray_png(out.join("samples.png"), &grid(&cells, 5, 2)?)?;
    write_report(variant, opts, &data, &cfg_json, &result)?;
    Ok(result)
}

fn full_note(variant: Variant) -> &'static str {
    match variant {
        Variant::ResUNet => {
            "Table 1 of the paper: 224×224×3 input, a stem unit and residual units of 64, 128, \
             256 channels, a 512-channel bridge, three decoder units, 1×1 conv + sigmoid. \
             See `docs/models/resunet.md` for how this count compares with the paper's 7.8M."
        }
        Variant::MultiResUNet => {
            "the authors' code: MultiRes blocks of nominal width 32…512 with α = 1.67, ResPaths \
             of length 4/3/2/1, 2×2 transposed convs, 1×1 conv + BN + sigmoid head, 3 input \
             channels. See `docs/models/multiresunet.md` for the paper's figure."
        }
    }
}

fn write_report(
    variant: Variant,
    opts: &RunOptions,
    data: &SegData,
    cfg_json: &str,
    r: &RunResult,
) -> Result<()> {
    let f = |x: f64| format!("{x:.4}");
    let row = |c: &Contender| {
        vec![
            c.name.clone(),
            thousands(c.params),
            f(c.scores.0),
            f(c.scores.1),
            format!("{:.1}", c.train.step_seconds * 1e3),
            format!("{:.0}", c.scenes_per_second),
        ]
    };
    let rows = vec![
        row(&r.variant),
        row(&r.unet2015),
        vec![
            "Otsu threshold, minority class as foreground".into(),
            "0".into(),
            f(r.otsu.0),
            f(r.otsu.1),
            "-".into(),
            "-".into(),
        ],
        vec![
            "Otsu threshold, oracle polarity per image (upper bound)".into(),
            "0".into(),
            f(r.otsu_oracle.0),
            f(r.otsu_oracle.1),
            "-".into(),
            "-".into(),
        ],
    ];
    let table = markdown_table(
        &["method", "parameters", "Dice", "IoU", "ms / train step", "test scenes / s"],
        &rows,
    );
    let verdict = |a: (f64, f64), b: (f64, f64)| {
        if a.0 > b.0 {
            "higher"
        } else {
            "not higher"
        }
    };
    let final_loss = |c: &Contender| {
        let k = c.train.losses.len().clamp(1, 50);
        c.train.losses.iter().rev().take(k).sum::<f32>() / k as f32
    };
    let text = format!(
        r#"# {name}: {title}

{citation}. Reproduced with `cargo xtask reproduce {name}`.

## Architecture

| preset | parameters | notes |
|---|---|---|
| full size | {full} | {full_note} |
| small (trained here) | {small} | config below |

```json
{cfg_json}
```

## Task, data and budget

The `unet2015` task: segment Fashion-MNIST items pasted on scikit-image texture photographs
(64×64 scenes, 1-3 items each with a random grey ramp, Gaussian noise). {train_n} training
scenes from training items and the top 60 % of each texture; {test_n} test scenes from test
items and the bottom 40 %. Both networks get the same budget: {steps} Adam steps of batch
{batch}, peak lr {lr} with warm-up and cosine decay, the same seed, soft-max cross-entropy over
two classes, and the same base width ({base}) and depth ({depth}). The U-Net 2015 design uses
its overlap-tile input (mirror padding, valid convs); the variant pads its convs.

- items: {items_src}
- textures: {tex_src}

## Results on held-out test scenes

{table}
Test Dice of {name} is **{v1}** than the U-Net 2015 design's at equal budget, and **{v2}** than
the Otsu baseline's. The paper's own figures come from other data (see `docs/models/{name}.md`)
and are not comparable with this task.

![loss](loss.png)

![validation Dice](val_dice.png)

Columns: scene, ground truth, {name}, U-Net 2015 design, Otsu — 8 test scenes:

![samples](samples.png)

## Training

| quantity | {name} | U-Net 2015 design |
|---|---|---|
| total training seconds | {t1:.1} | {t2:.1} |
| final training loss (mean of last 50 steps) | {l1:.4} | {l2:.4} |
| device | {device:?} ({threads} threads) | same |

Checkpoint of the variant: `model.safetensors` (config in its metadata; reloaded strictly).
"#,
        name = variant.name(),
        title = variant.title(),
        citation = variant.citation(),
        full = thousands(r.full_params),
        full_note = full_note(variant),
        small = thousands(r.variant.params),
        train_n = opts.train_scenes,
        test_n = opts.test_scenes,
        steps = opts.steps,
        batch = opts.batch_size,
        lr = opts.lr,
        base = opts.base,
        depth = opts.depth,
        items_src = data.items_source,
        tex_src = data.textures_source,
        v1 = verdict(r.variant.scores, r.unet2015.scores),
        v2 = verdict(r.variant.scores, r.otsu),
        t1 = r.variant.train.train_seconds,
        t2 = r.unet2015.train.train_seconds,
        l1 = final_loss(&r.variant),
        l2 = final_loss(&r.unet2015),
        device = opts.device,
        threads = tch::get_num_threads(),
    );
    checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
