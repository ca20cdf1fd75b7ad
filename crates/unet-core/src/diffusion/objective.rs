//! Training targets of diffusion models: ε-, v- and x₀-prediction, with optional min-SNR
//! weighting (Hang et al. 2023).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::schedule::NoiseSchedule;
use crate::Result;

/// What the denoiser predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Prediction {
    /// The noise ε (DDPM, Stable Diffusion 1.x).
    #[default]
    Epsilon,
    /// v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022, SD 2.x-v).
    V,
    /// The clean sample x₀.
    Sample,
}

/// Converts a model output at `x_t` into `(x̂₀, ε̂)`.
pub fn to_x0_eps(
    pred: Prediction,
    out: &Tensor,
    x_t: &Tensor,
    alpha_bar: &Tensor,
) -> (Tensor, Tensor) {
    let a = alpha_bar.sqrt();
    let s = (alpha_bar.neg() + 1.0).sqrt();
    match pred {
        Prediction::Epsilon => {
            let x0 = (x_t - &s * out) / &a;
            (x0, out.shallow_clone())
        }
        Prediction::Sample => {
            let eps = (x_t - &a * out) / &s;
            (out.shallow_clone(), eps)
        }
        Prediction::V => {
            let x0 = &a * x_t - &s * out;
            let eps = &s * x_t + &a * out;
            (x0, eps)
        }
    }
}

/// The regression target for `pred` given `x₀`, ε and ᾱ.
pub fn target(pred: Prediction, x0: &Tensor, noise: &Tensor, alpha_bar: &Tensor) -> Tensor {
    match pred {
        Prediction::Epsilon => noise.shallow_clone(),
        Prediction::Sample => x0.shallow_clone(),
        Prediction::V => alpha_bar.sqrt() * noise - (alpha_bar.neg() + 1.0).sqrt() * x0,
    }
}

/// Mean-squared diffusion loss for a batch. With `min_snr_gamma = Some(γ)` each sample is
/// weighted by min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1) for v, min(SNR, γ) for x₀.
pub fn loss(
    schedule: &NoiseSchedule,
    pred: Prediction,
    model_out: &Tensor,
    x0: &Tensor,
    noise: &Tensor,
    t: &Tensor,
    min_snr_gamma: Option<f64>,
) -> Result<Tensor> {
    let nd = x0.dim();
    let ab = NoiseSchedule::gather(&schedule.alphas_cumprod, t, nd, x0.kind(), x0.device());
    let tgt = target(pred, x0, noise, &ab);
    let axes: Vec<i64> = (1..nd as i64).collect();
    let per_sample = (model_out - tgt).square().mean_dim(axes.as_slice(), false, Kind::Float); // [B]
    Ok(match min_snr_gamma {
        None => per_sample.mean(Kind::Float),
        Some(g) => {
            let snr = schedule.snr(t).to_kind(Kind::Float).to_device(x0.device());
            let clipped = snr.clamp_max(g);
            let w = match pred {
                Prediction::Epsilon => &clipped / &snr,
                Prediction::V => &clipped / (&snr + 1.0),
                Prediction::Sample => clipped,
            };
            (per_sample * w).mean(Kind::Float)
        }
    })
}
