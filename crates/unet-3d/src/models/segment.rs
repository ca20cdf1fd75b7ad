//! `unet3d` (Çiçek et al. 2016) and `s3d-unet` (Chen et al. 2018): volumetric segmentation of
//! real anatomy with sliding-window inference.
//!
//! Task: CGAL's liver label volume (438×353×165, labels 0/85/127/255 → classes 0–3) is the
//! ground truth. The data set ships labels only, so the image is synthesised from them the
//! way MR/CT phantoms are: each class gets a mean intensity (evenly spaced in [0.15, 0.85]),
//! the volume is multiplied by a smooth bias field (±20 %), blurred (Gaussian σ = 1 voxel,
//! partial volume) and Gaussian noise (σ = 0.15) is added. The labels are down-sampled 2× in x
//! and y (nearest) and cropped to the foreground box with a margin. The first 70 % of the box
//! along z trains; the last 30 % is the held-out slab, segmented by sliding-window inference
//! (MONAI's placement, Gaussian blending) over it plus half a window of context. Half the
//! training crops are centred on a voxel of a foreground class drawn uniformly.
//!
//! Baseline: per-class intensity thresholds chosen to maximise the mean foreground Dice on the
//! *training* slab (coordinate ascent over 48 intensity quantiles), applied voxel by voxel.
//! Metrics: Dice per class and its mean over the foreground classes, Hausdorff-95 (mm, medpy's
//! definition) per class. S3D-UNet's saving: parameters and multiply–accumulates of both
//! architectures at full size and as trained, and the measured forward time on one window.
//!
//! Run: `cargo xtask reproduce unet3d` and `cargo xtask reproduce s3d-unet`.

use std::path::PathBuf;
use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{UNet3d, UNet3dConfig};
use unet_core::layers::conv::ConvKind;
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig};

use crate::data::liver;
use crate::metrics::{dice, hausdorff95};
use crate::sliding::{Blend, SlidingWindow};
use crate::volume::Volume;
use crate::{Error3d, Result};
use unet_core::rng::Rng;

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Arch {
    /// Dense 3×3×3 convolutions (Çiçek 2016).
    UNet3d,
    /// Depthwise-separable convolutions (S3D-UNet, Chen 2018).
    S3d,
}

impl Arch {
    /// The model's name in the registry.
    pub fn name(self) -> &'static str {
        match self {
            Arch::UNet3d => "unet3d",
            Arch::S3d => "s3d-unet",
        }
    }

    fn conv(self) -> ConvKind {
        match self {
            Arch::UNet3d => ConvKind::Full,
            Arch::S3d => ConvKind::Separable,
        }
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which network.
    pub arch: Arch,
    /// Output folder.
    pub out: PathBuf,
    /// The datasets folder (`cgal/` inside); the embedded liver when absent.
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: usize,
    /// Crops per batch.
    pub batch_size: i64,
    /// Channels of the first convolution.
    pub base: i64,
    /// Crop (and window) side, a multiple of 8.
    pub crop: usize,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bars.
    pub progress: bool,
}

impl RunOptions {
    /// Defaults for `arch`.
    pub fn new(arch: Arch) -> Self {
        Self {
            arch,
            out: PathBuf::from("target/reproduce").join(arch.name()),
            data_cache: crate::data::default_cache(),
            steps: 1500,
            batch_size: 2,
            base: 8,
            crop: 32,
            device: Device::Cpu,
            seed: 2016,
            progress: true,
        }
    }
}

/// The prepared task.
pub struct Task {
    /// Image `[1, X, Y, Z]`.
    pub image: Tensor,
    /// Labels (class ids).
    pub labels: Volume<u8>,
    /// Classes, background included.
    pub classes: usize,
    /// The axis (0 = x, 1 = y, 2 = z) cut into training and held-out parts.
    pub axis: usize,
    /// First index of the held-out part along `axis`.
    pub cut: usize,
    /// Voxel spacing, mm.
    pub spacing: [f64; 3],
    /// Where the labels came from.
    pub source: String,
}

/// `[X, Y, Z]` tensor (float) of a volume stored x fastest.
pub fn volume_tensor(v: &Volume<f32>) -> Tensor {
    let [x, y, z] = v.dims;
    Tensor::from_slice(&v.data).view([z as i64, y as i64, x as i64]).permute([2, 1, 0]).contiguous()
}

