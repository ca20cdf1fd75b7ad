//! Wave-U-Net (Stoller, Ewert & Dixon, "Wave-U-Net: A Multi-Scale Neural Network for End-to-End
//! Audio Source Separation", ISMIR 2018, arXiv:1806.03185), used for speech enhancement by
//! Macartney & Weyde 2018 (arXiv:1811.11307), and its attention variant (Giri, Isik &
//! Krishnaswamy, "Attention Wave-U-Net for Speech Enhancement", WASPAA 2019), for any rank.
//!
//! ```text
//! x ─ conv15 ─ ↓2 ─ conv15 ─ ↓2 ─ … ─ conv15 (bottleneck)
//! │     └skip┐       └skip┐                │
//! │          │            └ crop ─ concat ─ conv5 ─ ↑2 (linear)
//! │          └ crop ─ concat ─ conv5 ─ ↑2 ─────────┘
//! └ crop ─ concat ─ conv1 ─ tanh
//! ```
//!
//! Level `i` (1-based) of the encoder has `Fc·i` filters of width `fd` (15); the decimation
//! keeps every other sample. The bottleneck has `Fc·(L+1)` filters. Each decoder level
//! up-samples by linear interpolation (`2n − 1` samples, corners aligned, as the official
//! `context` model), crops the matching encoder feature around its centre, concatenates and
//! applies a width-`fu` (5) convolution with `Fc·i` filters. All convolutions but the output
//! use LeakyReLU(0.2) (TensorFlow's default slope, the official code's activation). With
//! `context = true` the convolutions are unpadded ("valid") and the output is shorter than the
//! input: [`WaveUNet::output_len`] / [`WaveUNet::input_len_for`] give the geometry, and
//! [`WaveUNet::forward_same`] pads the input so that the output covers it.
//!
//! The attention variant gates every skip connection with an additive attention gate
//! (Oktay et al. 2018) whose gating signal is the up-sampled decoder feature, so the decoder
//! weights the encoder's features position by position before concatenating them.
//!
//! UNetGAN's generator (Hao et al. 2020) is the same network with zero-padded convolutions,
//! batch norm and a stack of dilated convolutions as bottleneck ([`WaveUNetConfig::hao2020`]).
//!
//! The official code is TensorFlow; state-dict names here are `down.{i}.{0: conv, 1: norm}`,
//! `bottleneck.{0,1}` (or `bottleneck.{j}.{0,1}` for a dilated stack), `up.{i}.{0,1}`
//! (outermost decoder level `0`), `gate.{i}` (`W_g`, `W_x`, `psi`) and `output`.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::attention::AttentionGate;
use crate::layers::{check_dims, ConvGeometry, ConvNd, ConvOptions, Norm, NormLayer};
use crate::{Error, Result};

/// Configuration of a [`WaveUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveUNetConfig {
    /// Spatial rank (1 for audio). Default 1.
    pub dims: usize,
    /// Input channels (1 mono, 2 stereo). Default 1.
    pub in_channels: i64,
    /// Output channels (one estimated source, mono). Default 1.
    pub out_channels: i64,
    /// Down-sampling levels `L`. Default 12.
    pub levels: usize,
    /// Filters added per level `Fc`. Default 24.
    pub filters_per_level: i64,
    /// Encoder kernel `fd`. Default 15.
    pub down_kernel: i64,
    /// Decoder kernel `fu`. Default 5.
    pub up_kernel: i64,
    /// Unpadded convolutions with crop-and-concat (the paper's best models). With `false`,
    /// convolutions are zero-padded and lengths must be multiples of `2^L`. Default `true`.
    pub context: bool,
    /// Intermediate width of the attention gate on every skip (`None`: plain Wave-U-Net;
    /// `Some(0)`: half the skip's width, as Oktay et al.).
    pub skip_attention: Option<i64>,
    /// Normalisation after every convolution but the output (none in the official code).
    pub norm: Norm,
    /// Negative slope of the LeakyReLU. Default 0.2.
    pub slope: f64,
    /// Dilations of a stack of same-padded width-`up_kernel` convolutions replacing the single
    /// bottleneck convolution (UNetGAN); empty: the plain bottleneck.
    pub bottleneck_dilations: Vec<i64>,
}

