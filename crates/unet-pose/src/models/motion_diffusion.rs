//! `motion-diffusion`: class-conditional motion generation with a 1D temporal U-Net denoiser
//! and classifier-free guidance (Ho & Salimans 2022), the design of the U-Net motion
//! diffusion models of survey Section 4.6 (a diffusers-style U-Net over the time axis, joint
//! features as channels, the class as an embedding added to the timestep embedding; a null
//! class dropped in 10 % of training steps).
//!
//! Data: windows of the DeepMimic clips (`data::Windows`: 61 features per frame in the 6D
//! rotation representation, canonical ground frame), normalised per feature. Evaluation, as
//! action-conditioned motion generation is evaluated (Action2Motion, MDM): a motion
//! classifier trained here gives the **motion FD**, the **accuracy** of samples on the class
//! they were asked for, and **diversity**; **foot sliding** and **novelty** (MPJPE to the
//! nearest training window) come from forward kinematics. Baselines: retrieval of real windows
//! of the requested class (a copy of the data: best fidelity, zero novelty) and decoded
//! Gaussian noise.
//!
//! Run: `cargo xtask reproduce motion-diffusion`.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use tch::{nn, Device, Kind, Tensor};
use unet_core::diffusers::{DiffusersConfig, DiffusersUNet};
use unet_core::diffusion::{
    self, drop_labels, guidance, BetaSchedule, NoiseSchedule, Prediction, SampleOptions, Sampler,
};
use unet_core::parameter_count;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::trainer::{Trainer, TrainerConfig};

use crate::data::{FeatureLayout, MotionSet, Windows};
use crate::metrics::{diversity, foot_sliding};
use crate::models::classifier::MotionClassifier;
use crate::{PoseError, Result};

/// What the denoiser predicts: the clean motion x₀, as MDM (Tevet et al. 2023) does. With the
/// cosine schedule ᾱ reaches 2·10⁻⁹ at the last step, where an ε-prediction's x̂₀ multiplies
/// the network's error by 1/√ᾱ ≈ 2·10⁴ (the first ε-trained run sampled poses far outside the
/// data, foot sliding 26 m/s); predicting x₀ keeps every step bounded.
pub const PREDICTION: Prediction = Prediction::Sample;

/// The full-size denoiser: channels (256, 512, 1024) over 3 temporal levels, 2 residual
/// blocks per level, self-attention at the two coarser levels, 18 classes + the null class.
pub fn full(features: i64, classes: i64) -> Result<DiffusersConfig> {
    config(features, classes, 256)
}

/// The same design with channels `base · (1, 2, 4)`.
pub fn config(features: i64, classes: i64, base: i64) -> Result<DiffusersConfig> {
    Ok(DiffusersConfig::from_json(&json!({
        "_class_name": "UNet2DModel",
        "unet_rs_dims": 1,
        "attention_head_dim": 32,
        "block_out_channels": [base, 2 * base, 4 * base],
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
        "in_channels": features, "out_channels": features, "layers_per_block": 2,
        "norm_num_groups": 32.min(base), "num_class_embeds": classes + 1,
        "flip_sin_to_cos": true, "freq_shift": 0
    }))?)
}

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
    /// Channels of the first level.
    pub base: i64,
    /// Frame rate of the windows.
    pub fps: f64,
    /// Frames per window (a multiple of 4).
    pub len: usize,
    /// Frames between window starts.
    pub stride: usize,
    /// Samples generated per class.
    pub per_class: i64,
    /// DDIM steps when sampling.
    pub sample_steps: i64,
    /// Guidance scale (1 = no guidance).
    pub guidance: f64,
    /// Classifier training steps.
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
            out: PathBuf::from("target/reproduce/motion-diffusion"),
            data_cache: crate::data::cache_dir(),
            steps: 3000,
            batch_size: 64,
            base: 64,
            fps: 20.0,
            len: 32,
            stride: 2,
            per_class: 16,
            sample_steps: 50,
            guidance: 2.5,
            classifier_steps: 1500,
            device: Device::Cpu,
            seed: 2023,
            progress: true,
        }
    }
}

