//! MultiResUNet (Ibtehaz & Rahman, "MultiResUNet: Rethinking the U-Net architecture for
//! multimodal biomedical image segmentation", Neural Networks 121, 2020, arXiv:1902.04049),
//! for any spatial rank.
//!
//! Each level's double conv becomes a *MultiRes block*: three chained 3×3 convs whose outputs
//! (receptive fields 3, 5 and 7) are concatenated, plus a 1×1 shortcut; each skip passes through
//! a *ResPath* of 4, 3, 2, 1 residual conv units (finest first), which narrows the semantic gap
//! between encoder and decoder features.
//!
//! ```text
//! x ─ MRB(32) ─ ResPath×4 ─────────────────────────── concat ─ MRB(32) ─ head
//!        └ pool ─ MRB(64) ─ ResPath×3 ────── concat ─ MRB(64) ┘
//!                    └ …  ─ MRB(512) ─ up ┘  (up = 2×2 transposed conv)
//! ```
//!
//! The layer order and bookkeeping follow the authors' Keras code (`tensorflow/MultiResUNet.py`),
//! whose model has the paper's parameter count: every `conv2d_bn` is a bias-free conv and a
//! batch norm without scale γ (`scale=False`); a MultiRes block is `bn2(relu(bn1(cat[a, b, c]) +
//! shortcut))` and a ResPath unit `bn(relu(conv_bn_relu(x) + conv_bn(x)))`.
//! State-dict names follow the authors' PyTorch port (`nibtehaz/MultiResUNet`,
//! `pytorch/MultiResUNet.py`): `multiresblock{1..9}.{shortcut,conv_3x3,conv_5x5,conv_7x7}.
//! {conv1,batchnorm}`, `multiresblock{i}.batch_norm{1,2}`, `respath{1..4}.{shortcuts,convs}.{j}.
//! {conv1,batchnorm}`, `respath{i}.bns.{j}`, `upsample{6..9}`, `conv_final.{conv1,batchnorm}`.
//!
//! Build it with `MultiResUNet::new(&vs.root(), &MultiResUNetConfig::ibtehaz2020())`; the
//! image reproduction is `cargo xtask reproduce multiresunet`.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::resample::max_pool;
use crate::layers::{check_dims, ConvNd, ConvOptions, Norm, NormLayer};
use crate::unet::FinalActivation;
use crate::{Error, Result};

/// Configuration of a [`MultiResUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiResUNetConfig {
    /// Spatial rank (1, 2 or 3). Default 2.
    pub dims: usize,
    /// Input channels. Default 3.
    pub in_channels: i64,
    /// Output channels of the 1×…×1 head. Default 1.
    pub out_channels: i64,
    /// `U` of the first level; level `l` uses `U·2^l`. Default 32.
    pub base: i64,
    /// Number of down-samplings. Default 4 (ResPath lengths 4, 3, 2, 1).
    pub depth: usize,
    /// `α`: a block of nominal width `U` has `W = α·U` output channels, split
    /// `⌊0.167W⌋ + ⌊0.333W⌋ + ⌊0.5W⌋` over its three convs. Default 1.67.
    pub alpha: f64,
    /// Normalisation after every conv and in the blocks. Default batch norm.
    pub norm: Norm,
    /// Whether the convs of `conv2d_bn` units carry a bias. Default `false` (Keras code).
    pub conv_bias: bool,
    /// Whether the batch norms of `conv2d_bn` units learn a scale γ. Default `false` (Keras
    /// `scale=False`); the norms inside MultiRes blocks and ResPaths always learn γ.
    pub conv_norm_scale: bool,
    /// Whether the head conv is followed by a norm (as the authors' `conv2d_bn` head).
    /// Default `true`.
    pub head_norm: bool,
    /// Activation of the head. Default sigmoid.
    pub final_activation: FinalActivation,
}

impl Default for MultiResUNetConfig {
    fn default() -> Self {
        Self::ibtehaz2020()
    }
}

impl MultiResUNetConfig {
    /// The published 2D model (the authors' code: `MultiResUnet(height, width, 3)`, α = 1.67,
    /// U = 32…512, sigmoid head with one output channel).
    pub fn ibtehaz2020() -> Self {
        Self {
            dims: 2,
            in_channels: 3,
            out_channels: 1,
            base: 32,
            depth: 4,
            alpha: 1.67,
            norm: Norm::Batch,
            conv_bias: false,
            conv_norm_scale: false,
            head_norm: true,
            final_activation: FinalActivation::Sigmoid,
        }
    }

    /// The three conv widths of a MultiRes block of nominal width `u`.
    pub fn split(&self, u: i64) -> [i64; 3] {
        let w = self.alpha * u as f64;
        [(w * 0.167) as i64, (w * 0.333) as i64, (w * 0.5) as i64]
    }

