//! The U-Net of Algorithm 1 (survey Section 2.2), written once for 1D, 2D and 3D data.
//!
//! ```text
//!  x ─ inc ─────────────────────────────────────────────── up_L ─ outc ─ φ ─ ŷ
//!         └ down_1 ──────────────────────────────── up_{L-1} ┘
//!                 └ …                                  … ┘
//!                    └ down_L (bottleneck) ─ up_1 ┘
//! ```
//! `inc` and every `down_i` are [`ConvBlock`]s (`down_i` after a 2× down-sampling); every
//! `up_i` doubles the resolution, fuses the matching skip (concat / add / none) and applies a
//! [`ConvBlock`]; `outc` is a 1×…×1 convolution followed by the final activation φ.
//!
//! Run the reference reproduction with `cargo xtask reproduce unet2015`.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::attention::{Attention, AttentionConfig, AttentionGate};
use crate::blocks::{ConvBlock, ConvBlockConfig, Padding};
use crate::layers::resample::{avg_pool, center_crop, interpolate2x, max_pool};
use crate::layers::{check_dims, Activation, ConvNd, ConvOptions, Downsample, Norm, Upsample};
use crate::skip::{FreeU, ResPath};
use crate::{Error, Result};

/// How a decoder level fuses the encoder feature map of the same resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SkipFusion {
    /// `cat([skip, up], dim=1)` (Algorithm 1 line 14, Eq. 4).
    #[default]
    Concat,
    /// `skip + up` (LinkNet-style); channels must match, which they do by construction.
    Add,
    /// No skip at all: a plain encoder-decoder, for the Fig. 6 ablation.
    None,
    /// Concatenation of the skip after an additive attention gate driven by the decoder
    /// feature (Attention U-Net, Oktay 2018): `up{i}.att`.
    AttentionGated,
    /// Concatenation of the skip after a MultiResUNet ResPath (Ibtehaz 2020) of
    /// `depth - level` residual units: `up{i}.respath`.
    ResPath,
}

/// Activation φ applied to the 1×…×1 output convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FinalActivation {
    /// Raw outputs (logits, or regression / generative outputs).
    #[default]
    Identity,
    /// Per-channel probabilities.
    Sigmoid,
    /// Outputs in (-1, 1), the usual range of generated images.
    Tanh,
    /// A distribution over the output channels at every position (segmentation).
    Softmax,
}

impl FinalActivation {
    /// Applies φ to head outputs `[N, C, *S]` (soft-max over the channel axis).
    pub fn apply(&self, logits: &Tensor) -> Result<Tensor> {
        Ok(match self {
            FinalActivation::Identity => logits.shallow_clone(),
            FinalActivation::Sigmoid => logits.sigmoid(),
            FinalActivation::Tanh => logits.tanh(),
            FinalActivation::Softmax => logits.f_softmax(1, logits.kind())?,
        })
    }
}

/// Configuration of a [`UNet`]. `UNetConfig::default()` is exactly Algorithm 1 of the survey:
/// 2D, four 2×2 max-pool levels plus the bottleneck, `(Conv3×3 → BN → ReLU) × 2` per level,
/// 2×2 up-convolutions, concatenation skips, 1×1 head with identity φ, channels 64…1024.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Spatial rank: 1 (signals, sequences), 2 (images) or 3 (volumes, video). Default 2.
    pub dims: usize,
    /// Input channels. Default 1.
    pub in_channels: i64,
    /// Output channels. Default 1.
    pub out_channels: i64,
    /// Channels of each resolution level, finest first; the last entry is the bottleneck, so
    /// the depth (number of down-samplings) is `channels.len() - 1`.
    /// Default `[64, 128, 256, 512, 1024]` (Ronneberger 2015).
    pub channels: Vec<i64>,
    /// The conv block used at every level.
    pub block: ConvBlockConfig,
    /// Down-sampling between levels. Default max pooling.
    pub downsample: Downsample,
    /// Up-sampling between levels. Default transposed convolution.
    pub upsample: Upsample,
    /// Skip fusion. Default concatenation.
    pub skip: SkipFusion,
    /// Final activation φ. Default identity.
    pub final_activation: FinalActivation,
    /// Levels (0 = full resolution, `depth` = bottleneck) whose conv blocks are followed by
    /// multi-head spatial self-attention (`…attention`), in the encoder and the decoder.
    /// Default none.
    #[serde(default)]
    pub attention_levels: Vec<usize>,
    /// Width of each attention head. Default 32 (one head below 32 channels).
    #[serde(default = "default_head_dim")]
    pub attention_head_dim: i64,
}