/// A volume (x fastest) from an `[X, Y, Z]` u8-valued tensor.
pub fn tensor_labels(t: &Tensor, spacing: [f64; 3]) -> Result<Volume<u8>> {
    let s = t.size();
    let dims = [s[0] as usize, s[1] as usize, s[2] as usize];
    let data =
        Vec::<u8>::try_from(t.permute([2, 1, 0]).contiguous().to_kind(Kind::Uint8).view([-1]))?;
    Volume::from_vec(dims, spacing, data)
}

/// Loads the liver labels, down-samples, crops and synthesises the image (seeded).
pub fn prepare(cache: Option<&std::path::Path>, seed: u64) -> Result<Task> {
    let lv = liver(cache)?;
    let l = &lv.labels;
    // 2× in x and y, nearest.
    let dims = [l.dims[0] / 2, l.dims[1] / 2, l.dims[2]];
    let mut down = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                down.push(l.get(2 * x, 2 * y, z).unwrap_or(0));
            }
        }
    }
    let spacing = [l.spacing[0] * 2.0, l.spacing[1] * 2.0, l.spacing[2]];
    let down = Volume::from_vec(dims, spacing, down)?;
    // Foreground box with an 8-voxel margin.
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                if down.get(x, y, z).unwrap_or(0) > 0 {
                    for (a, v) in [x, y, z].into_iter().enumerate() {
                        lo[a] = lo[a].min(v);
                        hi[a] = hi[a].max(v);
                    }
                }
            }
        }
    }
    if lo[0] == usize::MAX {
        return Err(Error3d::format(&lv.source, "the label volume has no foreground"));
    }
    let off: Vec<usize> = (0..3).map(|a| lo[a].saturating_sub(8)).collect();
    let size: Vec<usize> = (0..3).map(|a| (hi[a] + 9).min(dims[a]) - off[a]).collect();
    let labels = down.crop([off[0], off[1], off[2]], [size[0], size[1], size[2]])?;
    let classes = lv.classes();
    // Hold out the part `split_axis` picks; a low-end part is mirrored to the high end, so
    // training always uses indices below `cut`.
    let (axis, cut, low) = split_axis(&labels, classes);
    let (labels, cut) =
        if low { (labels.flip(axis), labels.dims[axis] - cut) } else { (labels, cut) };
    let image = synthesise(&labels, classes, seed)?;
    Ok(Task { image, labels, classes, axis, cut, spacing, source: lv.source })
}

/// Where to hold out: the axis, the cut, and whether the held-out part is the low end, chosen
/// among cuts leaving 15–50 % of the axis held out (at either end, 5 % steps) to split every
/// foreground class most evenly: the cut maximising `min over classes of min(f, 1 − f)`, with
/// `f` the class's held-out fraction (so every class is both learnt and scored).
pub fn split_axis(labels: &Volume<u8>, classes: usize) -> (usize, usize, bool) {
    // Per axis, per index along it, voxels of each class.
    let mut hist: Vec<Vec<Vec<usize>>> =
        (0..3).map(|a| vec![vec![0usize; classes]; labels.dims[a]]).collect();
    for z in 0..labels.dims[2] {
        for y in 0..labels.dims[1] {
            for x in 0..labels.dims[0] {
                let l = (labels.get(x, y, z).unwrap_or(0) as usize).min(classes - 1);
                for (a, i) in [x, y, z].into_iter().enumerate() {
                    hist[a][i][l] += 1;
                }
            }
        }
    }
    let mut best = (f64::MIN, 2usize, labels.dims[2] * 7 / 10, false);
    for axis in [2usize, 0, 1] {
        let n = labels.dims[axis];
        let total: Vec<usize> =
            (0..classes).map(|c| hist[axis].iter().map(|h| h[c]).sum()).collect();
        for pct in (15..=50).step_by(5) {
            for low in [false, true] {
                let held = n * pct / 100;
                let range = if low { 0..held } else { n - held..n };
                let score = (1..classes)
                    .map(|c| {
                        let k: usize = hist[axis][range.clone()].iter().map(|h| h[c]).sum();
                        let f = k as f64 / total[c].max(1) as f64;
                        f.min(1.0 - f)
                    })
                    .fold(f64::MAX, f64::min);
                if score > best.0 {
                    best = (score, axis, if low { held } else { n - held }, low);
                }
            }
        }
    }
    (best.1, best.2, best.3)
}