    /// Output channels of a MultiRes block of nominal width `u`.
    pub fn block_out(&self, u: i64) -> i64 {
        self.split(u).iter().sum()
    }

    /// Checks the configuration; messages carry the offending values.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.depth == 0 {
            return Err(Error::config("depth", self.depth, "must be at least 1"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::config("alpha", self.alpha, "must be positive"));
        }
        if self.base <= 0 || self.in_channels <= 0 || self.out_channels <= 0 {
            return Err(Error::config(
                "base/in/out_channels",
                (self.base, self.in_channels, self.out_channels),
                "must be positive",
            ));
        }
        if let Some(w) = self.split(self.base).iter().find(|&&w| w <= 0) {
            return Err(Error::config(
                "alpha·base",
                self.alpha * self.base as f64,
                format!("too small: a MultiRes block conv would get {w} channels"),
            ));
        }
        Ok(())
    }
}

/// `conv → norm [→ relu]`, the authors' `conv2d_bn` (`Conv2d_batchnorm` in their port).
#[derive(Debug)]
struct ConvNorm {
    conv: ConvNd,
    norm: Option<NormLayer>,
    relu: bool,
}

impl ConvNorm {
    fn new(
        p: nn::Path,
        cfg: &MultiResUNetConfig,
        cin: i64,
        cout: i64,
        k: i64,
        norm: bool,
        relu: bool,
    ) -> Result<Self> {
        let opts = ConvOptions::same(k).bias(cfg.conv_bias);
        let norm = match (norm, cfg.norm, cfg.conv_norm_scale) {
            (false, _, _) => None,
            (true, Norm::Batch, false) => {
                Some(NormLayer::batch_without_scale(&p / "batchnorm", cout)?)
            }
            (true, n, _) => Some(NormLayer::new(&p / "batchnorm", n, cout)?),
        };
        Ok(Self { conv: ConvNd::new(&p / "conv1", cfg.dims, cin, cout, opts)?, norm, relu })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = self.conv.forward(x)?;
        if let Some(n) = &self.norm {
            h = n.forward_t(&h, train)?;
        }
        Ok(if self.relu { h.relu() } else { h })
    }
}

/// A MultiRes block: `bn2(relu(bn1(cat[a, b, c]) + shortcut(x)))` with `a = conv3(x)`,
/// `b = conv3(a)`, `c = conv3(b)` (each conv → norm → relu).
#[derive(Debug)]
pub struct MultiResBlock {
    shortcut: ConvNorm,
    convs: [ConvNorm; 3],
    bn1: NormLayer,
    bn2: NormLayer,
}

impl MultiResBlock {
    /// A block of nominal width `u` over `cin` input channels.
    pub fn new(path: nn::Path, cfg: &MultiResUNetConfig, cin: i64, u: i64) -> Result<Self> {
        let [a, b, c] = cfg.split(u);
        let out = a + b + c;
        Ok(Self {
            shortcut: ConvNorm::new(&path / "shortcut", cfg, cin, out, 1, true, false)?,
            convs: [
                ConvNorm::new(&path / "conv_3x3", cfg, cin, a, 3, true, true)?,
                ConvNorm::new(&path / "conv_5x5", cfg, a, b, 3, true, true)?,
                ConvNorm::new(&path / "conv_7x7", cfg, b, c, 3, true, true)?,
            ],
            bn1: NormLayer::new(&path / "batch_norm1", cfg.norm, out)?,
            bn2: NormLayer::new(&path / "batch_norm2", cfg.norm, out)?,
        })
    }

    /// `[N, cin, *S]` → `[N, ⌊.167W⌋+⌊.333W⌋+⌊.5W⌋, *S]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let shortcut = self.shortcut.forward_t(x, train)?;
        let a = self.convs[0].forward_t(x, train)?;
        let b = self.convs[1].forward_t(&a, train)?;
        let c = self.convs[2].forward_t(&b, train)?;
        let h = self.bn1.forward_t(&Tensor::f_cat(&[a, b, c], 1)?, train)? + shortcut;
        self.bn2.forward_t(&h.relu(), train)
    }
}

/// The authors' ResPath: `length` units `bn(relu(conv3_bn_relu(x) + conv1_bn(x)))`.
#[derive(Debug)]
pub struct MultiResPath {
    units: Vec<(ConvNorm, ConvNorm, NormLayer)>,
}

