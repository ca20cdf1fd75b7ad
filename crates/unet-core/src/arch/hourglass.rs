//! The HourGlass/U-Net hybrid with soft-gated skip connections of Bulat, Kossaifi,
//! Tzimiropoulos & Pantic 2020 ("Toward fast and accurate human pose estimation via soft-gated
//! skip connections", FG 2020), for any spatial rank.
//!
//! * **Block** ([`GatedBlock`]): the hierarchical, parallel and multi-scale block of Bulat &
//!   Tzimiropoulos 2017: three pre-activated (BN → ReLU → conv 3) convolutions in a chain with
//!   `C/2`, `C/4`, `C/4` outputs, concatenated back to `C` channels; the identity path is
//!   scaled per channel by a learnable **soft gate** α (`y = α ⊙ x + F(x)`; α starts at 1,
//!   a plain residual block). A 1×1 projection replaces the identity when the width changes.
//! * **Hybrid hourglass** ([`HourglassConfig::hybrid`]): at each of `depth` levels the encoder
//!   output is *concatenated* with the up-sampled decoder features and fused by a block
//!   (U-Net style), instead of the HourGlass's residual branch *added* to them.
//! * **Stacks**: a stem (7×7 stride-2 conv, block, 2× max-pool, block: ¼ resolution), then
//!   `stacks` hourglasses, each followed by a head predicting one heatmap per joint and, between
//!   stacks, the intermediate-supervision re-injection of Newell et al. 2016.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::conv::{ConvNd, ConvOptions};
use crate::layers::norm::{Norm, NormLayer};
use crate::layers::resample::{interpolate2x, max_pool, InterpolationMode};
use crate::{Error, Result};

/// Configuration of [`HourglassUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourglassConfig {
    /// Spatial rank (2 for images).
    pub dims: usize,
    /// Input channels.
    pub in_channels: i64,
    /// Block width `C` (a multiple of 4).
    pub channels: i64,
    /// Stacked hourglasses.
    pub stacks: usize,
    /// Down-samplings inside each hourglass.
    pub depth: usize,
    /// Heatmaps (joints).
    pub joints: i64,
    /// Soft gates α on the identity paths (false: plain residual identity).
    pub gated: bool,
    /// U-Net concatenation at each level (false: the HourGlass's added residual branch).
    pub hybrid: bool,
}

impl HourglassConfig {
    /// The paper's model: 4 stacks of width 128 with 4 down-samplings, soft gates and the
    /// hybrid skips, 16 joints (MPII) from 256×256 images.
    pub fn bulat2020() -> Self {
        Self {
            dims: 2,
            in_channels: 3,
            channels: 128,
            stacks: 4,
            depth: 4,
            joints: 16,
            gated: true,
            hybrid: true,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        crate::layers::check_dims(self.dims)?;
        if self.channels < 4 || self.channels % 4 != 0 {
            return Err(Error::config(
                "channels",
                self.channels,
                "must be a positive multiple of 4",
            ));
        }
        if self.stacks == 0 || self.depth == 0 {
            return Err(Error::config(
                "stacks/depth",
                (self.stacks, self.depth),
                "need at least one stack and one down-sampling",
            ));
        }
        if self.joints < 1 || self.in_channels < 1 {
            return Err(Error::config(
                "joints/in_channels",
                (self.joints, self.in_channels),
                "must be positive",
            ));
        }
        Ok(())
    }

    /// Input sizes must divide by this (stem ÷4, then `depth` poolings).
    pub fn size_multiple(&self) -> i64 {
        4 << self.depth
    }
}

/// The gated hierarchical block (see the module docs).
#[derive(Debug)]
pub struct GatedBlock {
    norms: Vec<NormLayer>,
    convs: Vec<ConvNd>,
    alpha: Option<Tensor>,
    proj: Option<ConvNd>,
}

impl GatedBlock {
    /// A block from `cin` to `cout` channels under `path`.
    pub fn new(path: &nn::Path, dims: usize, cin: i64, cout: i64, gated: bool) -> Result<Self> {
        let widths = [cout / 2, cout / 4, cout - cout / 2 - cout / 4];
        let mut norms = Vec::new();
        let mut convs = Vec::new();
        let mut c = cin;
        for (i, &w) in widths.iter().enumerate() {
            norms.push(NormLayer::new(path / format!("bn{}", i + 1), Norm::Batch, c)?);
            convs.push(ConvNd::new(
                path / format!("conv{}", i + 1),
                dims,
                c,
                w,
                ConvOptions::same(3).bias(false),
            )?);
            c = w;
        }
        let proj = (cin != cout)
            .then(|| ConvNd::new(path / "downsample", dims, cin, cout, ConvOptions::same(1)))
            .transpose()?;
        let alpha = gated.then(|| path.ones("alpha", &[cout]));
        Ok(Self { norms, convs, alpha, proj })
    }

