//! ResUNet (Zhang, Liu & Wang, "Road Extraction by Deep Residual U-Net", IEEE GRSL 2018,
//! arXiv:1711.10684): a U-Net whose levels are pre-activation residual units (He et al. 2016),
//! down-sampling by the stride of each unit's first convolution, for any spatial rank.
//!
//! ```text
//! x ─ stem ─────────────────────────────── concat ─ unit ─ head
//!       └ unit/2 ──────────────── concat ─ unit ┘
//!            └ unit/2 ─── concat ─ unit ┘
//!                 └ bridge/2 ┘ (up ×2 before each concat)
//! ```
//!
//! State-dict names follow the widely used PyTorch port (rishikksh20/ResUnet, `res_unet.py`):
//! `input_layer.{0,1,3}`, `input_skip.{0,1}`, `residual_conv_{k}`, `bridge`, `upsample_{k}`,
//! `up_residual_conv{k}`, `output_layer.0`; a residual unit is
//! `conv_block.{0: norm, 2: conv, 3: norm, 5: conv}` + `conv_skip.{0: conv, 1: norm}`.
//!
//! Build it with `ResUNet::new(&vs.root(), &ResUNetConfig::zhang2018())`; the image
//! reproduction is `cargo xtask reproduce resunet`.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::resample::interpolate2x;
use crate::layers::{check_dims, ConvNd, ConvOptions, Norm, NormLayer, Upsample};
use crate::unet::FinalActivation;
use crate::{Error, Result};

/// Configuration of a [`ResUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResUNetConfig {
    /// Spatial rank (1, 2 or 3). Default 2.
    pub dims: usize,
    /// Input channels. Default 3 (RGB aerial images).
    pub in_channels: i64,
    /// Output channels. Default 1 (road probability).
    pub out_channels: i64,
    /// Channels of each level, finest first; the last is the bridge. Default
    /// `[64, 128, 256, 512]` (Table 1 of the paper).
    pub channels: Vec<i64>,
    /// Normalisation of every unit. Default batch norm.
    pub norm: Norm,
    /// Kernel of the shortcut projection of each unit (1 in the paper's Fig. 2 reading,
    /// 3 in some ports). Default 1.
    pub shortcut_kernel: i64,
    /// Whether the shortcut projection is followed by a norm. Default `true`.
    pub shortcut_norm: bool,
    /// Up-sampling before each decoder unit: nearest interpolation (the paper's "up-sampling")
    /// or a 2×…×2 transposed conv keeping the channel count. Default nearest.
    pub upsample: Upsample,
    /// Activation of the 1×…×1 head. Default sigmoid.
    pub final_activation: FinalActivation,
}

impl Default for ResUNetConfig {
    fn default() -> Self {
        Self::zhang2018()
    }
}

impl ResUNetConfig {
    /// The published model: Table 1 of Zhang et al. 2018 (224² RGB → 1-channel sigmoid map).
    pub fn zhang2018() -> Self {
        Self {
            dims: 2,
            in_channels: 3,
            out_channels: 1,
            channels: vec![64, 128, 256, 512],
            norm: Norm::Batch,
            shortcut_kernel: 1,
            shortcut_norm: true,
            upsample: Upsample::Interpolate(crate::layers::InterpolationMode::Nearest),
            final_activation: FinalActivation::Sigmoid,
        }
    }

    /// dResU-Net (Raza et al. 2022, "dResU-Net: 3D deep residual U-Net based brain tumor
    /// segmentation from multimodal MRI") as a preset of these residual units: 3D, the four
    /// BraTS modalities in, four labels out (soft-max), five levels 32…512 with 2×2×2
    /// transposed-convolution up-sampling. The survey's Table 4 quotes 30.5M parameters; the
    /// paper's layer table was not available offline, so this preset is our reading of its
    /// description (its count is printed by `cargo xtask params` and stated in docs/3d.md), not
    /// a checked match.
    pub fn dresunet() -> Self {
        Self {
            dims: 3,
            in_channels: 4,
            out_channels: 4,
            channels: vec![32, 64, 128, 256, 512],
            upsample: Upsample::TransposedConv,
            final_activation: FinalActivation::Softmax,
            ..Self::zhang2018()
        }
    }

