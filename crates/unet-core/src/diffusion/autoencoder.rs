//! A small KL autoencoder (Rombach et al. 2022's first stage, scaled down) for latent
//! diffusion, written for any rank: encoder → (mean, log-variance) of a latent with
//! `latent_channels` channels at `1/2^(levels−1)` resolution → decoder.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::layers::resample::interpolate2x;
use crate::layers::{ConvGeometry, ConvNd, ConvOptions, InterpolationMode, Norm, NormLayer};
use crate::resnet::{ResnetBlock, ResnetBlockConfig};
use crate::{Error, Result};

/// Configuration of an [`Autoencoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// Spatial rank.
    pub dims: usize,
    /// Data channels.
    pub in_channels: i64,
    /// Channels per level (each level after the first halves the resolution).
    pub channels: Vec<i64>,
    /// Latent channels.
    pub latent_channels: i64,
    /// Group-norm groups.
    pub norm_groups: i64,
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self { dims: 2, in_channels: 1, channels: vec![32, 64], latent_channels: 4, norm_groups: 8 }
    }
}

/// KL-regularised autoencoder: `encoder.*`, `quant_conv`, `decoder.*` (diffusers-like names).
#[derive(Debug)]
pub struct Autoencoder {
    enc_in: ConvNd,
    enc_blocks: Vec<(ResnetBlock, Option<ConvNd>)>,
    enc_norm: NormLayer,
    enc_out: ConvNd,
    dec_in: ConvNd,
    dec_blocks: Vec<(ResnetBlock, Option<ConvNd>)>,
    dec_norm: NormLayer,
    dec_out: ConvNd,
    cfg: AutoencoderConfig,
}

impl Autoencoder {
    /// Builds the autoencoder under `path`.
    pub fn new(path: &nn::Path, cfg: &AutoencoderConfig) -> Result<Self> {
        if cfg.channels.is_empty() || cfg.latent_channels <= 0 {
            return Err(Error::config(
                "channels",
                &cfg.channels,
                "need at least one level and latent channels > 0",
            ));
        }
        let d = cfg.dims;
        let ch = &cfg.channels;
        let n = ch.len();
        let rc = ResnetBlockConfig {
            norm: Norm::Group { groups: cfg.norm_groups },
            eps: 1e-6,
            ..Default::default()
        };
        let same3 = ConvOptions::same(3);
        let e = path / "encoder";
        let enc_in = ConvNd::new(&e / "conv_in", d, cfg.in_channels, ch[0], same3)?;
        let mut enc_blocks = Vec::new();
        for i in 0..n {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let block = ResnetBlock::new(&e / "down" / i / "block", d, cin, ch[i], &rc)?;
            let down = if i + 1 < n {
                let geo = ConvGeometry { stride: vec![2; d], ..ConvGeometry::uniform(d, same3) };
                Some(ConvNd::with_geometry(&e / "down" / i / "downsample", d, ch[i], ch[i], geo)?)
            } else {
                None
            };
            enc_blocks.push((block, down));
        }
        let enc_norm = NormLayer::with_eps(
            &e / "norm_out",
            Norm::Group { groups: cfg.norm_groups },
            ch[n - 1],
            1e-6,
        )?;
        let enc_out = ConvNd::new(&e / "conv_out", d, ch[n - 1], 2 * cfg.latent_channels, same3)?;
        let dd = path / "decoder";
        let dec_in = ConvNd::new(&dd / "conv_in", d, cfg.latent_channels, ch[n - 1], same3)?;
        let mut dec_blocks = Vec::new();
        for (k, i) in (0..n).rev().enumerate() {
            let cin = if k == 0 { ch[n - 1] } else { ch[i + 1] };
            let block = ResnetBlock::new(&dd / "up" / k / "block", d, cin, ch[i], &rc)?;
            let up = if i > 0 {
                Some(ConvNd::new(&dd / "up" / k / "upsample", d, ch[i], ch[i], same3)?)
            } else {
                None
            };
            dec_blocks.push((block, up));
        }
        let dec_norm = NormLayer::with_eps(
            &dd / "norm_out",
            Norm::Group { groups: cfg.norm_groups },
            ch[0],
            1e-6,
        )?;
        let dec_out = ConvNd::new(&dd / "conv_out", d, ch[0], cfg.in_channels, same3)?;
        Ok(Self {
            enc_in,
            enc_blocks,
            enc_norm,
            enc_out,
            dec_in,
            dec_blocks,
            dec_norm,
            dec_out,
            cfg: cfg.clone(),
        })
    }

    /// Down-sampling factor per axis (`2^(levels−1)`).
    pub fn factor(&self) -> i64 {
        1 << (self.cfg.channels.len() - 1)
    }

    /// `x` `[B, C, *S]` → `(mean, logvar)`, each `[B, latent, *S/factor]`.
    pub fn encode(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let mut h = self.enc_in.forward(x)?;
        for (block, down) in &self.enc_blocks {
            h = block.forward_t(&h, None, train)?;
            if let Some(dn) = down {
                h = dn.forward(&h)?;
            }
        }
        let h = self.enc_out.forward(&self.enc_norm.forward_t(&h, train)?.silu())?;
        let parts = h.f_chunk(2, 1)?;
        Ok((parts[0].shallow_clone(), parts[1].clamp(-30.0, 20.0)))
    }

    /// `z` → reconstruction.
    pub fn decode(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.dec_in.forward(z)?;
        for (block, up) in &self.dec_blocks {
            h = block.forward_t(&h, None, train)?;
            if let Some(u) = up {
                h = u.forward(&interpolate2x(&h, self.cfg.dims, InterpolationMode::Nearest)?)?;
            }
        }
        self.dec_out.forward(&self.dec_norm.forward_t(&h, train)?.silu())
    }

    /// Reconstruction MSE and KL divergence to N(0, I) (per element means) of a batch, with a
    /// reparameterised latent sample.
    pub fn loss(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mean, logvar) = self.encode(x, true)?;
        let z = &mean + (&logvar * 0.5).exp() * Tensor::randn_like(&mean);
        let recon = (self.decode(&z, true)? - x).square().mean(Kind::Float);
        let kl = ((mean.square() + logvar.exp() - 1.0 - &logvar) * 0.5).mean(Kind::Float);
        Ok((recon, kl))
    }
}
