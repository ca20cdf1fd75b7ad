//! Samplers: DDPM ancestral sampling (Ho et al. 2020), DDIM with η and fewer steps (Song et
//! al. 2021), DPM-Solver++(2M) (Lu et al. 2022); classifier-free guidance (Ho & Salimans
//! 2022) and in-/out-painting by replacing the known region at every step (RePaint-style).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::objective::{to_x0_eps, Prediction};
use super::schedule::NoiseSchedule;
use crate::{Error, Result};

/// Which sampler to run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sampler {
    /// Ancestral sampling over all `T` steps with the posterior variance β̃ ("fixed small").
    Ddpm,
    /// DDIM over `steps` evenly spaced timesteps; η = 0 is deterministic, η = 1 with all steps
    /// is DDPM.
    Ddim {
        /// Number of denoising steps.
        steps: i64,
        /// Stochasticity η.
        eta: f64,
    },
    /// DPM-Solver++ (2M): second-order multistep in data prediction, deterministic.
    DpmSolverPp2M {
        /// Number of denoising steps.
        steps: i64,
    },
}

/// Known content for in-/out-painting: where `mask` is 1 the sampler generates, where it is 0
/// the result keeps `known` (noised to the current level at every step).
#[derive(Debug)]
pub struct Inpaint<'a> {
    /// Clean known sample (`x₀` space).
    pub known: &'a Tensor,
    /// 1 = generate, 0 = keep; broadcastable to the sample.
    pub mask: &'a Tensor,
}

/// How the `steps` timesteps of DDIM / DPM-Solver++ are spread over `0..T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Spacing {
    /// Evenly in t (diffusers' "linspace").
    #[default]
    Linear,
    /// Evenly in log-SNR λ = log(α/σ), the spacing DPM-Solver's step-size analysis assumes
    /// (equal steps h, so the multistep ratio r stays 1).
    LogSnr,
}

/// Options shared by all samplers.
#[derive(Debug, Default)]
pub struct SampleOptions<'a> {
    /// Timestep spacing of the few-step samplers.
    pub spacing: Spacing,
    /// Parametrisation of the denoiser output.
    pub prediction: Prediction,
    /// Clamp x̂₀ to `[-c, c]` at every step (1.0 for images in [-1, 1]).
    pub clip_x0: Option<f64>,
    /// In-/out-painting.
    pub inpaint: Option<Inpaint<'a>>,
}

/// A denoiser: `(x_t, t)` with `t` a `[B]` int64 tensor → model output.
pub type Denoiser<'a> = dyn FnMut(&Tensor, &Tensor) -> Result<Tensor> + 'a;

/// `steps` timesteps from `T − 1` down to 0, evenly spaced (diffusers' "linspace" spacing).
pub fn timesteps(total: i64, steps: i64) -> Result<Vec<i64>> {
    if steps < 1 || steps > total {
        return Err(Error::config("steps", steps, format!("must lie in 1..={total}")));
    }
    if steps == 1 {
        return Ok(vec![total - 1]);
    }
    let mut v: Vec<i64> = (0..steps)
        .map(|i| ((total - 1) as f64 * (1.0 - i as f64 / (steps - 1) as f64)).round() as i64)
        .collect();
    v.dedup();
    Ok(v)
}

/// Classifier-free guidance: `uncond + scale · (cond − uncond)`; scale 1 is the conditional
/// output.
pub fn guidance(cond: &Tensor, uncond: &Tensor, scale: f64) -> Tensor {
    if scale == 1.0 {
        return cond.shallow_clone();
    }
    uncond + (cond - uncond) * scale
}

/// Conditioning dropout for classifier-free guidance training: each label is replaced by
/// `null_label` with probability `p`.
pub fn drop_labels(labels: &Tensor, p: f64, null_label: i64) -> Tensor {
    let drop = Tensor::rand(labels.size(), (Kind::Float, labels.device())).lt(p);
    labels.where_self(&drop.logical_not(), &Tensor::full_like(labels, null_label))
}

/// `steps` timesteps from `T − 1` down to 0, evenly spaced in log-SNR.
pub fn timesteps_logsnr(schedule: &NoiseSchedule, steps: i64) -> Result<Vec<i64>> {
    let total = schedule.steps();
    if steps < 1 || steps > total {
        return Err(Error::config("steps", steps, format!("must lie in 1..={total}")));
    }
    let lambda: Vec<f64> = (0..total)
        .map(|t| {
            let ab = schedule.alpha_bar(t);
            0.5 * (ab / (1.0 - ab)).ln()
        })
        .collect();
    let (lo, hi) = (lambda[total as usize - 1], lambda[0]);
    let mut v: Vec<i64> = (0..steps)
        .map(|i| {
            let target =
                if steps == 1 { lo } else { lo + (hi - lo) * i as f64 / (steps - 1) as f64 };
            // λ decreases with t: pick the closest t.
            (0..total)
                .min_by(|&a, &b| {
                    (lambda[a as usize] - target)
                        .abs()
                        .total_cmp(&(lambda[b as usize] - target).abs())
                })
                .unwrap_or(0)
        })
        .collect();
    v.dedup();
    Ok(v)
}

struct Ctx<'s, 'o> {
    schedule: &'s NoiseSchedule,
    opts: &'s SampleOptions<'o>,
}