/// The synthetic image of `labels` (see the module docs), `[1, X, Y, Z]`.
pub fn synthesise(labels: &Volume<u8>, classes: usize, seed: u64) -> Result<Tensor> {
    let [x, y, z] = labels.dims;
    let lab = volume_tensor(&labels.to_f32()).to_kind(Kind::Int64);
    let means: Vec<f32> =
        (0..classes).map(|c| 0.15 + 0.7 * c as f32 / (classes.max(2) - 1) as f32).collect();
    let img = Tensor::from_slice(&means)
        .index_select(0, &lab.view([-1]))
        .view([x as i64, y as i64, z as i64]);
    // Smooth multiplicative bias field.
    let mut rng = Rng::new(seed);
    let ph: Vec<f64> = (0..3).map(|_| rng.uniform() * std::f64::consts::TAU).collect();
    let ax = |n: usize, f: f64, p: f64| {
        Tensor::linspace(0.0, f * std::f64::consts::TAU, n as i64, (Kind::Float, Device::Cpu)) + p
    };
    let bias = (ax(x, 0.7, ph[0]).sin().view([-1, 1, 1])
        * ax(y, 0.5, ph[1]).cos().view([1, -1, 1])
        + ax(z, 0.4, ph[2]).sin().view([1, 1, -1]))
        * 0.1
        + 1.0;
    let img = img * bias;
    // Gaussian blur σ = 1 (separable, kernel 5).
    let k: Vec<f32> = (-2..=2).map(|i: i32| (-(i * i) as f32 / 2.0).exp()).collect();
    let ks: f32 = k.iter().sum();
    let k = Tensor::from_slice(&k.iter().map(|v| v / ks).collect::<Vec<_>>());
    let mut h = img.view([1, 1, x as i64, y as i64, z as i64]);
    for axis in 0..3 {
        let mut shape = [1i64, 1, 1, 1, 1];
        shape[2 + axis] = 5;
        let mut pad = [0i64; 3];
        pad[axis] = 2;
        h = h.f_conv3d(&k.view(shape), None::<Tensor>, [1, 1, 1], pad, [1, 1, 1], 1)?;
    }
    tch::manual_seed(seed as i64);
    let noise =
        Tensor::randn([1, 1, x as i64, y as i64, z as i64], (Kind::Float, Device::Cpu)) * 0.15;
    Ok((h + noise).view([1, x as i64, y as i64, z as i64]))
}

/// Per-class intensity thresholds maximising the mean foreground Dice on `image`/`labels`
/// (flattened, every 7th voxel), by coordinate ascent over 48 quantiles. Returns `classes − 1`
/// increasing cut points.
pub fn fit_thresholds(image: &Tensor, labels: &Tensor, classes: usize) -> Vec<f64> {
    let x = image.reshape([-1]).slice(0, 0, None, 7);
    let y = labels.reshape([-1]).slice(0, 0, None, 7);
    let qs = Tensor::linspace(0.01, 0.99, 48, (Kind::Float, Device::Cpu));
    let cand = Vec::<f32>::try_from(x.quantile(&qs, None, false, "linear")).unwrap_or_default();
    let score = |t: &[f64]| -> f64 {
        let pred = classify(&x, t);
        mean_fg_dice(&pred, &y, classes)
    };
    let mut t: Vec<f64> =
        (1..classes).map(|c| cand[(c * cand.len() / classes).min(cand.len() - 1)] as f64).collect();
    for _ in 0..3 {
        for i in 0..t.len() {
            let lo = if i == 0 { f64::MIN } else { t[i - 1] };
            let hi = if i + 1 == t.len() { f64::MAX } else { t[i + 1] };
            let mut best = (score(&t), t[i]);
            for &c in &cand {
                let c = c as f64;
                if c > lo && c < hi {
                    let mut u = t.clone();
                    u[i] = c;
                    let s = score(&u);
                    if s > best.0 {
                        best = (s, c);
                    }
                }
            }
            t[i] = best.1;
        }
    }
    t
}

/// Class ids of intensities by the increasing cut points `t`.
pub fn classify(x: &Tensor, t: &[f64]) -> Tensor {
    let mut out = Tensor::zeros_like(x).to_kind(Kind::Int64);
    for &c in t {
        out += x.gt(c).to_kind(Kind::Int64);
    }
    out
}

