//! `hourglass-unet`: 2D keypoint heatmap regression with the HourGlass/U-Net hybrid and
//! soft-gated skip connections of Bulat et al. 2020 ([`unet_core::arch::HourglassUNet`]).
//!
//! Task: images of the DeepMimic humanoid rendered from the motion clips at random camera
//! views (limbs as coloured capsules, left orange, right blue, midline grey, drawn far to
//! near, the figure centred and scaled to the crop as a person detector's box would be);
//! targets are Gaussian heatmaps (σ = 1 heatmap pixel) of the 18 joints at ¼ resolution.
//! Training uses the first 80 % of every clip's frames and camera yaws outside a held-out
//! 45° sector; the test sets use the last 20 % of the frames, from training-range views and
//! from the held-out sector. Metrics: PCK@0.2 of the torso diameter (LSP's protocol) and
//! PCK@0.1 of the box size, 2D MPJPE and PA-MPJPE in pixels; baseline: the mean training
//! pose in crop coordinates.
//!
//! Run: `cargo xtask reproduce hourglass-unet`.

use std::path::PathBuf;
use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{HourglassConfig, HourglassUNet};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig};

use unet_core::rng::Rng;

use crate::data::MotionSet;
use crate::metrics::{mpjpe, pa_mpjpe, pck};
use crate::render::{keypoint_image, Camera};
use crate::skeleton::{Pose, Skeleton};
use crate::{PoseError, Result};

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// The `motions` cache folder (the embedded sample when absent or incomplete).
    pub data_cache: Option<PathBuf>,
    /// Optimiser steps.
    pub steps: usize,
    /// Batch size.
    pub batch_size: i64,
    /// Block width of the trained model.
    pub base: i64,
    /// Stacks of the trained model.
    pub stacks: usize,
    /// Down-samplings per hourglass.
    pub depth: usize,
    /// Input image size (heatmaps are a quarter of it).
    pub size: i64,
    /// Test images per test set.
    pub test_images: usize,
    /// Also train the same network with plain identities and additive HourGlass skips.
    pub ablation: bool,
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
            out: PathBuf::from("target/reproduce/hourglass-unet"),
            data_cache: crate::data::cache_dir(),
            steps: 1500,
            batch_size: 16,
            base: 64,
            stacks: 2,
            depth: 3,
            size: 96,
            test_images: 400,
            ablation: true,
            device: Device::Cpu,
            seed: 2020,
            progress: true,
        }
    }
}

/// Yaw range (degrees) never seen in training.
pub const HELD_OUT_YAW: (f64, f64) = (120.0, 165.0);

/// Poses split by time within each clip.
pub struct PosePool {
    /// Training poses (first 80 % of every clip).
    pub train: Vec<Pose>,
    /// Test poses (last 20 %).
    pub test: Vec<Pose>,
}

impl PosePool {
    /// Every clip at `fps`, split 80/20 in time.
    pub fn new(set: &MotionSet, fps: f64) -> Result<Self> {
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for clip in &set.clips {
            let poses = clip.resample(fps, 0)?;
            let cut = poses.len() * 4 / 5;
            for (i, p) in poses.into_iter().enumerate() {
                if i < cut {
                    train.push(p);
                } else {
                    test.push(p);
                }
            }
        }
        Ok(PosePool { train, test })
    }
}

/// Which views a sample may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    /// Yaw anywhere outside [`HELD_OUT_YAW`].
    Train,
    /// Yaw inside [`HELD_OUT_YAW`].
    HeldOut,
}

/// One rendered sample: the image `[3, S, S]` in [0, 1] and the 2D joints in pixels.
pub struct Sample {
    /// Image, channel-major.
    pub image: Vec<f32>,
    /// Joint positions, pixels (x right, y down).
    pub joints: Vec<[f64; 2]>,
}