fn default_head_dim() -> i64 {
    32
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            dims: 2,
            in_channels: 1,
            out_channels: 1,
            channels: vec![64, 128, 256, 512, 1024],
            block: ConvBlockConfig::default(),
            downsample: Downsample::MaxPool,
            upsample: Upsample::TransposedConv,
            skip: SkipFusion::Concat,
            final_activation: FinalActivation::Identity,
            attention_levels: Vec::new(),
            attention_head_dim: default_head_dim(),
        }
    }
}

impl UNetConfig {
    /// The original U-Net of Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
    /// Biomedical Image Segmentation", MICCAI 2015 (arXiv:1505.04597), Fig. 1: one input
    /// channel, unpadded 3×3 convolutions with bias and ReLU (no normalisation), 64 → 1024
    /// channels over four 2×2 max-pool levels, 2×2 up-convolutions halving the channels,
    /// crop-and-concat, and a 1×1 convolution to two classes with a pixel-wise soft-max.
    /// 23 convolutional layers, 31,030,658 parameters.
    pub fn ronneberger2015() -> Self {
        Self {
            in_channels: 1,
            out_channels: 2,
            block: ConvBlockConfig {
                kernel_size: 3,
                padding: Padding::Valid,
                norm: Norm::None,
                activation: Activation::ReLU,
                bias: true,
            },
            final_activation: FinalActivation::Softmax,
            ..Self::default()
        }
    }

    /// Algorithm 1 with `depth` down-sampling levels and `base` channels at full resolution
    /// (doubling per level), for `dims`-dimensional data.
    pub fn algorithm1(dims: usize, base: i64, depth: usize) -> Self {
        Self { dims, channels: (0..=depth).map(|i| base << i).collect(), ..Self::default() }
    }

    /// Number of down-sampling steps (`channels.len() - 1`).
    pub fn depth(&self) -> usize {
        self.channels.len().saturating_sub(1)
    }

