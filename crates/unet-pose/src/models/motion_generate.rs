//! Generating motions from a trained `motion-diffusion` run: the model folder holds
//! `checkpoint.safetensors` (the trainer's, with EMA weights) and `motion_stats.json` (classes,
//! normalisation, rate and window length), both written by the reproduction.

use std::path::Path;

use serde::Deserialize;
use tch::{nn, Device, Tensor};
use unet_core::diffusers::DiffusersUNet;
use unet_core::diffusion::{BetaSchedule, NoiseSchedule};

use crate::data::FeatureLayout;
use crate::models::motion_diffusion::{config, generate};
use crate::skeleton::Pose;
use crate::{PoseError, Result};

/// What `motion_stats.json` holds.
#[derive(Debug, Clone, Deserialize)]
pub struct MotionStats {
    /// Width of the first level.
    pub base: i64,
    /// Frames per second.
    pub fps: f64,
    /// Frames per window.
    pub len: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Feature means.
    pub mean: Vec<f32>,
    /// Feature standard deviations.
    pub std: Vec<f32>,
}

/// A trained motion generator.
pub struct MotionGenerator {
    /// The denoiser (EMA weights).
    pub unet: DiffusersUNet,
    _vs: nn::VarStore,
    /// The run's statistics.
    pub stats: MotionStats,
    /// Feature layout of the humanoid.
    pub layout: FeatureLayout,
    sched: NoiseSchedule,
    device: Device,
}

impl MotionGenerator {
    /// Loads a model folder written by `cargo xtask reproduce motion-diffusion`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let stats_path = dir.join("motion_stats.json");
        let text =
            std::fs::read_to_string(&stats_path).map_err(|e| PoseError::io(&stats_path, e))?;
        let stats: MotionStats = serde_json::from_str(&text)
            .map_err(|e| PoseError::format(&stats_path, Some(e.line()), e.to_string()))?;
        let layout = FeatureLayout::humanoid();
        if stats.mean.len() != layout.dim() || stats.std.len() != layout.dim() {
            return Err(PoseError::format(
                &stats_path,
                None,
                format!(
                    "{} normalisation values; the humanoid has {}",
                    stats.mean.len(),
                    layout.dim()
                ),
            ));
        }
        let cfg = config(layout.dim() as i64, stats.classes.len() as i64, stats.base)?;
        let mut vs = nn::VarStore::new(device);
        let unet = DiffusersUNet::new(&vs.root(), &cfg)?;
        let ck_path = dir.join(unet_core::trainer::CHECKPOINT);
        unet_core::trainer::load_inference_weights(&mut vs, &ck_path)?;
        let sched = NoiseSchedule::new(BetaSchedule::cosine(), 1000)?;
        Ok(Self { unet, _vs: vs, stats, layout, sched, device })
    }

    /// `n` motions of class `class` (guidance `w`, `steps` DDIM steps, seeded).
    pub fn sample(
        &self,
        class: &str,
        n: i64,
        w: f64,
        steps: i64,
        seed: i64,
    ) -> Result<Vec<Vec<Pose>>> {
        let c = self.stats.classes.iter().position(|k| k == class).ok_or_else(|| {
            PoseError::invalid(format!(
                "unknown class `{class}`; the model knows: {}",
                self.stats.classes.join(", ")
            ))
        })?;
        if n < 1 {
            return Err(PoseError::invalid(format!("n must be at least 1, got {n}")));
        }
        let labels = Tensor::full([n], c as i64, (tch::Kind::Int64, Device::Cpu));
        let k = self.stats.classes.len() as i64;
        let d = self.layout.dim() as i64;
        let t = self.stats.len;
        let x = generate(
            &self.unet,
            &self.sched,
            &labels,
            k,
            d,
            t as i64,
            w,
            steps,
            seed,
            self.device,
        )?;
        let flat = Vec::<f32>::try_from(x.contiguous().view([-1]))?;
        let per = self.layout.dim() * t;
        (0..n as usize)
            .map(|i| {
                let f: Vec<f32> = flat[i * per..(i + 1) * per]
                    .iter()
                    .enumerate()
                    .map(|(j, v)| v * self.stats.std[j / t] + self.stats.mean[j / t])
                    .collect();
                self.layout.decode(&f, t)
            })
            .collect()
    }
}