impl Ctx<'_, '_> {
    fn timesteps(&self, steps: i64) -> Result<Vec<i64>> {
        match self.opts.spacing {
            Spacing::Linear => timesteps(self.schedule.steps(), steps),
            Spacing::LogSnr => timesteps_logsnr(self.schedule, steps),
        }
    }

    fn ab(&self, t: i64) -> f64 {
        if t < 0 {
            1.0
        } else {
            self.schedule.alpha_bar(t)
        }
    }

    fn predict(&self, denoise: &mut Denoiser<'_>, x: &Tensor, t: i64) -> Result<(Tensor, Tensor)> {
        let b = x.size()[0];
        let tt = Tensor::full([b], t, (Kind::Int64, x.device()));
        let out = denoise(x, &tt)?;
        let ab = Tensor::full([1], self.ab(t), (x.kind(), x.device()));
        let (mut x0, mut eps) = to_x0_eps(self.opts.prediction, &out, x, &ab);
        if let Some(c) = self.opts.clip_x0 {
            x0 = x0.clamp(-c, c);
            eps = (x - x0.shallow_clone() * self.ab(t).sqrt()) / (1.0 - self.ab(t)).sqrt();
        }
        Ok((x0, eps))
    }

    /// Replaces the known region of `x` (at noise level `t`, `t < 0` = clean).
    fn paste_known(&self, x: Tensor, t: i64) -> Tensor {
        match &self.opts.inpaint {
            None => x,
            Some(p) => {
                let known_t = if t < 0 {
                    p.known.shallow_clone()
                } else {
                    let ab = self.ab(t);
                    p.known * ab.sqrt() + Tensor::randn_like(p.known) * (1.0 - ab).sqrt()
                };
                p.mask * &x + (p.mask.neg() + 1.0) * known_t
            }
        }
    }
}

/// Runs `sampler` from the noise `x_t` (at step `T − 1`) to a sample.
pub fn sample(
    schedule: &NoiseSchedule,
    sampler: Sampler,
    x_t: Tensor,
    denoise: &mut Denoiser<'_>,
    opts: &SampleOptions<'_>,
) -> Result<Tensor> {
    let ctx = Ctx { schedule, opts };
    let total = schedule.steps();
    let _guard = tch::no_grad_guard();
    let mut x = ctx.paste_known(x_t, total - 1);
    match sampler {
        Sampler::Ddpm => {
            for t in (0..total).rev() {
                let (x0, _) = ctx.predict(denoise, &x, t)?;
                let (ab, ab_prev) = (ctx.ab(t), ctx.ab(t - 1));
                let beta = schedule.betas.double_value(&[t]);
                let alpha = 1.0 - beta;
                let c0 = beta * ab_prev.sqrt() / (1.0 - ab);
                let ct = (1.0 - ab_prev) * alpha.sqrt() / (1.0 - ab);
                let mean = x0 * c0 + &x * ct;
                x = if t > 0 {
                    let var = (beta * (1.0 - ab_prev) / (1.0 - ab)).max(1e-20);
                    mean + Tensor::randn_like(&x) * var.sqrt()
                } else {
                    mean
                };
                x = ctx.paste_known(x, t - 1);
            }
        }
        Sampler::Ddim { steps, eta } => {
            let ts = ctx.timesteps(steps)?;
            for (i, &t) in ts.iter().enumerate() {
                let prev = ts.get(i + 1).copied().unwrap_or(-1);
                let (x0, eps) = ctx.predict(denoise, &x, t)?;
                let (ab, ab_prev) = (ctx.ab(t), ctx.ab(prev));
                let sigma =
                    eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)).max(0.0).sqrt();
                let dir = (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt();
                x = x0 * ab_prev.sqrt() + eps * dir;
                if sigma > 0.0 {
                    x += Tensor::randn_like(&x) * sigma;
                }
                x = ctx.paste_known(x, prev);
            }
        }
        Sampler::DpmSolverPp2M { steps } => {
            let ts = ctx.timesteps(steps)?;
            let lambda = |t: i64| {
                let ab = ctx.ab(t);
                0.5 * (ab / (1.0 - ab)).ln()
            };
            let mut prev_x0: Option<Tensor> = None;
            let mut prev_h = 0.0;
            for (i, &t) in ts.iter().enumerate() {
                let next = ts.get(i + 1).copied().unwrap_or(-1);
                let (x0, _) = ctx.predict(denoise, &x, t)?;
                if next < 0 {
                    // Lower-order final step onto the clean data.
                    x = ctx.paste_known(x0, -1);
                    break;
                }
                let (ab_t, ab_s) = (ctx.ab(t), ctx.ab(next));
                let (sig_t, sig_s) = ((1.0 - ab_t).sqrt(), (1.0 - ab_s).sqrt());
                let h = lambda(next) - lambda(t);
                let d = match &prev_x0 {
                    Some(p) => {
                        let r = prev_h / h;
                        &x0 * (1.0 + 1.0 / (2.0 * r)) - p * (1.0 / (2.0 * r))
                    }
                    None => x0.shallow_clone(),
                };
                x = &x * (sig_s / sig_t) - d * (ab_s.sqrt() * ((-h).exp() - 1.0));
                x = ctx.paste_known(x, next);
                prev_x0 = Some(x0);
                prev_h = h;
            }
        }
    }
    Ok(x)
}