impl Default for WaveUNetConfig {
    fn default() -> Self {
        Self::stoller2018()
    }
}

impl WaveUNetConfig {
    /// Model M4/M5-style geometry of Stoller et al. 2018 as used for speech enhancement by
    /// Macartney & Weyde 2018, mono in and out: 10,263,002 parameters.
    pub fn stoller2018() -> Self {
        Self {
            dims: 1,
            in_channels: 1,
            out_channels: 1,
            levels: 12,
            filters_per_level: 24,
            down_kernel: 15,
            up_kernel: 5,
            context: true,
            skip_attention: None,
            norm: Norm::None,
            slope: 0.2,
            bottleneck_dilations: Vec::new(),
        }
    }

    /// The released configuration of Macartney & Weyde 2018 (their `Config.py`: the official
    /// code with zero-padded convolutions and two direct outputs, speech and noise):
    /// 10,263,028 parameters.
    pub fn macartney2018() -> Self {
        Self { context: false, out_channels: 2, ..Self::stoller2018() }
    }

    /// UNetGAN's generator (Hao et al. 2020) as read here: a zero-padded Wave-U-Net with batch
    /// norm and LeakyReLU(0.1) (the authors' Wave-U-Net baseline code), 9 levels (so the
    /// bottleneck of a 16384-sample input is 32 samples long) and the bottleneck replaced by
    /// dilated convolutions (dilations 1, 2, 4, 8). The paper's layer table was not available
    /// offline; see `docs/models/unetgan.md`.
    pub fn hao2020() -> Self {
        Self {
            levels: 9,
            context: false,
            norm: Norm::Batch,
            slope: 0.1,
            bottleneck_dilations: vec![1, 2, 4, 8],
            ..Self::stoller2018()
        }
    }

    /// The attention Wave-U-Net of Giri et al. 2019: the same network with an attention gate
    /// on each skip (intermediate width = the skip's width).
    pub fn giri2019() -> Self {
        Self { skip_attention: Some(0), ..Self::stoller2018() }
    }

