//! The pix2pix U-Net generator (Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with
//! Conditional Adversarial Networks", CVPR 2017, arXiv:1611.07004; Appendix 6.1.1), for any
//! spatial rank: `num_downs` 4×…×4 stride-2 convs (LeakyReLU 0.2, norm) down to 1×…×1, the
//! mirror-image transposed convs up (ReLU, norm, dropout 0.5 in the three innermost
//! 8·ngf decoder levels), each decoder level concatenated with its encoder input, tanh output.
//!
//! State-dict names are those of the official code's recursive `UnetSkipConnectionBlock`
//! (junyanz/pytorch-CycleGAN-and-pix2pix, `models/networks.py`): the outermost block is
//! `model.model.{0: downconv, 1: submodule, 3: upconv}`, a middle block `….model.{1: downconv,
//! 2: downnorm, 3: submodule, 5: upconv, 6: upnorm}`, the innermost `….model.{1: downconv,
//! 3: upconv, 4: upnorm}`, so its `latest_net_G.pth` weights load once converted to
//! safetensors. Pair it with [`crate::gan::PatchDiscriminator`] (the 70×70 PatchGAN).
//!
//! Build with `UnetGenerator::new(&vs.root(), &UnetGeneratorConfig::unet_256())`; the image
//! reproduction is `cargo xtask reproduce pix2pix`.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::{check_dims, ConvGeometry, ConvNd, Norm, NormLayer};
use crate::{Error, Result};

/// Configuration of an [`UnetGenerator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UnetGeneratorConfig {
    /// Spatial rank. Default 2.
    pub dims: usize,
    /// Input channels. Default 3.
    pub input_nc: i64,
    /// Output channels. Default 3.
    pub output_nc: i64,
    /// Number of stride-2 down-samplings; inputs must be `2^num_downs` on every axis. Default
    /// 8 (`unet_256`). At least 5 (the four outer levels have fixed widths).
    pub num_downs: usize,
    /// Filters of the outermost level. Default 64.
    pub ngf: i64,
    /// Norm of every level but the outermost (and innermost down). Default batch norm.
    pub norm: Norm,
    /// Dropout 0.5 in the `num_downs - 5` middle 8·ngf decoder levels. Default `true`.
    pub use_dropout: bool,
}

impl Default for UnetGeneratorConfig {
    fn default() -> Self {
        Self::unet_256()
    }
}