    /// Checks the configuration; messages carry the offending values.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.channels.len() < 2 {
            return Err(Error::config(
                "channels",
                format!("{:?}", self.channels),
                "needs at least one level and the bridge",
            ));
        }
        if let Some(c) = self.channels.iter().find(|&&c| c <= 0) {
            return Err(Error::config("channels", c, "channel counts must be positive"));
        }
        if self.in_channels <= 0 || self.out_channels <= 0 {
            return Err(Error::config(
                "in/out_channels",
                (self.in_channels, self.out_channels),
                "must be positive",
            ));
        }
        if self.shortcut_kernel <= 0 || self.shortcut_kernel % 2 == 0 {
            return Err(Error::config("shortcut_kernel", self.shortcut_kernel, "must be odd"));
        }
        for &c in &self.channels {
            self.norm.validate(c)?;
        }
        Ok(())
    }

    /// The factor every spatial size must divide by.
    pub fn size_multiple(&self) -> i64 {
        1 << (self.channels.len() - 1)
    }
}

/// A pre-activation residual unit: `norm → relu → conv(stride s) → norm → relu → conv`, plus a
/// projected shortcut (`conv(stride s)` [→ norm]). The stem replaces the first norm/relu pair
/// with nothing (`conv → norm → relu → conv`).
#[derive(Debug)]
pub struct ResidualUnit {
    pre_norm: Option<NormLayer>,
    conv1: ConvNd,
    norm: NormLayer,
    conv2: ConvNd,
    skip_conv: ConvNd,
    skip_norm: Option<NormLayer>,
}

impl ResidualUnit {
    fn new(
        block: nn::Path,
        skip: nn::Path,
        cfg: &ResUNetConfig,
        cin: i64,
        cout: i64,
        stride: i64,
        stem: bool,
    ) -> Result<Self> {
        let d = cfg.dims;
        let conv = |p: nn::Path, i: i64, s: i64| {
            ConvNd::new(p, d, i, cout, ConvOptions { stride: s, ..ConvOptions::same(3) })
        };
        // Stem: [conv, norm, relu, conv]; unit: [norm, relu, conv, norm, relu, conv].
        let (pre_norm, c1, n, c2) = if stem { (None, 0, 1, 3) } else { (Some(0), 2, 3, 5) };
        let k = cfg.shortcut_kernel;
        Ok(Self {
            pre_norm: pre_norm.map(|i| NormLayer::new(&block / i, cfg.norm, cin)).transpose()?,
            conv1: conv(&block / c1, cin, stride)?,
            norm: NormLayer::new(&block / n, cfg.norm, cout)?,
            conv2: conv(&block / c2, cout, 1)?,
            skip_conv: ConvNd::new(
                &skip / 0,
                d,
                cin,
                cout,
                ConvOptions { stride, ..ConvOptions::same(k) },
            )?,
            skip_norm: if cfg.shortcut_norm {
                Some(NormLayer::new(&skip / 1, cfg.norm, cout)?)
            } else {
                None
            },
        })
    }

    /// `[N, cin, *S]` → `[N, cout, *S/stride]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = match &self.pre_norm {
            Some(n) => n.forward_t(x, train)?.relu(),
            None => x.shallow_clone(),
        };
        let h = self.conv1.forward(&h)?;
        let h = self.conv2.forward(&self.norm.forward_t(&h, train)?.relu())?;
        let mut s = self.skip_conv.forward(x)?;
        if let Some(n) = &self.skip_norm {
            s = n.forward_t(&s, train)?;
        }
        Ok(h + s)
    }
}

#[derive(Debug)]
enum Up {
    Interpolate(crate::layers::InterpolationMode),
    Transposed(ConvNd),
}

/// The ResUNet of Zhang et al. 2018 over any spatial rank.
#[derive(Debug)]
pub struct ResUNet {
    cfg: ResUNetConfig,
    stem: ResidualUnit,
    encoder: Vec<ResidualUnit>,
    bridge: ResidualUnit,
    ups: Vec<Up>,
    decoder: Vec<ResidualUnit>,
    head: ConvNd,
}