fn mean_fg_dice(pred: &Tensor, truth: &Tensor, classes: usize) -> f64 {
    let mut s = 0.0;
    for c in 1..classes as i64 {
        let (p, t) = (pred.eq(c), truth.eq(c));
        let inter = p.logical_and(&t).sum(Kind::Float).double_value(&[]);
        let denom = p.sum(Kind::Float).double_value(&[]) + t.sum(Kind::Float).double_value(&[]);
        s += if denom == 0.0 { 1.0 } else { 2.0 * inter / denom };
    }
    s / (classes - 1).max(1) as f64
}

/// Scores of one segmentation of the held-out slab.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// Dice per foreground class.
    pub dice: Vec<f64>,
    /// Mean foreground Dice.
    pub mean_dice: f64,
    /// Hausdorff-95 per foreground class, mm.
    pub hd95: Vec<f64>,
}

/// Scores `pred` against `truth` (`[X, Y, Z]` class ids of the held-out slab).
pub fn score(pred: &Tensor, truth: &Tensor, classes: usize, spacing: [f64; 3]) -> Result<Scores> {
    let (pv, tv) = (tensor_labels(pred, spacing)?, tensor_labels(truth, spacing)?);
    let mut d = Vec::new();
    let mut h = Vec::new();
    for c in 1..classes as u8 {
        let (a, b) = (pv.to_binary(c), tv.to_binary(c));
        d.push(dice(&a, &b)?);
        h.push(hausdorff95(&a, &b, spacing)?);
    }
    let mean_dice = d.iter().sum::<f64>() / d.len().max(1) as f64;
    Ok(Scores { dice: d, mean_dice, hd95: h })
}

/// Parameters, multiply–accumulates per window and measured forward seconds per window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cost {
    /// Network.
    pub name: String,
    /// Parameters at full size (Çiçek's 3 in / 3 out, base 32).
    pub full_params: i64,
    /// MACs of the full-size network on a 132×132×116 input (the paper's tile).
    pub full_gmacs: f64,
    /// Parameters as trained.
    pub params: i64,
    /// MACs as trained, on one window.
    pub gmacs: f64,
    /// Forward seconds on one window (median of 5, CPU).
    pub forward_s: f64,
}

fn cost(arch: Arch, opts: &RunOptions, classes: i64) -> Result<Cost> {
    let full = UNet3dConfig { conv: arch.conv(), ..UNet3dConfig::cicek2016() };
    let trained = trained_config(arch, opts, classes);
    let count = |c: &UNet3dConfig| -> Result<(i64, UNet3d, nn::VarStore)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = UNet3d::new(&vs.root(), c)?;
        Ok((parameter_count(&vs), net, vs))
    };
    let (full_params, _, _) = count(&full)?;
    let (params, net, _vs) = count(&trained)?;
    let w = opts.crop as i64;
    let x = Tensor::randn([1, 1, w, w, w], (Kind::Float, Device::Cpu));
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let _scores = tch::no_grad(|| net.forward_t(&x, false))?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(Cost {
        name: arch.name().into(),
        full_params,
        // 132×132×116 is divisible by 4 but not 8; the count only needs the voxel number.
        full_gmacs: full.macs(132 * 132 * 116) as f64 / 1e9,
        params,
        gmacs: trained.macs(w * w * w) as f64 / 1e9,
        forward_s: times[2],
    })
}

/// The trained configuration of `arch`.
pub fn trained_config(arch: Arch, opts: &RunOptions, classes: i64) -> UNet3dConfig {
    UNet3dConfig {
        in_channels: 1,
        out_channels: classes,
        base: opts.base,
        conv: arch.conv(),
        ..UNet3dConfig::cicek2016()
    }
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// The network trained.
    pub arch: Arch,
    /// Task size `[X, Y, Z]`.
    pub dims: [usize; 3],
    /// The axis cut into training and held-out parts (0 = x, 1 = y, 2 = z).
    pub axis: usize,
    /// First held-out index along `axis`.
    pub cut: usize,
    /// Voxels of each class in the held-out part.
    pub test_counts: Vec<i64>,
    /// The network on the held-out slab.
    pub model: Scores,
    /// The threshold baseline on the held-out slab.
    pub threshold: Scores,
    /// Cut points of the baseline.
    pub cuts: Vec<f64>,
    /// Costs of both architectures.
    pub costs: Vec<Cost>,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
    /// Sliding-window inference seconds.
    pub infer_seconds: f64,
    /// Where the labels came from.
    pub source: String,
}