/// Renders `pose` from a random camera of `views`.
pub fn render_sample(
    skel: &Skeleton,
    pose: &Pose,
    views: Views,
    size: u32,
    rng: &mut Rng,
) -> Result<Sample> {
    let pts = skel.forward(pose)?;
    let yaw = match views {
        Views::Train => {
            let width = 360.0 - (HELD_OUT_YAW.1 - HELD_OUT_YAW.0);
            let y = rng.range_f64(0.0, width);
            if y < HELD_OUT_YAW.0 {
                y
            } else {
                y + (HELD_OUT_YAW.1 - HELD_OUT_YAW.0)
            }
        }
        Views::HeldOut => rng.range_f64(HELD_OUT_YAW.0, HELD_OUT_YAW.1),
    };
    let pitch = rng.range_f64(-5.0, 30.0);
    let target = pts[0];
    let cam = Camera {
        yaw: yaw.to_radians(),
        pitch: pitch.to_radians(),
        distance: rng.range_f64(3.5, 6.0),
        focal: 1.6,
        target,
    };
    let proj: Vec<([f64; 2], f64)> = pts.iter().map(|p| cam.project(*p)).collect();
    // Crop: the box of the projected joints, centred, longest side 80 % of the image.
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for (q, _) in &proj {
        for a in 0..2 {
            lo[a] = lo[a].min(q[a]);
            hi[a] = hi[a].max(q[a]);
        }
    }
    let side = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-6);
    let s = 0.8 * size as f64 / side;
    let c = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let joints: Vec<[f64; 2]> = proj
        .iter()
        .map(|(q, _)| {
            [(q[0] - c[0]) * s + size as f64 / 2.0, (q[1] - c[1]) * s + size as f64 / 2.0]
        })
        .collect();
    let bones = skel.bones();
    let mut order: Vec<usize> = (0..bones.len()).collect();
    let depth = |b: usize| proj[bones[b].0].1 + proj[bones[b].1].1;
    order.sort_by(|&a, &b| depth(b).total_cmp(&depth(a)));
    let radii: Vec<f64> = bones
        .iter()
        .map(|&(p, ch)| {
            let torso = matches!(skel.joints[ch].name, "chest" | "neck" | "right_hip" | "left_hip")
                || matches!(skel.joints[p].name, "chest")
                    && skel.joints[ch].name.ends_with("shoulder");
            if torso {
                0.035
            } else {
                0.022
            }
        })
        .map(|r| r * size as f64)
        .collect();
    let image = keypoint_image(&joints, &bones, &skel.bone_colours(), &radii, &order, size)?;
    Ok(Sample { image, joints })
}

/// A batch: images `[B, 3, S, S]` in [-1, 1], heatmaps `[B, J, S/4, S/4]`, joints `[B, J, 2]`.
pub fn batch(
    skel: &Skeleton,
    poses: &[Pose],
    views: Views,
    n: usize,
    size: i64,
    rng: &mut Rng,
) -> Result<(Tensor, Tensor, Tensor)> {
    let mut imgs = Vec::with_capacity(n * 3 * (size * size) as usize);
    let mut joints = Vec::with_capacity(n * skel.len() * 2);
    for _ in 0..n {
        let k = ((rng.uniform() * poses.len() as f64) as usize).min(poses.len() - 1);
        let s = render_sample(skel, &poses[k], views, size as u32, rng)?;
        imgs.extend(s.image.iter().map(|v| v * 2.0 - 1.0));
        joints.extend(s.joints.iter().flat_map(|j| [j[0] as f32, j[1] as f32]));
    }
    let j = skel.len() as i64;
    let x = Tensor::from_slice(&imgs).view([n as i64, 3, size, size]);
    let kp = Tensor::from_slice(&joints).view([n as i64, j, 2]);
    Ok((x, heatmaps(&kp, size / 4, 1.0), kp))
}

/// Gaussian heatmaps `[B, J, h, h]` of keypoints `[B, J, 2]` (input pixels, stride 4).
pub fn heatmaps(kp: &Tensor, h: i64, sigma: f64) -> Tensor {
    let grid = Tensor::arange(h, (Kind::Float, kp.device())) + 0.5;
    let c = kp / 4.0; // heatmap pixel coordinates
    let dx = grid.view([1, 1, 1, h]) - c.select(2, 0).unsqueeze(-1).unsqueeze(-1);
    let dy = grid.view([1, 1, h, 1]) - c.select(2, 1).unsqueeze(-1).unsqueeze(-1);
    ((dx.square() + dy.square()) / (-2.0 * sigma * sigma)).exp()
}