    /// `α ⊙ identity(x) + concat(conv1, conv2, conv3)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(3);
        let mut h = x.shallow_clone();
        for (n, c) in self.norms.iter().zip(&self.convs) {
            h = c.forward(&n.forward_t(&h, train)?.relu())?;
            outs.push(h.shallow_clone());
        }
        let f = Tensor::cat(&outs, 1);
        let id = match &self.proj {
            Some(p) => p.forward(x)?,
            None => x.shallow_clone(),
        };
        let id = match &self.alpha {
            Some(a) => {
                let mut shape = vec![1, a.size()[0]];
                shape.extend(std::iter::repeat_n(1, x.dim() - 2));
                id * a.view(shape.as_slice())
            }
            None => id,
        };
        Ok(id + f)
    }
}

/// One hourglass level: encoder block, the coarser level (or the bottleneck), and the fusion.
#[derive(Debug)]
struct Level {
    down: GatedBlock,
    inner: Option<Box<Level>>,
    bottleneck: Option<GatedBlock>,
    up: GatedBlock,
    /// Hybrid: fuses concat(skip, up) back to `C`; HourGlass: the skip branch's block.
    skip: GatedBlock,
}

impl Level {
    fn new(path: &nn::Path, cfg: &HourglassConfig, level: usize) -> Result<Self> {
        let (d, c, g) = (cfg.dims, cfg.channels, cfg.gated);
        let inner =
            (level > 1).then(|| Level::new(&(path / "inner"), cfg, level - 1)).transpose()?;
        let bottleneck = (level == 1)
            .then(|| GatedBlock::new(&(path / "bottleneck"), d, c, c, g))
            .transpose()?;
        let skip_in = if cfg.hybrid { 2 * c } else { c };
        Ok(Self {
            down: GatedBlock::new(&(path / "down"), d, c, c, g)?,
            inner: inner.map(Box::new),
            bottleneck,
            up: GatedBlock::new(&(path / "up"), d, c, c, g)?,
            skip: GatedBlock::new(&(path / "skip"), d, skip_in, c, g)?,
        })
    }

    fn forward_t(&self, x: &Tensor, cfg: &HourglassConfig, train: bool) -> Result<Tensor> {
        let low = self.down.forward_t(&max_pool(x, cfg.dims)?, train)?;
        let low = match (&self.inner, &self.bottleneck) {
            (Some(inner), _) => inner.forward_t(&low, cfg, train)?,
            (None, Some(b)) => b.forward_t(&low, train)?,
            (None, None) => low,
        };
        let up =
            interpolate2x(&self.up.forward_t(&low, train)?, cfg.dims, InterpolationMode::Nearest)?;
        if cfg.hybrid {
            self.skip.forward_t(&Tensor::cat(&[x, &up], 1), train)
        } else {
            Ok(self.skip.forward_t(x, train)? + up)
        }
    }
}

/// A stack's head: block, 1×1 conv + BN + ReLU, heatmaps; and the re-injection convs.
#[derive(Debug)]
struct Head {
    block: GatedBlock,
    lin: ConvNd,
    bn: NormLayer,
    heat: ConvNd,
    back: Option<(ConvNd, ConvNd)>,
}