/// Trains the network, segments the held-out slab, scores it and the baseline, writes the
/// report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out).map_err(|e| Error3d::io(&opts.out, e))?;
    if opts.crop % 8 != 0 || opts.crop == 0 {
        return Err(Error3d::invalid(format!(
            "crop {} must be a positive multiple of 8",
            opts.crop
        )));
    }
    let task = prepare(opts.data_cache.as_deref(), opts.seed)?;
    let [x, y, z] = task.labels.dims;
    let c = opts.crop;
    let (ax, cut) = (task.axis, task.cut);
    let mut lim = [x, y, z];
    lim[ax] = cut;
    if lim.iter().any(|&n| n < c) {
        return Err(Error3d::invalid(format!(
            "the training part {lim:?} of the volume {:?} is smaller than the crop {c}",
            task.labels.dims
        )));
    }
    let len = task.labels.dims[ax] as i64;
    let k = task.classes as i64;
    let labels_t = volume_tensor(&task.labels.to_f32()).to_kind(Kind::Int64);
    let img = task.image.get(0);
    tracing::info!(dims = ?task.labels.dims, axis = ax, cut, "liver task prepared");

    // Voxels of each foreground class in the training part: half the crops are centred on a
    // voxel of a class drawn uniformly, so small structures are seen as often as large ones.
    let train_lab = labels_t.narrow(ax as i64, 0, cut as i64);
    let by_class: Vec<Tensor> = (1..k)
        .map(|cl| train_lab.eq(cl).nonzero()) // [M, 3]
        .filter(|t| t.size()[0] > 0)
        .collect();
    let cfg = trained_config(opts.arch, opts, k);
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let net = UNet3d::new(&vs.root(), &cfg)?;
    let model_dir = opts.out.join("model");
    let mut trainer = Trainer::new(
        &vs,
        TrainerConfig {
            lr: 3e-3,
            total_steps: opts.steps,
            warmup_steps: opts.steps / 20,
            min_lr_ratio: 0.05,
            grad_clip: Some(5.0),
            checkpoint_every: 250,
            seed: opts.seed,
            out_dir: model_dir,
            progress: opts.progress,
            ..TrainerConfig::default()
        },
    )?;
    trainer.resume(&mut vs)?;
    let t0 = Instant::now();
    trainer.run(&mut vs, |step| {
        let mut rng = Rng::new(opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9));
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for b in 0..opts.batch_size {
            let mut o = [0i64; 3];
            let lim = [lim[0] - c, lim[1] - c, lim[2] - c];
            let centre = (b % 2 == 0 && !by_class.is_empty()).then(|| {
                let pick = |n: usize, r: f64| ((r * n as f64) as usize).min(n - 1);
                let voxels = &by_class[pick(by_class.len(), rng.uniform())];
                let i = pick(voxels.size()[0] as usize, rng.uniform()) as i64;
                [0, 1, 2].map(|a| voxels.int64_value(&[i, a]))
            });
            for a in 0..3 {
                let v = match centre {
                    Some(p) => p[a] - c as i64 / 2,
                    None => (rng.uniform() * (lim[a] + 1) as f64) as i64,
                };
                o[a] = v.clamp(0, lim[a] as i64);
            }
            let cut = |t: &Tensor| {
                t.narrow(0, o[0], c as i64).narrow(1, o[1], c as i64).narrow(2, o[2], c as i64)
            };
            let (mut xi, mut yi) = (cut(&img), cut(&labels_t));
            for axis in 0..2 {
                if rng.uniform() < 0.5 {
                    xi = xi.flip([axis]);
                    yi = yi.flip([axis]);
                }
            }
            xs.push(xi.unsqueeze(0));
            ys.push(yi);
        }
        let xb = Tensor::stack(&xs, 0).to_device(opts.device);
        let yb = Tensor::stack(&ys, 0).to_device(opts.device);
        let logits = net.forward_t(&xb, true)?;
        let ce = logits.cross_entropy_loss::<Tensor>(&yb, None, tch::Reduction::Mean, -100, 0.0);
        // Soft Dice over the foreground classes.
        let p = logits.softmax(1, Kind::Float);
        let onehot = yb.one_hot(k).permute([0, 4, 1, 2, 3]).to_kind(Kind::Float);
        let dims: &[i64] = &[0, 2, 3, 4];
        let inter = (&p * &onehot).sum_dim_intlist(dims, false, Kind::Float);
        let denom = p.sum_dim_intlist(dims, false, Kind::Float)
            + onehot.sum_dim_intlist(dims, false, Kind::Float);
        let soft = (inter * 2.0 + 1.0) / (denom + 1.0);
        let dice_loss = soft.narrow(0, 1, k - 1).mean(Kind::Float).neg() + 1.0;
        Ok(ce + dice_loss)
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();

    // Held-out slab with half a window of context above it.
    let ctx = (cut.saturating_sub(c / 2)) as i64;
    let region = img.narrow(ax as i64, ctx, len - ctx).unsqueeze(0);
    let sw = SlidingWindow { roi: [c, c, c], overlap: 0.25, blend: Blend::gaussian(), batch: 2 };
    let t1 = Instant::now();
    let probs = sw.infer(&region, task.classes, |p| {
        let out = tch::no_grad(|| net.forward_t(&p.to_device(opts.device), false))?;
        Ok(out.softmax(1, Kind::Float).to_device(Device::Cpu))
    })?;
    let infer_seconds = t1.elapsed().as_secs_f64();
    let off = cut as i64 - ctx;
    let held = len - cut as i64;
    let pred = probs.argmax(0, false).narrow(ax as i64, off, held);
    let truth = labels_t.narrow(ax as i64, cut as i64, held);
    let test_counts: Vec<i64> =
        (0..k).map(|cl| truth.eq(cl).sum(Kind::Int64).int64_value(&[])).collect();
    let model = score(&pred, &truth, task.classes, task.spacing)?;
    tracing::info!(seconds = infer_seconds, "sliding-window inference");
    let t2 = Instant::now();
    let cuts = fit_thresholds(&img.narrow(ax as i64, 0, cut as i64), &train_lab, task.classes);
    let test_img = img.narrow(ax as i64, cut as i64, held);
    let base_pred = classify(&test_img, &cuts);
    let threshold = score(&base_pred, &truth, task.classes, task.spacing)?;
    tracing::info!(seconds = t2.elapsed().as_secs_f64(), "scores and threshold baseline");
    let costs = vec![cost(Arch::UNet3d, opts, k)?, cost(Arch::S3d, opts, k)?];
    write_slices(&opts.out.join("slices.png"), &test_img, &truth, &pred, &base_pred, task.classes)?;

    let result = RunResult {
        arch: opts.arch,
        dims: task.labels.dims,
        axis: ax,
        cut,
        test_counts,
        model,
        threshold,
        cuts,
        costs,
        losses: trainer.losses().to_vec(),
        train_seconds,
        infer_seconds,
        source: task.source.clone(),
    };
    write_report(opts, &result)?;
    Ok(result)
}

