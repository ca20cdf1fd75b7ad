//! Timestep and class embeddings (survey Section 3.2.1; Ho et al. 2020, Rombach et al. 2022).
//!
//! Names and numerics follow diffusers (`Timesteps`, `TimestepEmbedding`, `class_embedding`),
//! so their checkpoints load unchanged.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::{Error, Result};

/// Options of the sinusoidal timestep embedding (diffusers' `get_timestep_embedding`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SinusoidalConfig {
    /// Output width.
    pub dim: i64,
    /// Put cosines first (`[cos, sin]`) instead of `[sin, cos]`. Stable Diffusion: `true`;
    /// DDPM: `false`.
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift`: frequencies are `exp(-ln(max_period) · i / (dim/2 - shift))`.
    /// Stable Diffusion: 0; DDPM: 1.
    pub freq_shift: f64,
    /// Longest period. Default 10,000.
    pub max_period: f64,
}

impl SinusoidalConfig {
    /// `dim`-wide embedding with diffusers' defaults (flip, shift 0).
    pub fn new(dim: i64) -> Self {
        Self { dim, flip_sin_to_cos: true, freq_shift: 0.0, max_period: 10_000.0 }
    }
}

/// Sinusoidal embedding of timesteps `t` (`[B]`, any numeric kind) → `[B, dim]` float32,
/// exactly as diffusers computes it (always in float32).
pub fn timestep_embedding(t: &Tensor, cfg: &SinusoidalConfig) -> Result<Tensor> {
    if cfg.dim < 2 {
        return Err(Error::config("dim", cfg.dim, "timestep embedding needs at least 2 channels"));
    }
    let half = cfg.dim / 2;
    if (half as f64 - cfg.freq_shift) <= 0.0 {
        return Err(Error::config(
            "freq_shift",
            cfg.freq_shift,
            format!("must be below dim/2 = {half}"),
        ));
    }
    let t = if t.dim() == 0 { t.unsqueeze(0) } else { t.shallow_clone() };
    let exponent = Tensor::f_arange(half, (Kind::Float, t.device()))? * (-(cfg.max_period.ln()))
        / (half as f64 - cfg.freq_shift);
    let freqs = exponent.exp();
    let args = t.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0); // [B, half]
    let (sin, cos) = (args.sin(), args.cos());
    let emb = if cfg.flip_sin_to_cos {
        Tensor::f_cat(&[cos, sin], -1)?
    } else {
        Tensor::f_cat(&[sin, cos], -1)?
    };
    Ok(if cfg.dim % 2 == 1 { emb.f_constant_pad_nd([0, 1])? } else { emb })
}

/// Activation used by embedding MLPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EmbedAct {
    /// SiLU / swish (diffusers' default).
    #[default]
    SiLU,
    /// Exact GELU.
    GELU,
    /// ReLU.
    ReLU,
    /// Mish.
    Mish,
}

impl EmbedAct {
    /// Parses diffusers' `act_fn` names.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "silu" | "swish" => EmbedAct::SiLU,
            "gelu" => EmbedAct::GELU,
            "relu" => EmbedAct::ReLU,
            "mish" => EmbedAct::Mish,
            other => {
                return Err(Error::config("act_fn", other, "use silu, swish, gelu, relu or mish"))
            }
        })
    }

    /// Applies the activation.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            EmbedAct::SiLU => xs.silu(),
            EmbedAct::GELU => xs.gelu("none"),
            EmbedAct::ReLU => xs.relu(),
            EmbedAct::Mish => xs.mish(),
        }
    }
}

/// `TimestepEmbedding`: `linear_1 → act → linear_2`, mapping the sinusoid to the embedding
/// width every residual block receives.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: nn::Linear,
    linear_2: nn::Linear,
    act: EmbedAct,
}

impl TimestepEmbedding {
    /// `in_dim` → `out_dim` under `path` (`path/linear_1`, `path/linear_2`).
    pub fn new(path: nn::Path, in_dim: i64, out_dim: i64, act: EmbedAct) -> Result<Self> {
        if in_dim <= 0 || out_dim <= 0 {
            return Err(Error::config(
                "time_embedding",
                (in_dim, out_dim),
                "widths must be positive",
            ));
        }
        Ok(Self {
            linear_1: nn::linear(&path / "linear_1", in_dim, out_dim, Default::default()),
            linear_2: nn::linear(&path / "linear_2", out_dim, out_dim, Default::default()),
            act,
        })
    }

    /// `[B, in_dim]` → `[B, out_dim]`.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        self.linear_2.forward(&self.act.forward(&self.linear_1.forward(xs)))
    }
}

/// A learned class embedding (`nn.Embedding(num_classes, dim)`, key `weight`), added to the
/// time embedding for class-conditional models.
#[derive(Debug)]
pub struct ClassEmbedding {
    emb: nn::Embedding,
    num_classes: i64,
}

impl ClassEmbedding {
    /// `num_classes` vectors of width `dim` under `path`.
    pub fn new(path: nn::Path, num_classes: i64, dim: i64) -> Result<Self> {
        if num_classes <= 0 {
            return Err(Error::config("num_class_embeds", num_classes, "must be positive"));
        }
        let cfg = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 1.0 },
            ..Default::default()
        };
        Ok(Self { emb: nn::embedding(path, num_classes, dim, cfg), num_classes })
    }

    /// Labels `[B]` (int64) → `[B, dim]`; an out-of-range label is an error naming it.
    pub fn forward(&self, labels: &Tensor) -> Result<Tensor> {
        let labels = labels.to_kind(Kind::Int64);
        if labels.numel() > 0 {
            let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
            if lo < 0 || hi >= self.num_classes {
                return Err(Error::config(
                    "class_labels",
                    (lo, hi),
                    format!("labels must lie in 0..{}", self.num_classes),
                ));
            }
        }
        Ok(self.emb.forward(&labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_diffusers_reference_values() {
        // diffusers get_timestep_embedding(t=[0, 1, 10], 8), rows for t = 1.
        let t = Tensor::from_slice(&[0i64, 1, 10]);
        let sd = timestep_embedding(&t, &SinusoidalConfig::new(8)).unwrap();
        let got = Vec::<f32>::try_from(sd.get(1)).unwrap();
        let want = [0.5403f32, 0.9950, 0.99995, 1.0, 0.8415, 0.09983, 0.0099998, 0.001];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
        let ddpm = SinusoidalConfig {
            flip_sin_to_cos: false,
            freq_shift: 1.0,
            ..SinusoidalConfig::new(8)
        };
        let got = Vec::<f32>::try_from(timestep_embedding(&t, &ddpm).unwrap().get(1)).unwrap();
        let want = [0.8415f32, 0.046399, 0.0021544, 1e-4, 0.5403, 0.99892, 1.0, 1.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
        // Odd widths are zero-padded.
        let odd = timestep_embedding(&t, &SinusoidalConfig::new(7)).unwrap();
        assert_eq!(odd.size(), vec![3, 7]);
    }

    #[test]
    fn class_labels_out_of_range_are_errors() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let e = ClassEmbedding::new(vs.root() / "c", 10, 4).unwrap();
        assert_eq!(e.forward(&Tensor::from_slice(&[0i64, 9])).unwrap().size(), vec![2, 4]);
        assert!(e.forward(&Tensor::from_slice(&[10i64])).is_err());
    }
}