/// One row of the results table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// What generated the motions.
    pub name: String,
    /// Motion FD against all real windows.
    pub fd: f64,
    /// Accuracy of the classifier on the requested class.
    pub accuracy: f64,
    /// Diversity of the classifier features.
    pub diversity: f64,
    /// Foot sliding, m/s.
    pub foot_sliding: f64,
    /// Mean MPJPE to the nearest training window, metres.
    pub novelty: f64,
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Parameters of the full-size denoiser.
    pub full_params: i64,
    /// Parameters of the trained denoiser.
    pub params: i64,
    /// Windows, classes and source.
    pub windows: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Classifier accuracy on held-out (later) windows.
    pub classifier_accuracy: f64,
    /// Contact height for foot sliding, metres.
    pub contact_height: f64,
    /// Results per generator.
    pub rows: Vec<Row>,
    /// Per-class accuracy of the guided model.
    pub per_class_accuracy: Vec<(String, f64)>,
    /// `(step, loss)`.
    pub losses: Vec<(f64, f64)>,
    /// Training seconds.
    pub train_seconds: f64,
    /// Sampling seconds (guided, all classes).
    pub sample_seconds: f64,
    /// Where the clips came from.
    pub source: String,
}

/// The prepared data: normalised windows and what is needed to undo the normalisation.
pub struct Prepared {
    /// `[N, F, T]` normalised features.
    pub x: Tensor,
    /// `[N]` class indices.
    pub labels: Tensor,
    /// Later windows of each clip (the classifier's held-out set), as a mask `[N]`.
    pub held_out: Tensor,
    /// Per-feature mean and std.
    pub mean: Vec<f32>,
    /// Std.
    pub std: Vec<f32>,
    /// The windows.
    pub windows: Windows,
}

/// Loads the motion set and cuts normalised windows.
pub fn prepare(set: &MotionSet, fps: f64, len: usize, stride: usize) -> Result<Prepared> {
    if len % 4 != 0 {
        return Err(PoseError::Invalid(format!(
            "window length {len} must be a multiple of 4 (two down-samplings)"
        )));
    }
    let w = Windows::build(set, fps, len, stride)?;
    let (mean, std) = w.stats();
    let d = w.layout.dim();
    let n = w.count() as i64;
    let flat: Vec<f32> = w
        .feats
        .iter()
        .flat_map(|f| f.iter().enumerate().map(|(i, v)| (v - mean[i / len]) / std[i / len]))
        .collect();
    let x = Tensor::from_slice(&flat).view([n, d as i64, len as i64]);
    let labels = Tensor::from_slice(&w.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    // Per clip, the last fifth of its windows.
    let mut held = vec![false; w.count()];
    for c in 0..set.clips.len() {
        let idx: Vec<usize> = (0..w.count()).filter(|&i| w.clip[i] == c).collect();
        let cut = idx.len() - idx.len() / 5;
        for &i in &idx[cut..] {
            held[i] = true;
        }
    }
    let held_out = Tensor::from_slice(&held);
    Ok(Prepared { x, labels, held_out, mean, std, windows: w })
}

impl Prepared {
    /// Normalised features back to world joint positions, `[N][T][J]`.
    pub fn positions(&self, x: &Tensor) -> Result<Vec<Vec<Vec<[f64; 3]>>>> {
        let (n, d, t) = (x.size()[0], x.size()[1] as usize, x.size()[2] as usize);
        let x = x.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let flat = Vec::<f32>::try_from(x.view([-1]))?;
        (0..n as usize)
            .map(|i| {
                let f: Vec<f32> = flat[i * d * t..(i + 1) * d * t]
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v * self.std[k / t] + self.mean[k / t])
                    .collect();
                self.windows.layout.positions(&f, t)
            })
            .collect()
    }

    /// Projects normalised features onto valid poses (6D → rotation → 6D), so metrics see
    /// what forward kinematics would show.
    pub fn project(&self, x: &Tensor) -> Result<Tensor> {
        let (n, d, t) = (x.size()[0], x.size()[1] as usize, x.size()[2] as usize);
        let flat = Vec::<f32>::try_from(x.to_device(Device::Cpu).contiguous().view([-1]))?;
        let layout: &FeatureLayout = &self.windows.layout;
        let mut out = Vec::with_capacity(flat.len());
        for i in 0..n as usize {
            let f: Vec<f32> = flat[i * d * t..(i + 1) * d * t]
                .iter()
                .enumerate()
                .map(|(k, v)| v * self.std[k / t] + self.mean[k / t])
                .collect();
            let g = layout.encode(&layout.decode(&f, t)?);
            out.extend(g.iter().enumerate().map(|(k, v)| (v - self.mean[k / t]) / self.std[k / t]));
        }
        Ok(Tensor::from_slice(&out).view([n, d as i64, t as i64]))
    }
}

