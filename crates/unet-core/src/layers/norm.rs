//! Normalisation layers (Section 3.1.1 of the survey) over any spatial rank.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::{Error, Result};

/// Which normalisation follows each convolution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum Norm {
    /// `nn.BatchNormNd` (Ioffe & Szegedy 2015): Algorithm 1's choice. Running statistics
    /// are tracked in training and used in evaluation.
    #[default]
    Batch,
    /// `nn.InstanceNormNd` with PyTorch's defaults (no affine parameters, no running stats).
    Instance,
    /// `nn.GroupNorm(groups, C)` (Wu & He 2018); every channel count must divide by `groups`.
    Group {
        /// Number of groups.
        groups: i64,
    },
    /// Layer normalisation over (C, *spatial), i.e. `nn.GroupNorm(1, C)` (Ba et al. 2016).
    Layer,
    /// No normalisation.
    None,
}

impl Norm {
    /// Checks that `channels` can be normalised by this norm.
    pub fn validate(&self, channels: i64) -> Result<()> {
        if let Norm::Group { groups } = *self {
            if groups <= 0 {
                return Err(Error::config("norm", self, "group count must be positive"));
            }
            if channels % groups != 0 {
                return Err(Error::config(
                    "norm",
                    self,
                    format!("{channels} channels are not divisible by {groups} groups"),
                ));
            }
        }
        Ok(())
    }

    /// Number of trainable scalars a norm over `channels` adds.
    pub fn param_count(&self, channels: i64) -> i64 {
        match self {
            Norm::Batch | Norm::Group { .. } | Norm::Layer => 2 * channels,
            Norm::Instance | Norm::None => 0,
        }
    }
}

/// A built normalisation layer.
#[derive(Debug)]
pub enum NormLayer {
    /// Batch norm with running statistics.
    Batch {
        /// Numerical epsilon.
        eps: f64,
        /// Scale γ.
        weight: Tensor,
        /// Shift β.
        bias: Tensor,
        /// Running mean (not trainable).
        running_mean: Tensor,
        /// Running variance (not trainable).
        running_var: Tensor,
        /// Batches seen in training (int64, as PyTorch).
        num_batches_tracked: Tensor,
    },
    /// Instance norm, no parameters.
    Instance {
        /// Numerical epsilon.
        eps: f64,
    },
    /// Group norm (also layer norm with one group).
    Group {
        /// Numerical epsilon.
        eps: f64,
        /// Number of groups.
        groups: i64,
        /// Scale γ.
        weight: Tensor,
        /// Shift β.
        bias: Tensor,
    },
    /// Identity.
    Identity,
}

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

impl NormLayer {
    /// Builds `norm` over `channels` under `path` with PyTorch's default epsilon (1e-5).
    pub fn new(path: nn::Path, norm: Norm, channels: i64) -> Result<Self> {
        Self::with_eps(path, norm, channels, EPS)
    }