/// Keypoints `[B, J, 2]` in input pixels from heatmaps: the arg-max moved a quarter pixel
/// towards the higher neighbour (the standard hourglass decoding).
pub fn decode(heat: &Tensor) -> Tensor {
    let (b, j, h, w) = heat.size4().unwrap_or((0, 0, 0, 0));
    let flat = heat.view([b, j, h * w]);
    let idx = flat.argmax(-1, false);
    let y = idx.divide_scalar_mode(w, "floor");
    let x = idx.remainder(w);
    let at = |yy: &Tensor, xx: &Tensor| {
        let yy = yy.clamp(0, h - 1);
        let xx = xx.clamp(0, w - 1);
        flat.gather(-1, &(yy * w + xx).unsqueeze(-1), false).squeeze_dim(-1)
    };
    let dx = (at(&y, &(&x + 1)) - at(&y, &(&x - 1))).sign() * 0.25;
    let dy = (at(&(&y + 1), &x) - at(&(&y - 1), &x)).sign() * 0.25;
    let px = (x.to_kind(Kind::Float) + 0.5 + dx) * 4.0;
    let py = (y.to_kind(Kind::Float) + 0.5 + dy) * 4.0;
    Tensor::stack(&[px, py], -1)
}

/// Scores of one predictor on one test set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    /// PCK@0.2 of the torso diameter.
    pub pck_torso: f64,
    /// PCK@0.1 of the longest side of the joints' box.
    pub pck_box: f64,
    /// 2D MPJPE, pixels.
    pub mpjpe: f64,
    /// 2D PA-MPJPE, pixels.
    pub pa_mpjpe: f64,
}

/// Scores `pred` against `gt` (`[N, J, 2]`, pixels).
pub fn score(skel: &Skeleton, pred: &Tensor, gt: &Tensor) -> Result<Scores> {
    let (ls, rh) = (
        skel.index("left_shoulder").unwrap_or(0) as i64,
        skel.index("right_hip").unwrap_or(0) as i64,
    );
    let torso = (gt.select(1, ls) - gt.select(1, rh)).square().sum_dim_intlist(
        [-1i64].as_slice(),
        false,
        Kind::Float,
    );
    let torso = torso.sqrt();
    let extent = (gt.amax([1i64].as_slice(), false) - gt.amin([1i64].as_slice(), false))
        .amax([-1i64].as_slice(), false);
    Ok(Scores {
        pck_torso: pck(pred, gt, &(torso * 0.2))?,
        pck_box: pck(pred, gt, &(extent * 0.1))?,
        mpjpe: mpjpe(pred, gt)?,
        pa_mpjpe: pa_mpjpe(pred, gt)?,
    })
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Parameters of the full-size model.
    pub full_params: i64,
    /// Parameters of the trained model.
    pub params: i64,
    /// Parameters of the same trained design without gates and with additive skips.
    pub plain_params: i64,
    /// Poses in the training and test pools.
    pub poses: (usize, usize),
    /// (test set, predictor, scores).
    pub rows: Vec<(String, String, Scores)>,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// `(step, loss)` of the plain ablation (empty without it).
    pub plain_losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
    /// Training seconds of the ablation.
    pub plain_train_seconds: f64,
    /// Where the clips came from.
    pub source: String,
}

/// The trained configuration.
pub fn trained_config(opts: &RunOptions, joints: i64) -> HourglassConfig {
    HourglassConfig {
        channels: opts.base,
        stacks: opts.stacks,
        depth: opts.depth,
        joints,
        ..HourglassConfig::bulat2020()
    }
}

type Trained = (HourglassUNet, nn::VarStore, i64, Vec<(f64, f64)>, f64);