    /// Checks every field; called by [`UNet::new`].
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.in_channels <= 0 {
            return Err(Error::config("in_channels", self.in_channels, "must be positive"));
        }
        if self.out_channels <= 0 {
            return Err(Error::config("out_channels", self.out_channels, "must be positive"));
        }
        if self.channels.len() < 2 {
            return Err(Error::config(
                "channels",
                &self.channels,
                format!(
                    "a U-Net needs at least one down-sampling level (depth >= 1), got depth {}",
                    self.depth()
                ),
            ));
        }
        if let Some(c) = self.channels.iter().find(|&&c| c <= 0) {
            return Err(Error::config(
                "channels",
                &self.channels,
                format!("channel counts must be positive, found {c}"),
            ));
        }
        self.block.validate()?;
        for &c in &self.channels {
            self.block.norm.validate(c)?;
        }
        if let Some(&l) = self.attention_levels.iter().find(|&&l| l > self.depth()) {
            return Err(Error::config(
                "attention_levels",
                &self.attention_levels,
                format!("level {l} does not exist (depth {})", self.depth()),
            ));
        }
        if self.attention_head_dim <= 0 {
            return Err(Error::config(
                "attention_head_dim",
                self.attention_head_dim,
                "must be positive",
            ));
        }
        if !self.attention_levels.is_empty() && self.block.padding == Padding::Valid {
            return Err(Error::config(
                "attention_levels",
                &self.attention_levels,
                "attention is only supported with same padding",
            ));
        }
        if self.final_activation == FinalActivation::Softmax && self.out_channels < 2 {
            return Err(Error::config(
                "final_activation",
                self.final_activation,
                format!(
                    "softmax over {} output channel is constant; use Sigmoid",
                    self.out_channels
                ),
            ));
        }
        Ok(())
    }

    /// The output spatial size for an input of size `n` on one axis, or the reason it is
    /// impossible. Under same padding the size is kept; under valid padding it shrinks.
    pub fn output_size(&self, n: i64) -> std::result::Result<i64, String> {
        let depth = self.depth() as u32;
        match self.block.padding {
            Padding::Same => {
                let m = 1i64 << depth;
                if n < m || n % m != 0 {
                    Err(format!("{n} is not a positive multiple of {m}"))
                } else {
                    Ok(n)
                }
            }
            Padding::Valid => {
                let r = self.block.shrink();
                let mut s = n;
                for level in 0..depth {
                    s -= r;
                    if s < 2 || s % 2 != 0 {
                        return Err(format!(
                            "before pooling at level {level} the size is {s}, which must be even and >= 2"
                        ));
                    }
                    s /= 2;
                }
                s -= r;
                if s < 1 {
                    return Err(format!("the bottleneck size would be {s}"));
                }
                for level in (0..depth).rev() {
                    s = 2 * s - r;
                    if s < 1 {
                        return Err(format!("decoder level {level} would have size {s}"));
                    }
                }
                Ok(s)
            }
        }
    }

    /// The smallest input size whose output size is at least `min_output` (valid padding), or
    /// the smallest multiple of `2^depth` not below it (same padding).
    pub fn input_size_for_output(&self, min_output: i64) -> i64 {
        let mut n = min_output.max(1);
        loop {
            if let Ok(o) = self.output_size(n) {
                if o >= min_output {
                    return n;
                }
            }
            n += 1;
        }
    }

    fn check_spatial(&self, axis: usize, n: i64) -> Result<()> {
        match self.output_size(n) {
            Ok(_) => Ok(()),
            Err(reason) => {
                let below = (1..n).rev().find(|&m| self.output_size(m).is_ok());
                let above = (n + 1..).find(|&m| self.output_size(m).is_ok()).unwrap_or(n);
                match self.block.padding {
                    Padding::Same => {
                        let multiple = 1i64 << self.depth();
                        Err(Error::InputNotDivisible {
                            axis,
                            size: n,
                            multiple,
                            depth: self.depth(),
                            below: below.unwrap_or(multiple),
                            above,
                        })
                    }
                    Padding::Valid => {
                        Err(Error::InvalidValidSize { axis, size: n, reason, below, above })
                    }
                }
            }
        }
    }
}

/// Decoder up-sampling layer (`up_i.up`).
#[derive(Debug)]
enum UpLayer {
    /// `up_i.up` = `ConvTransposeNd(c_in, c_out, 2, stride=2)`.
    Transposed(ConvNd),
    /// `up_i.up` = `Sequential(Upsample, ConvNd(c_in, c_out, 1))`, the conv at `up_i.up.1`.
    Interpolate(crate::layers::InterpolationMode, ConvNd),
}

/// One decoder level: up-sample, fuse the skip, conv block, optional attention.
#[derive(Debug)]
struct Up {
    up: UpLayer,
    gate: Option<AttentionGate>,
    respath: Option<ResPath>,
    conv: ConvBlock,
    attention: Option<Attention>,
}

/// One encoder level after the first: down-sample, conv block (`down_i.maxpool_conv`),
/// optional attention.
#[derive(Debug)]
struct Down {
    strided: Option<ConvNd>,
    conv: ConvBlock,
    attention: Option<Attention>,
}

/// A dimension-generic U-Net. Build with [`UNet::new`], run with [`UNet::forward_t`].
///
/// Variable names (the state dict) follow milesial/Pytorch-UNet: `inc.double_conv.*`,
/// `down{i}.maxpool_conv.1.double_conv.*`, `up{i}.up.*`, `up{i}.conv.double_conv.*`,
/// `outc.conv.*`, with `i` counted from 1 (`up1` is the coarsest decoder level).
#[derive(Debug)]
pub struct UNet {
    cfg: UNetConfig,
    inc: ConvBlock,
    inc_attention: Option<Attention>,
    downs: Vec<Down>,
    ups: Vec<Up>,
    outc: ConvNd,
    freeu: Option<FreeU>,
}