const PALETTE: [[u8; 3]; 6] =
    [[0, 0, 0], [230, 80, 60], [70, 170, 90], [60, 120, 230], [220, 190, 40], [160, 80, 200]];

/// The middle z-slice of the held-out slab: image, truth, network, threshold baseline.
fn write_slices(
    path: &std::path::Path,
    img: &Tensor,
    truth: &Tensor,
    pred: &Tensor,
    base: &Tensor,
    classes: usize,
) -> Result<()> {
    let zc = img.size()[2] / 2;
    let (w, h) = (img.size()[0] as u32, img.size()[1] as u32);
    let mut out = image::RgbImage::new(4 * w + 6, h);
    let im = Vec::<f32>::try_from(img.select(2, zc).contiguous().view([-1]))?;
    let panels = [truth, pred, base]
        .iter()
        .map(|t| Vec::<i64>::try_from(t.select(2, zc).contiguous().view([-1])))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for xx in 0..w {
        for yy in 0..h {
            let i = (xx * h + yy) as usize;
            let g = (im[i].clamp(0.0, 1.0) * 255.0) as u8;
            out.put_pixel(xx, yy, image::Rgb([g, g, g]));
            for (p, lab) in panels.iter().enumerate() {
                let c = (lab[i].max(0) as usize).min(classes - 1).min(PALETTE.len() - 1);
                out.put_pixel((p as u32 + 1) * (w + 2) + xx, yy, image::Rgb(PALETTE[c]));
            }
        }
    }
    let mut png = std::io::Cursor::new(Vec::new());
    out.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error3d::format(path, format!("cannot encode PNG: {e}")))?;
    Ok(unet_core::checkpoint::write_atomic(path, &png.into_inner())?)
}