/// Trains the denoiser, samples every class with and without guidance, and writes the report.
pub fn run(opts: &RunOptions) -> Result<RunResult> {
    std::fs::create_dir_all(&opts.out).map_err(|e| PoseError::io(&opts.out, e))?;
    let set = MotionSet::load(opts.data_cache.as_deref())?;
    let data = prepare(&set, opts.fps, opts.len, opts.stride)?;
    let (n, d) = (data.x.size()[0], data.x.size()[1]);
    let classes = set.classes.len() as i64;
    tracing::info!(windows = n, classes, source = %set.source, "motion windows");

    // The evaluation classifier: trained on the earlier windows of each clip.
    let train_idx = data.held_out.logical_not().nonzero().squeeze_dim(1);
    let val_idx = data.held_out.nonzero().squeeze_dim(1);
    let mut clf = MotionClassifier::new(d, classes, Device::Cpu);
    clf.train(
        &data.x.index_select(0, &train_idx),
        &data.labels.index_select(0, &train_idx),
        opts.classifier_steps,
        opts.seed as i64,
    )?;
    let classifier_accuracy = if val_idx.numel() > 0 {
        clf.accuracy(&data.x.index_select(0, &val_idx), &data.labels.index_select(0, &val_idx))
    } else {
        f64::NAN
    };
    tracing::info!(accuracy = classifier_accuracy, "motion classifier (held-out windows)");
    // Retrain on everything for the feature space of the metrics.
    let mut clf = MotionClassifier::new(d, classes, Device::Cpu);
    clf.train(&data.x, &data.labels, opts.classifier_steps, opts.seed as i64 + 1)?;
    let real_feats = clf.embed(&data.x);
    let real_pos = data.positions(&data.x)?;
    let skel = &data.windows.layout.skeleton;
    let feet = skel.feet();
    let contact_height = contact_height(&real_pos, &feet);

    let full_params = {
        let vs = nn::VarStore::new(Device::Cpu);
        DiffusersUNet::new(&vs.root(), &full(d, classes)?)?;
        parameter_count(&vs)
    };
    let cfg = config(d, classes, opts.base)?;
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let model = DiffusersUNet::new(&vs.root(), &cfg)?;
    let params = parameter_count(&vs);
    let sched = NoiseSchedule::new(BetaSchedule::cosine(), 1000)?;
    let model_dir = opts.out.join("model");
    let mut trainer = Trainer::new(
        &vs,
        TrainerConfig::diffusion(1e-3, opts.steps, opts.seed, model_dir.clone(), opts.progress),
    )?;
    trainer.resume(&mut vs)?;
    write_stats(opts, &data, &set)?;
    // Class-balanced batches: each window weighted by 1 / (windows of its class).
    let counts = data.labels.bincount::<Tensor>(None, classes).to_kind(Kind::Float);
    let weights = Tensor::ones([classes], (Kind::Float, Device::Cpu)) / counts.clamp_min(1.0);
    let weights = weights.index_select(0, &data.labels);
    let t0 = Instant::now();
    trainer.run(&mut vs, |_| {
        let idx = weights.multinomial(opts.batch_size, true);
        let x0 = data.x.index_select(0, &idx).to_device(opts.device);
        let y =
            drop_labels(&data.labels.index_select(0, &idx), 0.1, classes).to_device(opts.device);
        let t = sched.sample_timesteps(opts.batch_size, opts.device);
        let noise = Tensor::randn_like(&x0);
        let out = model.forward(&sched.q_sample(&x0, &t, &noise), &t, None, Some(&y))?;
        diffusion::loss(&sched, PREDICTION, &out, &x0, &noise, &t, None)
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    trainer.load_ema_into_model();

    // Requests: `per_class` of every class.
    let req: Vec<i64> =
        (0..classes).flat_map(|c| std::iter::repeat_n(c, opts.per_class as usize)).collect();
    let req_t = Tensor::from_slice(&req);
    let gen = |w: f64, seed: i64| -> Result<Tensor> {
        generate(
            &model,
            &sched,
            &req_t,
            classes,
            d,
            opts.len as i64,
            w,
            opts.sample_steps,
            seed,
            opts.device,
        )
    };
    let t1 = Instant::now();
    let guided = data.project(&gen(opts.guidance, opts.seed as i64 + 11)?)?;
    let sample_seconds = t1.elapsed().as_secs_f64();
    let unguided = data.project(&gen(1.0, opts.seed as i64 + 11)?)?;

    // Baselines.
    tch::manual_seed(opts.seed as i64 + 5);
    let noise = data.project(&Tensor::randn(
        [req.len() as i64, d, opts.len as i64],
        (Kind::Float, Device::Cpu),
    ))?;
    let retrieval = {
        let mut idx = Vec::with_capacity(req.len());
        for &c in &req {
            let of_c = data.labels.eq(c).nonzero().squeeze_dim(1);
            let k =
                Tensor::randint(of_c.size()[0], [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
            idx.push(of_c.int64_value(&[k]));
        }
        data.x.index_select(0, &Tensor::from_slice(&idx))
    };

    let train_flat = flat_positions(&real_pos);
    let score = |name: &str, x: &Tensor| -> Result<Row> {
        let f = clf.embed(x);
        let pos = data.positions(x)?;
        let fs = pos.iter().map(|p| foot_sliding(p, &feet, opts.fps, contact_height)).sum::<f64>()
            / pos.len() as f64;
        Ok(Row {
            name: name.to_string(),
            fd: unet_core::metrics::frechet_distance(&f, &real_feats)?,
            accuracy: clf.accuracy(x, &req_t),
            diversity: diversity(&f, 300, 7)?,
            foot_sliding: fs,
            novelty: nearest_mpjpe(&flat_positions(&pos), &train_flat),
        })
    };
    let mut rows = vec![
        Row {
            name: "real windows (all)".into(),
            fd: 0.0,
            accuracy: clf.accuracy(&data.x, &data.labels),
            diversity: diversity(&real_feats, 300, 7)?,
            foot_sliding: real_pos
                .iter()
                .map(|p| foot_sliding(p, &feet, opts.fps, contact_height))
                .sum::<f64>()
                / real_pos.len() as f64,
            novelty: 0.0,
        },
        score("retrieval of real windows of the class", &retrieval)?,
        score(&format!("motion-diffusion, guidance {}", opts.guidance), &guided)?,
        score("motion-diffusion, no guidance (w = 1)", &unguided)?,
        score("decoded Gaussian noise", &noise)?,
    ];
    rows[0].fd = {
        // Real against real: the even windows against the odd ones (both cover every clip).
        let even = Tensor::arange_start_step(0, n, 2, (Kind::Int64, Device::Cpu));
        let odd = Tensor::arange_start_step(1, n, 2, (Kind::Int64, Device::Cpu));
        unet_core::metrics::frechet_distance(
            &real_feats.index_select(0, &even),
            &real_feats.index_select(0, &odd),
        )
        .unwrap_or(f64::NAN)
    };
    let pred = clf.predict(&guided);
    let per_class_accuracy = set
        .classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let m = req_t.eq(c as i64);
            let ok = pred.eq_tensor(&req_t).logical_and(&m).sum(Kind::Int64).int64_value(&[]);
            (name.clone(), ok as f64 / opts.per_class as f64)
        })
        .collect();

    let result = RunResult {
        full_params,
        params,
        windows: n as usize,
        classes: set.classes.clone(),
        classifier_accuracy,
        contact_height,
        rows,
        per_class_accuracy,
        losses: trainer.losses().to_vec(),
        train_seconds,
        sample_seconds,
        source: set.source.clone(),
    };
    crate::models::artefacts::write_motion_artefacts(
        &opts.out,
        &data,
        &guided,
        &req,
        &set.classes,
        opts.fps,
    )?;
    write_report(opts, &cfg, &result)?;
    Ok(result)
}

/// DDIM samples for the `labels` requests with guidance scale `w` (1 = conditional only).
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &DiffusersUNet,
    sched: &NoiseSchedule,
    labels: &Tensor,
    classes: i64,
    features: i64,
    len: i64,
    w: f64,
    steps: i64,
    seed: i64,
    device: Device,
) -> Result<Tensor> {
    tch::manual_seed(seed);
    let total = labels.size()[0];
    let mut out = Vec::new();
    let mut start = 0;
    while start < total {
        let b = (total - start).min(128);
        let y = labels.narrow(0, start, b).to_device(device);
        let null = Tensor::full([b], classes, (Kind::Int64, device));
        let xt = Tensor::randn([b, features, len], (Kind::Float, device));
        let mut den = |x: &Tensor, t: &Tensor| -> unet_core::Result<Tensor> {
            if w == 1.0 {
                return model.forward(x, t, None, Some(&y));
            }
            let both = model.forward(
                &Tensor::cat(&[x, x], 0),
                &Tensor::cat(&[t, t], 0),
                None,
                Some(&Tensor::cat(&[&y, &null], 0)),
            )?;
            let parts = both.chunk(2, 0);
            Ok(guidance(&parts[0], &parts[1], w))
        };
        let so = SampleOptions { clip_x0: Some(6.0), prediction: PREDICTION, ..Default::default() };
        let x = diffusion::sample(sched, Sampler::Ddim { steps, eta: 0.0 }, xt, &mut den, &so)?;
        out.push(x.to_device(Device::Cpu));
        start += b;
    }
    Ok(Tensor::cat(&out, 0))
}

/// Contact height: 3 cm above the 5th percentile of the feet heights in the real data.
fn contact_height(pos: &[Vec<Vec<[f64; 3]>>], feet: &[usize]) -> f64 {
    let mut h: Vec<f64> =
        pos.iter().flatten().flat_map(|f| feet.iter().map(|&j| f[j][1])).collect();
    if h.is_empty() {
        return 0.05;
    }
    h.sort_by(|a, b| a.total_cmp(b));
    h[h.len() / 20] + 0.03
}

/// `[N][T][J]` positions as a `[N, T·J, 3]` tensor.
fn flat_positions(pos: &[Vec<Vec<[f64; 3]>>]) -> Tensor {
    let n = pos.len() as i64;
    let v: Vec<f32> =
        pos.iter().flatten().flatten().flat_map(|p| p.iter().map(|&x| x as f32)).collect();
    Tensor::from_slice(&v).view([n, -1, 3])
}

/// Mean over `a` of the MPJPE to the nearest row of `b`.
fn nearest_mpjpe(a: &Tensor, b: &Tensor) -> f64 {
    let mut best = Vec::new();
    for i in (0..a.size()[0]).step_by(8) {
        let k = (a.size()[0] - i).min(8);
        let d = (a.narrow(0, i, k).unsqueeze(1) - b.unsqueeze(0))
            .square()
            .sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)
            .sqrt()
            .mean_dim([-1i64].as_slice(), false, Kind::Float); // [k, M]
        best.push(d.min_dim(1, false).0);
    }
    Tensor::cat(&best, 0).mean(Kind::Double).double_value(&[])
}