impl UNet {
    /// Validates `cfg` and creates all variables under `path`.
    pub fn new(path: &nn::Path, cfg: &UNetConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dims;
        let ch = &cfg.channels;
        let depth = cfg.depth();
        let inc = ConvBlock::new(path / "inc", d, cfg.in_channels, ch[0], &cfg.block)?;
        let attention = |p: nn::Path, level: usize| -> Result<Option<Attention>> {
            if !cfg.attention_levels.contains(&level) {
                return Ok(None);
            }
            let c = ch[level];
            let dim_head = cfg.attention_head_dim.min(c);
            if c % dim_head != 0 {
                return Err(Error::config(
                    "attention_head_dim",
                    cfg.attention_head_dim,
                    format!("must divide the {c} channels of level {level}"),
                ));
            }
            let groups = (1..=32).rev().find(|g| c % g == 0).unwrap_or(1);
            Ok(Some(Attention::new(p, c, &AttentionConfig::spatial(c, dim_head, groups, 1e-5))?))
        };
        let inc_attention = attention(path / "inc" / "attention", 0)?;
        let mut downs = Vec::with_capacity(depth);
        for i in 1..=depth {
            let p = path / format!("down{i}") / "maxpool_conv";
            let strided = match cfg.downsample {
                Downsample::StridedConv => {
                    let opts =
                        ConvOptions { kernel: 2, stride: 2, padding: 0, ..Default::default() };
                    Some(ConvNd::new(&p / 0, d, ch[i - 1], ch[i - 1], opts)?)
                }
                Downsample::MaxPool | Downsample::AvgPool => None,
            };
            let conv = ConvBlock::new(&p / 1, d, ch[i - 1], ch[i], &cfg.block)?;
            let attention = attention(path / format!("down{i}") / "attention", i)?;
            downs.push(Down { strided, conv, attention });
        }
        let mut ups = Vec::with_capacity(depth);
        for (k, level) in (0..depth).rev().enumerate() {
            // Decoder level `level` goes from ch[level + 1] to ch[level] channels.
            let p = path / format!("up{}", k + 1);
            let (cin, cout) = (ch[level + 1], ch[level]);
            let up = match cfg.upsample {
                Upsample::TransposedConv => {
                    let opts = ConvOptions {
                        kernel: 2,
                        stride: 2,
                        padding: 0,
                        bias: true,
                        transposed: true,
                    };
                    UpLayer::Transposed(ConvNd::new(&p / "up", d, cin, cout, opts)?)
                }
                Upsample::Interpolate(mode) => UpLayer::Interpolate(
                    mode,
                    ConvNd::new(&p / "up" / 1, d, cin, cout, ConvOptions::valid(1))?,
                ),
            };
            let fused = match cfg.skip {
                SkipFusion::Concat | SkipFusion::AttentionGated | SkipFusion::ResPath => 2 * cout,
                SkipFusion::Add | SkipFusion::None => cout,
            };
            let gate = match cfg.skip {
                SkipFusion::AttentionGated => Some(AttentionGate::new(
                    &p / "att",
                    d,
                    cout,
                    cout,
                    (cout / 2).max(1),
                    cfg.block.norm,
                )?),
                _ => None,
            };
            let respath = match cfg.skip {
                SkipFusion::ResPath => {
                    Some(ResPath::new(&p / "respath", d, cout, depth - level, cfg.block.norm)?)
                }
                _ => None,
            };
            let conv = ConvBlock::new(&p / "conv", d, fused, cout, &cfg.block)?;
            let attention = attention(&p / "attention", level)?;
            ups.push(Up { up, gate, respath, conv, attention });
        }
        let outc =
            ConvNd::new(path / "outc" / "conv", d, ch[0], cfg.out_channels, ConvOptions::valid(1))?;
        let net = Self { cfg: cfg.clone(), inc, inc_attention, downs, ups, outc, freeu: None };
        // Channels-last on the CPU for 2D nets without self-attention (whose reshapes want
        // contiguous maps): the same values; the Algorithm 1 U-Net's inference ran ~20 % and
        // its train step a few % faster in `cargo xtask bench-vs-pytorch` (docs/perf/README.md).
        // Outputs are returned contiguous.
        if d == 2 && path.device() == tch::Device::Cpu && cfg.attention_levels.is_empty() {
            net.set_channels_last()?;
        }
        Ok(net)
    }