    /// Checks the configuration; messages carry the offending values.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.levels == 0 || self.levels > 16 {
            return Err(Error::config("levels", self.levels, "must be in 1..=16"));
        }
        if self.filters_per_level <= 0 || self.in_channels <= 0 || self.out_channels <= 0 {
            return Err(Error::config(
                "filters_per_level/in_channels/out_channels",
                (self.filters_per_level, self.in_channels, self.out_channels),
                "must be positive",
            ));
        }
        for (field, k) in [("down_kernel", self.down_kernel), ("up_kernel", self.up_kernel)] {
            if k <= 0 || k % 2 == 0 {
                return Err(Error::config(field, k, "kernels must be odd and positive"));
            }
        }
        if self.bottleneck_dilations.iter().any(|&d| d <= 0) {
            return Err(Error::config(
                "bottleneck_dilations",
                &self.bottleneck_dilations,
                "dilations must be positive",
            ));
        }
        if !(0.0..1.0).contains(&self.slope) {
            return Err(Error::config("slope", self.slope, "must be in [0, 1)"));
        }
        for i in 0..=self.levels {
            self.norm.validate(self.width(i))?;
        }
        if let Some(w) = self.skip_attention {
            if w < 0 {
                return Err(Error::config(
                    "skip_attention",
                    w,
                    "width must be ≥ 0 (0: skip width)",
                ));
            }
        }
        Ok(())
    }

    /// Filters of encoder level `i` (0-based): `Fc·(i + 1)`.
    fn width(&self, i: usize) -> i64 {
        self.filters_per_level * (i as i64 + 1)
    }

    /// Output length for an input of `n` samples per axis, `None` when some layer would be
    /// empty (`context`) or `n` is not a multiple of `2^L` (no context).
    pub fn output_len(&self, n: i64) -> Option<i64> {
        if !self.context {
            return (n > 0 && n % (1i64 << self.levels) == 0).then_some(n);
        }
        let (fd, fu) = (self.down_kernel - 1, self.up_kernel - 1);
        let mut len = n;
        for _ in 0..self.levels {
            len -= fd;
            if len < 1 {
                return None;
            }
            len = (len + 1) / 2;
        }
        if self.bottleneck_dilations.is_empty() {
            len -= fd;
        }
        if len < 1 {
            return None;
        }
        for _ in 0..self.levels {
            len = 2 * len - 1 - fu;
            if len < 1 {
                return None;
            }
        }
        Some(len)
    }

    /// The smallest input length whose output has at least `n` samples per axis.
    pub fn input_len_for(&self, n: i64) -> i64 {
        if !self.context {
            let m = 1i64 << self.levels;
            return ((n.max(1) + m - 1) / m) * m;
        }
        // Monotone in the input length: search upwards from `n`.
        let mut lo = n.max(1);
        let mut hi = lo;
        while self.output_len(hi).is_none_or(|o| o < n) {
            hi = hi * 2 + 1;
        }
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.output_len(mid).is_some_and(|o| o >= n) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// The network; see the module docs.
#[derive(Debug)]
pub struct WaveUNet {
    cfg: WaveUNetConfig,
    down: Vec<(ConvNd, NormLayer)>,
    bottleneck: Vec<(ConvNd, NormLayer)>,
    /// Decoder convs, finest (`up.0`) first.
    up: Vec<(ConvNd, NormLayer)>,
    gates: Vec<AttentionGate>,
    output: ConvNd,
}

impl WaveUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &WaveUNetConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dims;
        let pad = |k: i64| if cfg.context { 0 } else { k / 2 };
        let down_opts =
            ConvOptions { padding: pad(cfg.down_kernel), ..ConvOptions::valid(cfg.down_kernel) };
        let up_opts =
            ConvOptions { padding: pad(cfg.up_kernel), ..ConvOptions::valid(cfg.up_kernel) };
        // `name.0` conv, `name.1` norm (absent without a norm).
        let layer = |p: nn::Path, cin: i64, cout: i64, geo: ConvGeometry| -> Result<_> {
            Ok((
                ConvNd::with_geometry(&p / 0, d, cin, cout, geo)?,
                NormLayer::new(&p / 1, cfg.norm, cout)?,
            ))
        };
        let down_geo = ConvGeometry::uniform(d, down_opts);
        let up_geo = ConvGeometry::uniform(d, up_opts);
        let mut down = Vec::with_capacity(cfg.levels);
        for i in 0..cfg.levels {
            let cin = if i == 0 { cfg.in_channels } else { cfg.width(i - 1) };
            down.push(layer(path / "down" / i, cin, cfg.width(i), down_geo.clone())?);
        }
        let (last, mid) = (cfg.width(cfg.levels - 1), cfg.width(cfg.levels));
        let bottleneck = if cfg.bottleneck_dilations.is_empty() {
            vec![layer(path / "bottleneck", last, mid, down_geo)?]
        } else {
            let mut stack = Vec::new();
            for (j, &dil) in cfg.bottleneck_dilations.iter().enumerate() {
                let cin = if j == 0 { last } else { mid };
                let geo = ConvGeometry::same(d, cfg.up_kernel, dil, true);
                stack.push(layer(path / "bottleneck" / j, cin, mid, geo)?);
            }
            stack
        };
        let mut up = Vec::with_capacity(cfg.levels);
        let mut gates = Vec::new();
        for i in 0..cfg.levels {
            // Level i receives the up-sampled output of level i+1 (or the bottleneck).
            let below = cfg.width(i + 1);
            let skip = cfg.width(i);
            up.push(layer(path / "up" / i, below + skip, skip, up_geo.clone())?);
            if let Some(w) = cfg.skip_attention {
                let f_int = if w == 0 { (skip / 2).max(1) } else { w };
                gates.push(AttentionGate::new(
                    path / "gate" / i,
                    d,
                    below,
                    skip,
                    f_int,
                    Norm::None,
                )?);
            }
        }
        let output = ConvNd::new(
            path / "output",
            d,
            cfg.filters_per_level + cfg.in_channels,
            cfg.out_channels,
            ConvOptions::valid(1),
        )?;
        Ok(Self { cfg: cfg.clone(), down, bottleneck, up, gates, output })
    }

    /// The configuration.
    pub fn config(&self) -> &WaveUNetConfig {
        &self.cfg
    }

    fn decimate(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = x.shallow_clone();
        for axis in 2..2 + self.cfg.dims as i64 {
            out = out.f_slice(axis, 0, None, 2)?;
        }
        Ok(out)
    }

    fn upsample(&self, x: &Tensor) -> Result<Tensor> {
        let size = x.size();
        let spatial = &size[2..];
        let (o, corners): (Vec<i64>, bool) = if self.cfg.context {
            (spatial.iter().map(|s| 2 * s - 1).collect(), true)
        } else {
            (spatial.iter().map(|s| 2 * s).collect(), false)
        };
        let o = o.as_slice();
        Ok(match self.cfg.dims {
            1 => x.f_upsample_linear1d(o, corners, None)?,
            2 => x.f_upsample_bilinear2d(o, corners, None, None)?,
            _ => x.f_upsample_trilinear3d(o, corners, None, None, None)?,
        })
    }

    /// Maps `[B, in_channels, n…]` to `[B, out_channels, output_len(n)…]` in (−1, 1).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let size = x.size();
        if size.len() != self.cfg.dims + 2 || size[1] != self.cfg.in_channels {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[B, {}, {} spatial axes]", self.cfg.in_channels, self.cfg.dims),
            });
        }
        for &n in &size[2..] {
            if self.cfg.output_len(n).is_none() {
                return Err(Error::config(
                    "input length",
                    n,
                    format!(
                        "too short or misaligned for {} levels (try {})",
                        self.cfg.levels,
                        self.cfg.input_len_for(n.max(1))
                    ),
                ));
            }
        }
        let slope = self.cfg.slope;
        let apply = |(conv, norm): &(ConvNd, NormLayer), h: &Tensor| -> Result<Tensor> {
            let t = norm.forward_t(&conv.forward(h)?, train)?;
            Ok(crate::layers::act::leaky_relu_owned(t, slope))
        };
        let crop = |t: &Tensor, like: &Tensor| {
            let target: Vec<i64> = like.size()[2..].to_vec();
            crate::layers::resample::center_crop(t, &target)
        };
        // Encoder: conv, keep the skip, decimate.
        let mut skips = Vec::with_capacity(self.cfg.levels);
        let mut h = x.shallow_clone();
        for layer in &self.down {
            let f = apply(layer, &h)?;
            h = self.decimate(&f)?;
            skips.push(f);
        }
        for layer in &self.bottleneck {
            h = apply(layer, &h)?;
        }
        // Decoder: up-sample, crop the skip, (gate it), concatenate, conv.
        for i in (0..self.cfg.levels).rev() {
            let u = self.upsample(&h)?;
            let skip = crop(&skips[i], &u)?;
            let skip = match self.gates.get(i) {
                Some(gate) => gate.forward_t(&u, &skip, train)?,
                None => skip,
            };
            h = apply(&self.up[i], &Tensor::f_cat(&[&u, &skip], 1)?)?;
        }
        let input = crop(x, &h)?;
        Ok(self.output.forward(&Tensor::f_cat(&[&input, &h], 1)?)?.tanh())
    }

    /// Output of the same length as `x` (`[B, C, n…]`): the input is zero-padded around the
    /// centre to [`WaveUNetConfig::input_len_for`]`(n)` and the output cropped back.
    pub fn forward_same(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let size = x.size();
        if size.len() != self.cfg.dims + 2 {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[B, C, {} spatial axes]", self.cfg.dims),
            });
        }
        let spatial = &size[2..];
        let mut pad = Vec::with_capacity(2 * spatial.len());
        // constant_pad_nd takes pairs from the last axis backwards.
        for &n in spatial.iter().rev() {
            let total = self.cfg.input_len_for(n) - n;
            pad.push(total / 2);
            pad.push(total - total / 2);
        }
        let y = self.forward_t(&x.f_constant_pad_nd(pad.as_slice())?, train)?;
        crate::layers::resample::center_crop(&y, spatial)
    }
}