/// Stacked hybrid hourglasses predicting joint heatmaps at ¼ of the input resolution.
#[derive(Debug)]
pub struct HourglassUNet {
    cfg: HourglassConfig,
    stem_conv: ConvNd,
    stem_bn: NormLayer,
    stem: [GatedBlock; 2],
    levels: Vec<Level>,
    heads: Vec<Head>,
}

impl HourglassUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &HourglassConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, c, g) = (cfg.dims, cfg.channels, cfg.gated);
        let stem_conv = ConvNd::new(
            path / "stem" / "conv",
            d,
            cfg.in_channels,
            c / 2,
            ConvOptions { kernel: 7, stride: 2, padding: 3, ..ConvOptions::default() },
        )?;
        let stem_bn = NormLayer::new(path / "stem" / "bn", Norm::Batch, c / 2)?;
        let stem = [
            GatedBlock::new(&(path / "stem" / "block1"), d, c / 2, c, g)?,
            GatedBlock::new(&(path / "stem" / "block2"), d, c, c, g)?,
        ];
        let mut levels = Vec::new();
        let mut heads = Vec::new();
        for s in 0..cfg.stacks {
            let p = path / "stacks" / s;
            levels.push(Level::new(&(&p / "hourglass"), cfg, cfg.depth)?);
            let last = s + 1 == cfg.stacks;
            let back = (!last)
                .then(|| -> Result<(ConvNd, ConvNd)> {
                    Ok((
                        ConvNd::new(&p / "feat_back", d, c, c, ConvOptions::same(1))?,
                        ConvNd::new(&p / "heat_back", d, cfg.joints, c, ConvOptions::same(1))?,
                    ))
                })
                .transpose()?;
            heads.push(Head {
                block: GatedBlock::new(&(&p / "head_block"), d, c, c, g)?,
                lin: ConvNd::new(&p / "lin", d, c, c, ConvOptions::same(1))?,
                bn: NormLayer::new(&p / "lin_bn", Norm::Batch, c)?,
                heat: ConvNd::new(&p / "heatmaps", d, c, cfg.joints, ConvOptions::same(1))?,
                back,
            });
        }
        Ok(Self { cfg: cfg.clone(), stem_conv, stem_bn, stem, levels, heads })
    }

    /// The configuration.
    pub fn config(&self) -> &HourglassConfig {
        &self.cfg
    }

    /// Heatmaps of every stack (intermediate supervision), `[B, joints, *S/4]` each.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let m = self.cfg.size_multiple();
        let s = x.size();
        if s.len() != self.cfg.dims + 2
            || s[1] != self.cfg.in_channels
            || s[2..].iter().any(|&n| n % m != 0 || n == 0)
        {
            return Err(Error::InputShape {
                shape: s,
                expected: format!(
                    "[B, {}, *S] with {} spatial axes, each a multiple of {m}",
                    self.cfg.in_channels, self.cfg.dims
                ),
            });
        }
        let h = self.stem_bn.forward_t(&self.stem_conv.forward(x)?, train)?.relu();
        let h = self.stem[0].forward_t(&h, train)?;
        let mut h = self.stem[1].forward_t(&max_pool(&h, self.cfg.dims)?, train)?;
        let mut outs = Vec::with_capacity(self.cfg.stacks);
        for (level, head) in self.levels.iter().zip(&self.heads) {
            let y = level.forward_t(&h, &self.cfg, train)?;
            let y = head.block.forward_t(&y, train)?;
            let y = head.bn.forward_t(&head.lin.forward(&y)?, train)?.relu();
            let heat = head.heat.forward(&y)?;
            if let Some((fb, hb)) = &head.back {
                h = h + fb.forward(&y)? + hb.forward(&heat)?;
            }
            outs.push(heat);
        }
        Ok(outs)
    }
}