    fn set_channels_last(&self) -> Result<()> {
        self.inc.set_channels_last()?;
        for down in &self.downs {
            if let Some(c) = &down.strided {
                c.set_channels_last()?;
            }
            down.conv.set_channels_last()?;
        }
        for up in &self.ups {
            match &up.up {
                UpLayer::Transposed(c) | UpLayer::Interpolate(_, c) => c.set_channels_last()?,
            }
            up.conv.set_channels_last()?;
        }
        self.outc.set_channels_last()
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// Enables (or disables with `None`) FreeU re-weighting in the two coarsest decoder levels
    /// (Si et al. 2023); `FreeU::identity()` leaves outputs unchanged.
    pub fn set_freeu(&mut self, freeu: Option<FreeU>) {
        self.freeu = freeu;
    }

    /// Channels of the tensors [`UNet::forward_with_control`] adds: one per skip (levels
    /// 0..depth) and the bottleneck last.
    pub fn control_channels(&self) -> Vec<i64> {
        self.cfg.channels.clone()
    }

    /// Checks that `xs` fits the network, returning the output shape it will produce.
    pub fn output_shape(&self, input: &[i64]) -> Result<Vec<i64>> {
        let d = self.cfg.dims;
        if input.len() != d + 2 || input[1] != self.cfg.in_channels {
            return Err(Error::InputShape {
                shape: input.to_vec(),
                expected: format!(
                    "[N, {}, {}] ({}D data)",
                    self.cfg.in_channels,
                    vec!["S"; d].join(", "),
                    d
                ),
            });
        }
        let mut out = vec![input[0], self.cfg.out_channels];
        for (axis, &n) in input[2..].iter().enumerate() {
            self.cfg.check_spatial(axis, n)?;
            out.push(self.cfg.output_size(n).unwrap_or(n));
        }
        Ok(out)
    }

    /// Runs the network; `train` switches batch norm between batch and running statistics.
    ///
    /// # Shapes
    /// - `xs`: `[N, in_channels, *S]` with `S` of length `dims`.
    /// - returns `[N, out_channels, *S_out]`; `S_out = S` under same padding, and
    ///   [`UNetConfig::output_size`] of `S` under valid padding.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(xs, train, self.cfg.final_activation, None)
    }

    /// [`UNet::forward_t`] with ControlNet-style residuals: `control[l]` (`[N, c_l, *S/2^l]`)
    /// is added to the skip of level `l`, and the last entry to the bottleneck output. Use
    /// [`crate::skip::ZeroInjection`] to produce them from a control branch.
    pub fn forward_with_control(
        &self,
        xs: &Tensor,
        train: bool,
        control: &[Tensor],
    ) -> Result<Tensor> {
        let want = self.cfg.depth() + 1;
        if control.len() != want {
            return Err(Error::config(
                "control",
                control.len(),
                format!("expected {want} residuals (one per level)"),
            ));
        }
        self.forward_with(xs, train, self.cfg.final_activation, Some(control))
    }

    /// The output (with φ) and the bottleneck features `[N, c_depth, *S/2^depth]`, e.g. for a
    /// global head on the encoder (U-Net discriminators).
    pub fn forward_with_bottleneck(&self, xs: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (out, bottleneck) = self.forward_inner(xs, train, self.cfg.final_activation, None)?;
        Ok((out, bottleneck.f_contiguous()?))
    }

    fn forward_with(
        &self,
        xs: &Tensor,
        train: bool,
        phi: FinalActivation,
        control: Option<&[Tensor]>,
    ) -> Result<Tensor> {
        Ok(self.forward_inner(xs, train, phi, control)?.0)
    }

