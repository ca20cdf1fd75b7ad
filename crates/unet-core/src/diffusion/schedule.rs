//! Noise schedules and the closed-form forward process `q(x_t | x_0)` (Ho et al. 2020).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// How β_t grows over the training timesteps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// β linear from `start` to `end` (DDPM: 1e-4 → 0.02).
    Linear {
        /// β_1.
        start: f64,
        /// β_T.
        end: f64,
    },
    /// √β linear (Stable Diffusion: 0.00085 → 0.012).
    ScaledLinear {
        /// β_1.
        start: f64,
        /// β_T.
        end: f64,
    },
    /// ᾱ_t = cos²(((t/T + s)/(1 + s))·π/2) normalised, β clipped at 0.999 (Nichol & Dhariwal
    /// 2021, s = 0.008).
    Cosine {
        /// Offset s.
        s: f64,
    },
}

impl BetaSchedule {
    /// DDPM's linear schedule.
    pub fn ddpm() -> Self {
        BetaSchedule::Linear { start: 1e-4, end: 0.02 }
    }
    /// Stable Diffusion's scaled-linear schedule.
    pub fn stable_diffusion() -> Self {
        BetaSchedule::ScaledLinear { start: 0.00085, end: 0.012 }
    }
    /// Improved DDPM's cosine schedule.
    pub fn cosine() -> Self {
        BetaSchedule::Cosine { s: 0.008 }
    }
}

/// A discrete schedule of `T` steps with its derived quantities (float64 on the CPU; indexed
/// per batch with [`NoiseSchedule::gather`]).
#[derive(Debug)]
pub struct NoiseSchedule {
    /// β_t, `[T]`.
    pub betas: Tensor,
    /// α_t = 1 − β_t.
    pub alphas: Tensor,
    /// ᾱ_t = ∏ α_s.
    pub alphas_cumprod: Tensor,
    steps: i64,
}

impl NoiseSchedule {
    /// Builds `steps` steps of `kind`.
    pub fn new(kind: BetaSchedule, steps: i64) -> Result<Self> {
        if steps < 2 {
            return Err(Error::config("steps", steps, "a schedule needs at least 2 steps"));
        }
        let opts = (Kind::Double, Device::Cpu);
        let betas = match kind {
            BetaSchedule::Linear { start, end } => Tensor::f_linspace(start, end, steps, opts)?,
            BetaSchedule::ScaledLinear { start, end } => {
                Tensor::f_linspace(start.sqrt(), end.sqrt(), steps, opts)?.square()
            }
            BetaSchedule::Cosine { s } => {
                let t = Tensor::f_arange(steps + 1, opts)? / steps as f64;
                let f = ((t + s) / (1.0 + s) * (std::f64::consts::PI / 2.0)).cos().square();
                let ab = &f / f.get(0);
                let b = (ab.narrow(0, 1, steps) / ab.narrow(0, 0, steps)).neg() + 1.0;
                b.clamp(0.0, 0.999)
            }
        };
        let (lo, hi) = (betas.min().double_value(&[]), betas.max().double_value(&[]));
        if !(lo > 0.0 && hi < 1.0) {
            return Err(Error::config("betas", (lo, hi), "every β must lie in (0, 1)"));
        }
        let alphas = betas.neg() + 1.0;
        let alphas_cumprod = alphas.cumprod(0, Kind::Double);
        Ok(Self { betas, alphas, alphas_cumprod, steps })
    }

    /// Number of training timesteps `T`.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// ᾱ at integer step `t` (CPU scalar).
    pub fn alpha_bar(&self, t: i64) -> f64 {
        self.alphas_cumprod.double_value(&[t])
    }

    /// Gathers `values[t]` for a batch of timesteps `t` (`[B]` int64) as `[B, 1, …, 1]` with
    /// `ndim` total dimensions, in `kind` on `device`.
    pub fn gather(values: &Tensor, t: &Tensor, ndim: usize, kind: Kind, device: Device) -> Tensor {
        let v = values.index_select(0, &t.to_device(Device::Cpu).to_kind(Kind::Int64));
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, ndim - 1));
        v.view(shape.as_slice()).to_kind(kind).to_device(device)
    }

    /// Closed-form noising `x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε`.
    pub fn q_sample(&self, x0: &Tensor, t: &Tensor, noise: &Tensor) -> Tensor {
        let nd = x0.dim();
        let ab = Self::gather(&self.alphas_cumprod, t, nd, x0.kind(), x0.device());
        &ab.sqrt() * x0 + (ab.neg() + 1.0).sqrt() * noise
    }

    /// Signal-to-noise ratio ᾱ/(1 − ᾱ) for each `t` (`[B]`, float64 CPU).
    pub fn snr(&self, t: &Tensor) -> Tensor {
        let ab =
            self.alphas_cumprod.index_select(0, &t.to_device(Device::Cpu).to_kind(Kind::Int64));
        &ab / (ab.neg() + 1.0)
    }

    /// Uniformly random training timesteps `[B]`.
    pub fn sample_timesteps(&self, batch: i64, device: Device) -> Tensor {
        Tensor::randint(self.steps, [batch], (Kind::Int64, device))
    }
}