impl ResUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &ResUNetConfig) -> Result<Self> {
        cfg.validate()?;
        let c = &cfg.channels;
        let levels = c.len() - 1; // levels above the bridge
        let stem = ResidualUnit::new(
            path / "input_layer",
            path / "input_skip",
            cfg,
            cfg.in_channels,
            c[0],
            1,
            true,
        )?;
        let encoder = (1..levels)
            .map(|k| {
                let p = path / format!("residual_conv_{k}");
                ResidualUnit::new(
                    &p / "conv_block",
                    &p / "conv_skip",
                    cfg,
                    c[k - 1],
                    c[k],
                    2,
                    false,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let bp = path / "bridge";
        let bridge = ResidualUnit::new(
            &bp / "conv_block",
            &bp / "conv_skip",
            cfg,
            c[levels - 1],
            c[levels],
            2,
            false,
        )?;
        let mut ups = Vec::with_capacity(levels);
        let mut decoder = Vec::with_capacity(levels);
        for k in 1..=levels {
            // Decoder level k joins the coarser map (c[levels - k + 1]) with the skip of
            // level `levels - k` (c[levels - k]).
            let coarse = c[levels - k + 1];
            let fine = c[levels - k];
            ups.push(match cfg.upsample {
                Upsample::Interpolate(mode) => Up::Interpolate(mode),
                Upsample::TransposedConv => Up::Transposed(ConvNd::new(
                    path / format!("upsample_{k}") / "upsample",
                    cfg.dims,
                    coarse,
                    coarse,
                    ConvOptions { kernel: 2, stride: 2, padding: 0, bias: true, transposed: true },
                )?),
            });
            let p = path / format!("up_residual_conv{k}");
            decoder.push(ResidualUnit::new(
                &p / "conv_block",
                &p / "conv_skip",
                cfg,
                coarse + fine,
                fine,
                1,
                false,
            )?);
        }
        let head = ConvNd::new(
            path / "output_layer" / 0,
            cfg.dims,
            c[0],
            cfg.out_channels,
            ConvOptions::valid(1),
        )?;
        Ok(Self { cfg: cfg.clone(), stem, encoder, bridge, ups, decoder, head })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ResUNetConfig {
        &self.cfg
    }

    /// Raw head outputs (before the final activation).
    ///
    /// # Shapes
    /// `[N, in_channels, *S]` → `[N, out_channels, *S]`; every spatial size must divide by
    /// [`ResUNetConfig::size_multiple`].
    pub fn forward_logits_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let d = self.cfg.dims;
        let size = x.size();
        let m = self.cfg.size_multiple();
        if size.len() != d + 2 || size[1] != self.cfg.in_channels {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[N, {}, {d} spatial axes]", self.cfg.in_channels),
            });
        }
        if let Some(s) = size[2..].iter().find(|&&s| s % m != 0) {
            return Err(Error::config("input size", s, format!("must be a multiple of {m}")));
        }
        // 1. Encoder: each level's output is pushed on the skip stack.
        let mut h = self.stem.forward_t(x, train)?; // [N, c0, *S]
        let mut skips = Vec::with_capacity(self.decoder.len());
        for unit in &self.encoder {
            let next = unit.forward_t(&h, train)?; // [N, c_k, *S/2^k]
            skips.push(std::mem::replace(&mut h, next));
        }
        skips.push(h.shallow_clone());
        // 2. Bridge at the coarsest resolution.
        h = self.bridge.forward_t(&h, train)?; // [N, c_last, *S/2^levels]
                                               // 3. Decoder: up ×2, concat the popped skip, residual unit.
        for ((up, unit), skip) in self.ups.iter().zip(&self.decoder).zip(skips.into_iter().rev()) {
            h = match up {
                Up::Interpolate(mode) => interpolate2x(&h, d, *mode)?,
                Up::Transposed(conv) => conv.forward(&h)?,
            };
            h = unit.forward_t(&Tensor::f_cat(&[h, skip], 1)?, train)?;
        }
        // 4. Head.
        self.head.forward(&h)
    }

    /// Head outputs after the configured final activation.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.cfg.final_activation.apply(&self.forward_logits_t(x, train)?)
    }
}