    fn forward_inner(
        &self,
        xs: &Tensor,
        train: bool,
        phi: FinalActivation,
        control: Option<&[Tensor]>,
    ) -> Result<(Tensor, Tensor)> {
        self.output_shape(&xs.size())?;
        let d = self.cfg.dims;

        // 1. Contracting path (Algorithm 1 lines 2-9): a conv block at full resolution, then
        //    `depth` × (down-sample → conv block). Every level's output before down-sampling
        //    is pushed on the skip stack.
        let mut skips: Vec<Tensor> = Vec::with_capacity(self.downs.len());
        let mut h = self.inc.forward_t(xs, train)?; // [N, c0, *S]
        if let Some(a) = &self.inc_attention {
            h = a.forward_map(&h, None)?;
        }
        for down in &self.downs {
            let pooled = match (&down.strided, self.cfg.downsample) {
                (Some(conv), _) => conv.forward(&h)?,
                (None, Downsample::AvgPool) => avg_pool(&h, d)?,
                (None, _) => max_pool(&h, d)?,
            }; // [N, c_{i-1}, *S/2^i]
            skips.push(h);
            h = down.conv.forward_t(&pooled, train)?; // [N, c_i, *S/2^i]
            if let Some(a) = &down.attention {
                h = a.forward_map(&h, None)?;
            }
        }
        if let Some(c) = control {
            // ControlNet residuals: one per skip, the last one on the bottleneck.
            for (s, r) in skips.iter_mut().zip(c) {
                *s = s.f_add(r)?;
            }
            h = h.f_add(&c[c.len() - 1])?;
        }
        // 2. Bottleneck (lines 10-11) is the last down level; `h` is [N, c_depth, *S/2^depth].
        let bottleneck = h.shallow_clone();

        // 3. Expansive path (lines 12-18): pop skips coarsest first.
        for (stage, up) in self.ups.iter().enumerate() {
            let u = match &up.up {
                UpLayer::Transposed(conv) => conv.forward(&h)?,
                UpLayer::Interpolate(mode, conv) => conv.forward(&interpolate2x(&h, d, *mode)?)?,
            }; // [N, c_level, *2S']
            let skip = skips.pop().ok_or_else(|| {
                Error::config("skips", stage, "decoder level without a matching skip")
            })?;
            let spatial = u.size()[2..].to_vec();
            let skip = center_crop(&skip, &spatial)?;
            let (u, skip) = match &self.freeu {
                Some(f) => f.apply(stage, &u, &skip)?,
                None => (u, skip),
            };
            let fused = match self.cfg.skip {
                SkipFusion::Concat => Tensor::f_cat(&[skip, u], 1)?,
                SkipFusion::AttentionGated => {
                    let gate = up
                        .gate
                        .as_ref()
                        .ok_or_else(|| Error::config("skip", stage, "no attention gate built"))?;
                    Tensor::f_cat(&[gate.forward_t(&u, &skip, train)?, u], 1)?
                }
                SkipFusion::ResPath => {
                    let rp = up
                        .respath
                        .as_ref()
                        .ok_or_else(|| Error::config("skip", stage, "no ResPath built"))?;
                    Tensor::f_cat(&[rp.forward_t(&skip, train)?, u], 1)?
                }
                SkipFusion::Add => skip.f_add(&u)?,
                SkipFusion::None => u,
            }; // [N, 2·c_level or c_level, *2S']
            h = up.conv.forward_t(&fused, train)?; // [N, c_level, *2S' - shrink]
            if let Some(a) = &up.attention {
                h = a.forward_map(&h, None)?;
            }
        }

        // 4. Output head (line 19): 1×…×1 conv and φ.
        let logits = self.outc.forward(&h)?.f_contiguous()?; // [N, out_channels, *S_out]
        Ok((phi.apply(&logits)?, bottleneck))
    }

    /// Runs the network without its final activation φ (logits), e.g. for a cross-entropy
    /// loss that applies its own log-softmax. Same shapes as [`UNet::forward_t`].
    pub fn forward_logits_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(xs, train, FinalActivation::Identity, None)
    }
}