/// Trains `cfg` on freshly rendered batches; checkpoints and the log go to `out/<name>/`.
fn train(
    opts: &RunOptions,
    cfg: &HourglassConfig,
    skel: &Skeleton,
    pool: &PosePool,
    name: &str,
) -> Result<Trained> {
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let model = HourglassUNet::new(&vs.root(), cfg)?;
    let params = parameter_count(&vs);
    let model_dir = opts.out.join(name);
    let mut trainer = Trainer::new(
        &vs,
        TrainerConfig {
            lr: 2e-3,
            total_steps: opts.steps,
            warmup_steps: opts.steps / 20,
            min_lr_ratio: 0.05,
            grad_clip: Some(5.0),
            checkpoint_every: 500,
            seed: opts.seed,
            out_dir: model_dir,
            progress: opts.progress,
            ..TrainerConfig::default()
        },
    )?;
    trainer.resume(&mut vs)?;
    let t0 = Instant::now();
    trainer.run(&mut vs, |step| {
        let mut rng = Rng::new(opts.seed ^ (step as u64).wrapping_mul(0x5851_F42D_4C95_7F2D));
        let (x, target, _) =
            batch(skel, &pool.train, Views::Train, opts.batch_size as usize, opts.size, &mut rng)
                .map_err(|e| unet_core::Error::config("training batch", step, e.to_string()))?;
        let (x, target) = (x.to_device(opts.device), target.to_device(opts.device));
        let outs = model.forward_t(&x, true)?;
        // Intermediate supervision: the MSE of every stack, summed; scaled so that the
        // Gaussian peaks (1.0) dominate the empty background.
        let terms: Vec<Tensor> =
            outs.iter().map(|o| (o - &target).square().mean(Kind::Float) * 1000.0).collect();
        Ok(Tensor::stack(&terms, 0).sum(Kind::Float))
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let losses = trainer.losses().to_vec();
    Ok((model, vs, params, losses, secs))
}

/// Keypoints of images `x` from the last stack's heatmaps, in batches of 50.
fn predict(model: &HourglassUNet, x: &Tensor, device: Device) -> Result<Tensor> {
    tch::no_grad(|| -> Result<Tensor> {
        let mut parts = Vec::new();
        for i in (0..x.size()[0]).step_by(50) {
            let xb = x.narrow(0, i, (x.size()[0] - i).min(50)).to_device(device);
            let outs = model.forward_t(&xb, false)?;
            parts.push(decode(&outs[outs.len() - 1].to_device(Device::Cpu)));
        }
        Ok(Tensor::cat(&parts, 0))
    })
}

/// Trains the model, scores it and the mean-pose baseline on both test sets, writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out).map_err(|e| PoseError::io(&opts.out, e))?;
    let set = MotionSet::load(opts.data_cache.as_deref())?;
    let skel = Skeleton::deepmimic_humanoid();
    let pool = PosePool::new(&set, 15.0)?;
    let j = skel.len() as i64;
    let cfg = trained_config(opts, j);
    let m = cfg.size_multiple();
    if opts.size % m != 0 {
        return Err(PoseError::Invalid(format!(
            "image size {} must be a multiple of {m}",
            opts.size
        )));
    }
    let count = |c: &HourglassConfig| -> Result<i64> {
        let vs = nn::VarStore::new(Device::Cpu);
        HourglassUNet::new(&vs.root(), c)?;
        Ok(parameter_count(&vs))
    };
    let full_params = count(&HourglassConfig::bulat2020())?;
    let plain_params = count(&HourglassConfig { gated: false, hybrid: false, ..cfg.clone() })?;

    let plain_cfg = HourglassConfig { gated: false, hybrid: false, ..cfg.clone() };
    let (model, _vs, params, losses, train_seconds) = train(opts, &cfg, &skel, &pool, "model")?;
    let ablation =
        if opts.ablation { Some(train(opts, &plain_cfg, &skel, &pool, "plain")?) } else { None };

    // The mean training pose in crop coordinates.
    let mut rng = Rng::new(opts.seed + 99);
    let (_, _, kp_train) = batch(&skel, &pool.train, Views::Train, 1000, opts.size, &mut rng)?;
    let mean_pose = kp_train.mean_dim([0i64].as_slice(), true, Kind::Float);

    let mut rows = Vec::new();
    let mut preview = None;
    for (name, views, seed) in [
        ("held-out frames, training views", Views::Train, 1u64),
        ("held-out frames, held-out views", Views::HeldOut, 2u64),
    ] {
        let mut rng = Rng::new(opts.seed * 31 + seed);
        let (x, _, gt) = batch(&skel, &pool.test, views, opts.test_images, opts.size, &mut rng)?;
        let pred = predict(&model, &x, opts.device)?;
        let baseline = mean_pose.expand_as(&gt);
        rows.push((name.to_string(), "hourglass-unet".to_string(), score(&skel, &pred, &gt)?));
        if let Some((plain, ..)) = &ablation {
            let p = predict(plain, &x, opts.device)?;
            rows.push((
                name.to_string(),
                "plain HourGlass skips (no gates, added)".to_string(),
                score(&skel, &p, &gt)?,
            ));
        }
        rows.push((name.to_string(), "mean pose".to_string(), score(&skel, &baseline, &gt)?));
        if views == Views::HeldOut {
            let k = x.size()[0].min(16);
            preview = Some((x.narrow(0, 0, k), pred.narrow(0, 0, k), gt.narrow(0, 0, k)));
        }
    }
    if let Some((x, pred, gt)) = preview {
        crate::models::artefacts::write_keypoint_grid(
            &opts.out.join("predictions.png"),
            &skel,
            &x,
            &pred,
            &gt,
        )?;
    }
    let result = RunResult {
        full_params,
        params,
        plain_params,
        poses: (pool.train.len(), pool.test.len()),
        rows,
        losses,
        plain_losses: ablation.as_ref().map(|a| a.3.clone()).unwrap_or_default(),
        train_seconds,
        plain_train_seconds: ablation.as_ref().map(|a| a.4).unwrap_or(0.0),
        source: set.source.clone(),
    };
    write_report(opts, &cfg, &result)?;
    Ok(result)
}

fn write_report(opts: &RunOptions, cfg: &HourglassConfig, r: &RunResult) -> Result<()> {
    plot_lines(
        &opts.out.join("loss.png"),
        "hourglass-unet: heatmap MSE (×1000, summed over stacks)",
        "step",
        "loss",
        &[
            Series::new("gated hybrid", r.losses.clone()).faint(),
            Series::new("gated hybrid, EMA 0.05", smooth(&r.losses, 0.05)),
            Series::new("plain HourGlass", r.plain_losses.clone()).faint(),
            Series::new("plain HourGlass, EMA 0.05", smooth(&r.plain_losses, 0.05)),
        ]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect::<Vec<_>>(),
        true,
    )?;
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|(set, who, s)| {
            vec![
                set.clone(),
                who.clone(),
                format!("{:.3}", s.pck_torso),
                format!("{:.3}", s.pck_box),
                format!("{:.2}", s.mpjpe),
                format!("{:.2}", s.pa_mpjpe),
            ]
        })
        .collect();
    let text = format!(
        r#"# hourglass-unet: Bulat et al. 2020, HourGlass/U-Net hybrid with soft-gated skips

*Toward fast and accurate human pose estimation via soft-gated skip connections*, FG 2020
(arXiv:2002.11098). Reproduced with `cargo xtask reproduce hourglass-unet`.

## Architecture

| preset | parameters | notes |
|---|---|---|
| full size (`HourglassConfig::bulat2020()`) | {full} | 4 stacks, width 128, 4 down-samplings, gated blocks, hybrid (concatenating) skips, 16 joints |
| trained here | {params} | {stacks} stacks, width {ch}, {depth} down-samplings, 18 joints, {size}×{size} input |
| same, plain identity and additive HourGlass skips | {plain} | what the gates and the concatenation cost |

## Task

{ntr} training poses and {nte} test poses (80/20 split in time of every clip, 15 fps) from
{src}, rendered at {size}×{size} from random cameras (pitch −5…30°, distance 3.5–6 m); the
training views never have a yaw in {lo}–{hi}°. Heatmaps at {hm}×{hm}, σ = 1; {steps} AdamW
steps of batch {batch}, every batch freshly rendered.

## Results ({n} test images per set)

{table}
PCK@0.2·torso: LSP's protocol (torso = left shoulder to right hip); PCK@0.1·box: 0.1 of the
longest side of the joints' box; MPJPE/PA-MPJPE in pixels of the {size}-pixel crop.

![loss](loss.png)

Held-out views: predictions (crosses) and truth (dots) on the first 16 test images:

![predictions](predictions.png)

Training took {train:.0} s (the plain ablation {ptrain:.0} s).
"#,
        full = thousands(r.full_params),
        params = thousands(r.params),
        plain = thousands(r.plain_params),
        stacks = cfg.stacks,
        ch = cfg.channels,
        depth = cfg.depth,
        size = opts.size,
        ntr = r.poses.0,
        nte = r.poses.1,
        src = r.source,
        lo = HELD_OUT_YAW.0,
        hi = HELD_OUT_YAW.1,
        hm = opts.size / 4,
        steps = opts.steps,
        batch = opts.batch_size,
        n = opts.test_images,
        table = markdown_table(
            &[
                "test set",
                "predictor",
                "PCK@0.2·torso ↑",
                "PCK@0.1·box ↑",
                "MPJPE (px) ↓",
                "PA-MPJPE (px) ↓"
            ],
            &rows
        ),
        train = r.train_seconds,
        ptrain = r.plain_train_seconds,
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