impl UnetGeneratorConfig {
    /// `--netG unet_256` of the official code: 256² RGB → RGB, 54,413,955 parameters.
    pub fn unet_256() -> Self {
        Self {
            dims: 2,
            input_nc: 3,
            output_nc: 3,
            num_downs: 8,
            ngf: 64,
            norm: Norm::Batch,
            use_dropout: true,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.num_downs < 5 {
            return Err(Error::config("num_downs", self.num_downs, "must be at least 5"));
        }
        if self.ngf <= 0 || self.input_nc <= 0 || self.output_nc <= 0 {
            return Err(Error::config(
                "ngf/input_nc/output_nc",
                (self.ngf, self.input_nc, self.output_nc),
                "must be positive",
            ));
        }
        for c in [self.ngf, 2 * self.ngf, 4 * self.ngf, 8 * self.ngf] {
            self.norm.validate(c)?;
        }
        Ok(())
    }

    /// The input side every spatial axis must have a multiple of.
    pub fn size_multiple(&self) -> i64 {
        1 << self.num_downs
    }
}

#[derive(Debug)]
struct Level {
    down: ConvNd,
    down_norm: Option<NormLayer>,
    up: ConvNd,
    up_norm: Option<NormLayer>,
    dropout: bool,
}

/// The pix2pix generator.
#[derive(Debug)]
pub struct UnetGenerator {
    cfg: UnetGeneratorConfig,
    /// Outermost first.
    levels: Vec<Level>,
}

impl UnetGenerator {
    /// Builds the generator under `path`.
    pub fn new(path: &nn::Path, cfg: &UnetGeneratorConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dims;
        let g = cfg.ngf;
        // A bias only where no batch norm follows (the official `use_bias`).
        let use_bias = matches!(cfg.norm, Norm::Instance | Norm::None);
        let geo = |bias: bool, transposed: bool| ConvGeometry {
            kernel: vec![4; d],
            stride: vec![2; d],
            padding: vec![1; d],
            dilation: vec![1; d],
            groups: 1,
            bias,
            transposed,
        };
        // (outer_nc, inner_nc, dropout) from the outermost level inwards.
        let mut widths = vec![(cfg.output_nc, g, false), (g, 2 * g, false), (2 * g, 4 * g, false)];
        widths.push((4 * g, 8 * g, false));
        for _ in 0..cfg.num_downs - 5 {
            widths.push((8 * g, 8 * g, cfg.use_dropout));
        }
        widths.push((8 * g, 8 * g, false)); // innermost
        let n = widths.len();
        let mut levels = Vec::with_capacity(n);
        let mut block = path / "model";
        for (k, &(outer, inner, dropout)) in widths.iter().enumerate() {
            let seq = &block / "model";
            let (outermost, innermost) = (k == 0, k + 1 == n);
            let input = if outermost { cfg.input_nc } else { outer };
            let level = if outermost {
                Level {
                    down: ConvNd::with_geometry(&seq / 0, d, input, inner, geo(use_bias, false))?,
                    down_norm: None,
                    up: ConvNd::with_geometry(&seq / 3, d, 2 * inner, outer, geo(true, true))?,
                    up_norm: None,
                    dropout: false,
                }
            } else if innermost {
                Level {
                    down: ConvNd::with_geometry(&seq / 1, d, input, inner, geo(use_bias, false))?,
                    down_norm: None,
                    up: ConvNd::with_geometry(&seq / 3, d, inner, outer, geo(use_bias, true))?,
                    up_norm: Some(NormLayer::new(&seq / 4, cfg.norm, outer)?),
                    dropout: false,
                }
            } else {
                Level {
                    down: ConvNd::with_geometry(&seq / 1, d, input, inner, geo(use_bias, false))?,
                    down_norm: Some(NormLayer::new(&seq / 2, cfg.norm, inner)?),
                    up: ConvNd::with_geometry(&seq / 5, d, 2 * inner, outer, geo(use_bias, true))?,
                    up_norm: Some(NormLayer::new(&seq / 6, cfg.norm, outer)?),
                    dropout,
                }
            };
            levels.push(level);
            block = &seq / if outermost { 1 } else { 3 };
        }
        Ok(Self { cfg: *cfg, levels })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &UnetGeneratorConfig {
        &self.cfg
    }

    /// # Shapes
    /// `[N, input_nc, *S]` → `[N, output_nc, *S]` in (-1, 1); every axis of `S` a multiple of
    /// `2^num_downs`. `train` enables dropout and batch statistics.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let size = x.size();
        let d = self.cfg.dims;
        if size.len() != d + 2 || size[1] != self.cfg.input_nc {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[N, {}, {d} spatial axes]", self.cfg.input_nc),
            });
        }
        let m = self.cfg.size_multiple();
        if let Some(s) = size[2..].iter().find(|&&s| s % m != 0) {
            return Err(Error::config("input size", s, format!("must be a multiple of {m}")));
        }
        // 1. Down: each level's input goes on the skip stack.
        let mut skips = Vec::with_capacity(self.levels.len());
        let mut h = x.shallow_clone();
        for (k, level) in self.levels.iter().enumerate() {
            skips.push(h.shallow_clone());
            let a = if k == 0 { h } else { h.maximum(&(&h * 0.2)) }; // LeakyReLU(0.2)
            h = level.down.forward(&a)?; // [N, inner, *S/2^(k+1)]
            if let Some(n) = &level.down_norm {
                h = n.forward_t(&h, train)?;
            }
        }
        // 2. Up: ReLU → transposed conv → norm (→ dropout), then concat with the level input.
        for (k, level) in self.levels.iter().enumerate().rev() {
            h = level.up.forward(&h.relu())?; // [N, outer, *S/2^k]
            if let Some(n) = &level.up_norm {
                h = n.forward_t(&h, train)?;
            }
            if level.dropout {
                h = h.f_dropout(0.5, train)?;
            }
            let input = skips.pop().ok_or_else(|| Error::config("levels", k, "skip missing"))?;
            h = if k == 0 { h.tanh() } else { Tensor::f_cat(&[input, h], 1)? };
        }
        Ok(h)
    }
}