fn write_stats(opts: &RunOptions, data: &Prepared, set: &MotionSet) -> Result<()> {
    let stats = json!({
        "model": "motion-diffusion", "base": opts.base, "fps": opts.fps, "len": opts.len,
        "classes": set.classes, "mean": data.mean, "std": data.std,
        "schedule": "cosine", "timesteps": 1000, "prediction": "sample",
    });
    let path = opts.out.join("model").join("motion_stats.json");
    std::fs::create_dir_all(opts.out.join("model")).map_err(|e| PoseError::io(&opts.out, e))?;
    unet_core::checkpoint::write_atomic(&path, stats.to_string().as_bytes())?;
    Ok(())
}

fn write_report(opts: &RunOptions, cfg: &DiffusersConfig, r: &RunResult) -> Result<()> {
    plot_lines(
        &opts.out.join("loss.png"),
        "motion-diffusion: x₀-prediction loss",
        "step",
        "MSE",
        &[
            Series::new("loss", r.losses.clone()).faint(),
            Series::new("EMA 0.05", smooth(&r.losses, 0.05)),
        ],
        true,
    )?;
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            vec![
                row.name.clone(),
                format!("{:.2}", row.fd),
                format!("{:.3}", row.accuracy),
                format!("{:.2}", row.diversity),
                format!("{:.3}", row.foot_sliding),
                format!("{:.3}", row.novelty),
            ]
        })
        .collect();
    let per_class: Vec<Vec<String>> =
        r.per_class_accuracy.iter().map(|(c, a)| vec![c.clone(), format!("{a:.2}")]).collect();
    let text = format!(
        r#"# motion-diffusion: class-conditional 1D temporal U-Net diffusion

Reproduced with `cargo xtask reproduce motion-diffusion`.

## Architecture

| preset | parameters | notes |
|---|---|---|
| full size (`motion_diffusion::full`) | {full} | channels (256, 512, 1024), 2 res blocks per level, attention at the two coarser levels, 1D (time) |
| trained here | {params} | channels {ch:?}, same design |

Classes: {nc} (+ the null class for classifier-free guidance, dropped in 10 % of steps).

## Data

{nw} windows of {len} frames at {fps} fps (stride {stride}) from {src}: {classes}.
61 features per frame (root position and 6D orientation in the window's ground frame, 8 ball
joints in 6D, 4 hinge angles), normalised per feature. Class-balanced batches of {batch},
{steps} AdamW steps, cosine β schedule (T = 1000), x₀-prediction (as MDM), EMA 0.995; sampling
with DDIM ({ss} steps, η = 0), {pc} samples per class.

## Metrics

A motion classifier trained here (accuracy {acc:.3} on the last fifth of each clip's windows,
trained on the rest; retrained on all windows for the metrics) defines the **motion FD**
(Fréchet distance of its 128-d features to all real windows; lower is better), **accuracy**
on the requested class and **diversity** (mean feature distance of 300 random pairs; the real
data's value is the target). **Foot sliding**: mean horizontal speed of toes and ankles while
below {ch_h:.3} m (3 cm above the 5th percentile of real foot heights). **Novelty**: mean
MPJPE (m) from each sample to its nearest real window (0 = a copy). The first row's FD compares
the even-numbered real windows with the odd-numbered ones.

## Results

{table}
Guided accuracy per class:

{per_class}
![loss](loss.png)

Samples (one per class, animated): ![samples](samples.gif)

BVH files of the first sample of each class are in `bvh/`.

## Timings

Training {train:.0} s in this process (a resumed run counts only its own steps); sampling
{sample:.1} s for {total} guided samples.
"#,
        full = thousands(r.full_params),
        params = thousands(r.params),
        ch = cfg.block_out_channels,
        nc = r.classes.len(),
        nw = r.windows,
        len = opts.len,
        fps = opts.fps,
        stride = opts.stride,
        src = r.source,
        classes = r.classes.join(", "),
        batch = opts.batch_size,
        steps = opts.steps,
        ss = opts.sample_steps,
        pc = opts.per_class,
        acc = r.classifier_accuracy,
        ch_h = r.contact_height,
        table = markdown_table(
            &[
                "generator",
                "motion FD ↓",
                "accuracy ↑",
                "diversity",
                "foot sliding (m/s)",
                "novelty (m)"
            ],
            &rows
        ),
        per_class = markdown_table(&["class", "accuracy"], &per_class),
        train = r.train_seconds,
        sample = r.sample_seconds,
        total = r.classes.len() as i64 * opts.per_class,
    );
    unet_core::checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    unet_core::checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