impl MultiResPath {
    /// A path of `length` units mapping `cin` to `cout` channels.
    pub fn new(
        path: nn::Path,
        cfg: &MultiResUNetConfig,
        cin: i64,
        cout: i64,
        length: usize,
    ) -> Result<Self> {
        let units = (0..length)
            .map(|j| {
                let i = if j == 0 { cin } else { cout };
                Ok((
                    ConvNorm::new(&path / "shortcuts" / j, cfg, i, cout, 1, true, false)?,
                    ConvNorm::new(&path / "convs" / j, cfg, i, cout, 3, true, true)?,
                    NormLayer::new(&path / "bns" / j, cfg.norm, cout)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { units })
    }

    /// `[N, cin, *S]` → `[N, cout, *S]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.shallow_clone();
        for (shortcut, conv, bn) in &self.units {
            let s = shortcut.forward_t(&h, train)?;
            let c = conv.forward_t(&h, train)?;
            h = bn.forward_t(&(c + s).relu(), train)?;
        }
        Ok(h)
    }
}

/// MultiResUNet over any spatial rank.
#[derive(Debug)]
pub struct MultiResUNet {
    cfg: MultiResUNetConfig,
    encoder: Vec<MultiResBlock>,
    respaths: Vec<MultiResPath>,
    bottleneck: MultiResBlock,
    ups: Vec<ConvNd>,
    decoder: Vec<MultiResBlock>,
    head: ConvNorm,
}

impl MultiResUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &MultiResUNetConfig) -> Result<Self> {
        cfg.validate()?;
        let depth = cfg.depth;
        let u = |l: usize| cfg.base << l;
        let mut encoder = Vec::with_capacity(depth);
        let mut respaths = Vec::with_capacity(depth);
        let mut cin = cfg.in_channels;
        for l in 0..depth {
            encoder.push(MultiResBlock::new(
                path / format!("multiresblock{}", l + 1),
                cfg,
                cin,
                u(l),
            )?);
            cin = cfg.block_out(u(l));
            respaths.push(MultiResPath::new(
                path / format!("respath{}", l + 1),
                cfg,
                cin,
                u(l),
                depth - l,
            )?);
        }
        let bottleneck =
            MultiResBlock::new(path / format!("multiresblock{}", depth + 1), cfg, cin, u(depth))?;
        let mut coarse = cfg.block_out(u(depth));
        let mut ups = Vec::with_capacity(depth);
        let mut decoder = Vec::with_capacity(depth);
        for k in 0..depth {
            let l = depth - 1 - k; // level of the skip joined here
            let idx = depth + 2 + k;
            ups.push(ConvNd::new(
                path / format!("upsample{idx}"),
                cfg.dims,
                coarse,
                u(l),
                ConvOptions { kernel: 2, stride: 2, padding: 0, bias: true, transposed: true },
            )?);
            decoder.push(MultiResBlock::new(
                path / format!("multiresblock{idx}"),
                cfg,
                2 * u(l),
                u(l),
            )?);
            coarse = cfg.block_out(u(l));
        }
        let head = ConvNorm::new(
            path / "conv_final",
            cfg,
            coarse,
            cfg.out_channels,
            1,
            cfg.head_norm,
            false,
        )?;
        Ok(Self { cfg: cfg.clone(), encoder, respaths, bottleneck, ups, decoder, head })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &MultiResUNetConfig {
        &self.cfg
    }

    /// Head outputs before the final activation.
    ///
    /// # Shapes
    /// `[N, in_channels, *S]` → `[N, out_channels, *S]`; every spatial size must divide by
    /// `2^depth`.
    pub fn forward_logits_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let d = self.cfg.dims;
        let size = x.size();
        if size.len() != d + 2 || size[1] != self.cfg.in_channels {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[N, {}, {d} spatial axes]", self.cfg.in_channels),
            });
        }
        let m = 1i64 << self.cfg.depth;
        if let Some(s) = size[2..].iter().find(|&&s| s % m != 0) {
            return Err(Error::config("input size", s, format!("must be a multiple of {m}")));
        }
        // 1. Encoder: MultiRes block, ResPath onto the skip stack, pool.
        let mut h = x.shallow_clone();
        let mut skips = Vec::with_capacity(self.cfg.depth);
        for (block, respath) in self.encoder.iter().zip(&self.respaths) {
            let f = block.forward_t(&h, train)?; // [N, W_l, *S/2^l]
            h = max_pool(&f, d)?;
            skips.push(respath.forward_t(&f, train)?); // [N, U_l, *S/2^l]
        }
        // 2. Bottleneck.
        h = self.bottleneck.forward_t(&h, train)?; // [N, W_depth, *S/2^depth]
                                                   // 3. Decoder: up-conv to U_l, concat the popped skip (2·U_l), MultiRes block.
        for ((up, block), skip) in self.ups.iter().zip(&self.decoder).zip(skips.into_iter().rev()) {
            let u = up.forward(&h)?;
            h = block.forward_t(&Tensor::f_cat(&[u, skip], 1)?, train)?;
        }
        // 4. Head.
        self.head.forward_t(&h, train)
    }

    /// Head outputs after the configured final activation.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.cfg.final_activation.apply(&self.forward_logits_t(x, train)?)
    }
}
