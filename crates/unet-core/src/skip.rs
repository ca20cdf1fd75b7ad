//! Skip-connection topologies beyond concatenation (survey Sections 2.2.3, 3.1, 8.2):
//! MultiResUNet's ResPath, FreeU re-weighting, and zero-initialised injection points for
//! ControlNet branches. Attention-gated skips use [`crate::attention::AttentionGate`].

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::layers::{ConvNd, ConvOptions, Norm, NormLayer};
use crate::{Error, Result};

/// FreeU (Si et al. 2023): at inference, scale half of the backbone channels by `b` and damp
/// the low-frequency band of the skip by `s` (Fourier domain), in the two coarsest decoder
/// stages. `b = 1, s = 1` is the identity. SD 1.5 recommendation: b1 1.5, b2 1.6, s1 0.9, s2 0.2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FreeU {
    /// Backbone factor of the coarsest decoder stage.
    pub b1: f64,
    /// Backbone factor of the second coarsest stage.
    pub b2: f64,
    /// Skip low-frequency factor of the coarsest stage.
    pub s1: f64,
    /// Skip low-frequency factor of the second stage.
    pub s2: f64,
}

impl FreeU {
    /// The identity setting.
    pub fn identity() -> Self {
        Self { b1: 1.0, b2: 1.0, s1: 1.0, s2: 1.0 }
    }

    /// Re-weights backbone `h` and `skip` of decoder stage `stage` (0 = coarsest); stages
    /// beyond 1 are returned unchanged. As diffusers' `apply_freeu`.
    pub fn apply(&self, stage: usize, h: &Tensor, skip: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, s) = match stage {
            0 => (self.b1, self.s1),
            1 => (self.b2, self.s2),
            _ => return Ok((h.shallow_clone(), skip.shallow_clone())),
        };
        let c = h.size()[1];
        let half = c / 2;
        let h = if b == 1.0 {
            h.shallow_clone()
        } else {
            Tensor::f_cat(&[h.narrow(1, 0, half) * b, h.narrow(1, half, c - half)], 1)?
        };
        let skip = if s == 1.0 { skip.shallow_clone() } else { fourier_filter(skip, 1, s)? };
        Ok((h, skip))
    }
}

/// Scales the centred `2·threshold`-wide low-frequency cube of `x`'s spatial spectrum by
/// `scale` (FreeU's `fourier_filter`, any rank).
pub fn fourier_filter(x: &Tensor, threshold: i64, scale: f64) -> Result<Tensor> {
    let nd = x.dim() as i64;
    let axes: Vec<i64> = (2..nd).collect();
    let kind = x.kind();
    let xf = x.to_kind(Kind::Float);
    let freq = xf
        .f_fft_fftn(None::<&[i64]>, axes.as_slice(), "backward")?
        .f_fft_fftshift(axes.as_slice())?;
    let mut mask = Tensor::ones(x.size(), (Kind::Float, x.device()));
    let mut region = mask.shallow_clone();
    for &a in &axes {
        let n = x.size()[a as usize];
        let c = n / 2;
        let lo = (c - threshold).max(0);
        let hi = (c + threshold).min(n);
        region = region.narrow(a, lo, hi - lo);
    }
    let _ = region.fill_(scale);
    mask = mask.to_kind(Kind::Float);
    let out = (freq * mask)
        .f_fft_ifftshift(axes.as_slice())?
        .f_fft_ifftn(None::<&[i64]>, axes.as_slice(), "backward")?
        .real();
    Ok(out.to_kind(kind))
}

/// MultiResUNet's ResPath (Ibtehaz & Rahman 2020): `length` residual units on a skip, each
/// `norm(relu(conv3(x) + conv1(x)))`. Names: `{j}.conv`, `{j}.shortcut`, `{j}.norm`.
#[derive(Debug)]
pub struct ResPath {
    units: Vec<(ConvNd, ConvNd, NormLayer)>,
}

impl ResPath {
    /// A ResPath of `length` units over `channels`-wide maps of rank `dims`.
    pub fn new(
        path: nn::Path,
        dims: usize,
        channels: i64,
        length: usize,
        norm: Norm,
    ) -> Result<Self> {
        if length == 0 {
            return Err(Error::config("respath_length", length, "must be at least 1"));
        }
        let units = (0..length)
            .map(|j| {
                let p = &path / j;
                Ok((
                    ConvNd::new(&p / "conv", dims, channels, channels, ConvOptions::same(3))?,
                    ConvNd::new(&p / "shortcut", dims, channels, channels, ConvOptions::valid(1))?,
                    NormLayer::new(&p / "norm", norm, channels)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { units })
    }

    /// `[B, C, *S]` → `[B, C, *S]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (conv, shortcut, norm) in &self.units {
            h = norm.forward_t(&(conv.forward(&h)? + shortcut.forward(&h)?).relu(), train)?;
        }
        Ok(h)
    }
}

/// Zero-initialised 1×…×1 convolutions mapping control features to residuals for each skip
/// (ControlNet's `zero_convs`, Zhang 2023): at initialisation every residual is exactly zero,
/// so attaching a control branch leaves the base model's output unchanged.
#[derive(Debug)]
pub struct ZeroInjection {
    convs: Vec<ConvNd>,
}

impl ZeroInjection {
    /// One zero conv per entry of `channels` (`path/{i}`).
    pub fn new(path: nn::Path, dims: usize, channels: &[i64]) -> Result<Self> {
        let convs = channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut conv = ConvNd::new(&path / i, dims, c, c, ConvOptions::valid(1))?;
                conv.zero_();
                Ok(conv)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { convs })
    }

    /// Residuals for the given control features (one per conv, same order).
    pub fn forward(&self, features: &[Tensor]) -> Result<Vec<Tensor>> {
        if features.len() != self.convs.len() {
            return Err(Error::config(
                "control features",
                features.len(),
                format!("expected {}", self.convs.len()),
            ));
        }
        self.convs.iter().zip(features).map(|(c, f)| c.forward(f)).collect()
    }
}