    /// Builds `norm` over `channels` under `path` with epsilon `eps`.
    pub fn with_eps(path: nn::Path, norm: Norm, channels: i64, eps: f64) -> Result<Self> {
        norm.validate(channels)?;
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(Error::config("norm_eps", eps, "must be a positive finite number"));
        }
        Ok(match norm {
            Norm::Batch => NormLayer::Batch {
                eps,
                weight: path.f_ones("weight", &[channels])?,
                bias: path.f_zeros("bias", &[channels])?,
                running_mean: path.f_zeros_no_train("running_mean", &[channels])?,
                running_var: path.f_ones_no_train("running_var", &[channels])?,
                num_batches_tracked: path.add(
                    "num_batches_tracked",
                    Tensor::f_zeros([] as [i64; 0], (Kind::Int64, path.device()))?,
                    false,
                ),
            },
            Norm::Instance => NormLayer::Instance { eps },
            Norm::Group { groups } => NormLayer::Group {
                eps,
                groups,
                weight: path.f_ones("weight", &[channels])?,
                bias: path.f_zeros("bias", &[channels])?,
            },
            Norm::Layer => NormLayer::Group {
                eps,
                groups: 1,
                weight: path.f_ones("weight", &[channels])?,
                bias: path.f_zeros("bias", &[channels])?,
            },
            Norm::None => NormLayer::Identity,
        })
    }

    /// Batch norm whose scale γ is fixed at 1 (stored, not trainable): Keras'
    /// `BatchNormalization(scale=False)`, used when a ReLU follows and γ would be redundant.
    pub fn batch_without_scale(path: nn::Path, channels: i64) -> Result<Self> {
        Self::frozen_batch(path, channels, true)
    }

    /// Batch norm without learnable parameters (γ = 1, β = 0, both stored and frozen): Caffe's
    /// `BatchNorm` layer without a following `Scale`, as in Çiçek et al.'s 3D U-Net.
    pub fn batch_without_affine(path: nn::Path, channels: i64) -> Result<Self> {
        Self::frozen_batch(path, channels, false)
    }

    /// Batch norm with γ = 1 frozen and β trainable or frozen at 0.
    fn frozen_batch(path: nn::Path, channels: i64, train_bias: bool) -> Result<Self> {
        Norm::Batch.validate(channels)?;
        let bias = if train_bias {
            path.f_zeros("bias", &[channels])?
        } else {
            path.f_zeros_no_train("bias", &[channels])?
        };
        Ok(NormLayer::Batch {
            eps: EPS,
            weight: path.f_ones_no_train("weight", &[channels])?,
            bias,
            running_mean: path.f_zeros_no_train("running_mean", &[channels])?,
            running_var: path.f_ones_no_train("running_var", &[channels])?,
            num_batches_tracked: path.add(
                "num_batches_tracked",
                Tensor::f_zeros([] as [i64; 0], (Kind::Int64, path.device()))?,
                false,
            ),
        })
    }

    /// Normalises every frame of `xs` (`[N, C, T, *spatial]`) on its own, as an image model's
    /// norm does when it runs on the frames of a clip: the first spatial axis is folded into
    /// the batch, so group or instance statistics never mix frames.
    pub fn forward_per_frame(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let s = xs.size();
        if s.len() < 4 {
            return Err(Error::InputShape {
                shape: s,
                expected: "[N, C, T, *spatial] with at least 2 spatial axes".into(),
            });
        }
        let mut folded = vec![s[0] * s[2], s[1]];
        folded.extend_from_slice(&s[3..]);
        let mut perm: Vec<i64> = vec![0, 2, 1];
        perm.extend(3..s.len() as i64);
        let y = self.forward_t(&xs.permute(&perm).f_reshape(&folded)?, train)?;
        let mut unfolded = vec![s[0], s[2], s[1]];
        unfolded.extend_from_slice(&s[3..]);
        Ok(y.f_reshape(&unfolded)?.permute(&perm))
    }

    /// For batch norm in inference (running statistics), the per-channel affine map it
    /// applies, `y = x · scale + shift` with `scale = γ / √(var + ε)` and
    /// `shift = β − mean · scale` (both `[C]`), so that a preceding convolution can absorb it;
    /// `None` for every other norm.
    pub fn eval_affine(&self) -> Option<(Tensor, Tensor)> {
        match self {
            NormLayer::Batch { eps, weight, bias, running_mean, running_var, .. } => {
                let scale = weight * (running_var + *eps).rsqrt();
                let shift = bias - running_mean * &scale;
                Some((scale, shift))
            }
            _ => None,
        }
    }

    /// Normalises `xs` (`[N, C, *spatial]`); `train` selects batch statistics for batch norm.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            NormLayer::Batch {
                eps,
                weight,
                bias,
                running_mean,
                running_var,
                num_batches_tracked,
            } => {
                if train {
                    tch::no_grad(|| {
                        let mut n = num_batches_tracked.shallow_clone();
                        let _ = n.g_add_scalar_(1);
                    });
                }
                xs.f_batch_norm(
                    Some(weight),
                    Some(bias),
                    Some(running_mean),
                    Some(running_var),
                    train,
                    MOMENTUM,
                    *eps,
                    true,
                )?
            }
            NormLayer::Instance { eps } => {
                xs.f_instance_norm(None::<Tensor>, None, None, None, true, MOMENTUM, *eps, true)?
            }
            NormLayer::Group { eps, groups, weight, bias } => {
                xs.f_group_norm(*groups, Some(weight), Some(bias), *eps, true)?
            }
            NormLayer::Identity => xs.shallow_clone(),
        })
    }
}