fn write_report(opts: &RunOptions, r: &RunResult) -> Result<()> {
    plot_lines(
        &opts.out.join("loss.png"),
        &format!("{}: cross-entropy + soft Dice", opts.arch.name()),
        "step",
        "loss",
        &[
            Series::new("loss", r.losses.clone()).faint(),
            Series::new("EMA 0.05", smooth(&r.losses, 0.05)),
        ],
        true,
    )?;
    let names = ["label 85", "label 127", "label 255"];
    let row = |who: &str, s: &Scores| {
        let mut v = vec![who.to_string(), format!("{:.3}", s.mean_dice)];
        for (i, d) in s.dice.iter().enumerate() {
            let h = s.hd95.get(i).copied().unwrap_or(f64::NAN);
            let h = if h.is_finite() { format!("{h:.1}") } else { "∞ (class missed)".into() };
            v.push(format!("{d:.3} / {h}"));
        }
        v
    };
    let mut header = vec!["segmentation", "mean Dice ↑"];
    for n in names.iter().take(r.model.dice.len()) {
        header.push(n);
    }
    let table = markdown_table(
        &header.iter().map(|s| &**s).collect::<Vec<_>>(),
        &[
            row(opts.arch.name(), &r.model),
            row("threshold baseline (fit on the training slab)", &r.threshold),
        ],
    );
    let costs = markdown_table(
        &[
            "network",
            "params (full size)",
            "GMACs (full, 132×132×116)",
            "params (trained)",
            "GMACs (trained, one window)",
            "forward s / window",
        ],
        &r.costs
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    thousands(c.full_params),
                    format!("{:.1}", c.full_gmacs),
                    thousands(c.params),
                    format!("{:.3}", c.gmacs),
                    format!("{:.3}", c.forward_s),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let (f, s) = (&r.costs[0], &r.costs[1]);
    let text = format!(
        r#"# {name}: {title}

Reproduced with `cargo xtask reproduce {name}`.

## Architectures and cost

{costs}
S3D-UNet needs {pr:.1}× fewer parameters and {mr:.1}× fewer multiply–accumulates than the 3D
U-Net at full size (Çiçek 2016: 19,069,955 parameters, asserted by a test).

## Task

CGAL's liver label volume ({src}), 2× down-sampled in x/y and cropped to the foreground:
{dims:?} voxels, classes 0 (background) and labels 85, 127, 255. The image is synthesised
from the labels (class means evenly spaced in [0.15, 0.85], ±20 % bias field, blur σ = 1,
noise σ = 0.15) because the data set holds labels only. The volume is cut along {axn} where
every class is split most evenly between the parts (`split_axis`: 15–50 % of an axis held out
at either end; a low-end part is mirrored to the high end):
{axn} < {cut} trains (random {crop}³ crops, half centred on a voxel of a uniformly drawn foreground class, x/y flips;
cross-entropy + soft Dice; {steps} steps of batch {batch}); {axn} ≥ {cut} is held out
(voxels per class: {counts:?}) and segmented by sliding-window inference ({crop}³ windows,
overlap 0.25, Gaussian blending) with half a window of context.

## Results (held-out slab)

Dice / Hausdorff-95 (mm) per class:

{table}
Threshold cut points (fit on the training slab): {cuts:?}.

![loss](loss.png)

Middle z-slice of the held-out part: image, truth, {name}, threshold baseline:

![slices](slices.png)

Training {train:.0} s, sliding-window inference {inf:.1} s.
"#,
        name = opts.arch.name(),
        title = match opts.arch {
            Arch::UNet3d => "Çiçek et al. 2016, 3D U-Net",
            Arch::S3d => "Chen et al. 2018, S3D-UNet (separable 3D convolutions)",
        },
        pr = f.full_params as f64 / s.full_params as f64,
        mr = f.full_gmacs / s.full_gmacs,
        src = r.source,
        dims = r.dims,
        axn = ["x", "y", "z"][r.axis.min(2)],
        cut = r.cut,
        counts = r.test_counts,
        crop = opts.crop,
        steps = opts.steps,
        batch = opts.batch_size,
        cuts = r.cuts.iter().map(|c| (c * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        train = r.train_seconds,
        inf = r.infer_seconds,
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
