//! The 3D U-Net of Çiçek, Abdulkadir, Lienkamp, Brox & Ronneberger 2016 ("3D U-Net: Learning
//! Dense Volumetric Segmentation from Sparse Annotation", MICCAI 2016), and its separable
//! variant S3D-UNet (Chen, Liu, Peng, Sun & Qiao 2018, "S3D-UNet: Separable 3D U-Net for Brain
//! Tumor Segmentation", BrainLes 2018), written once for any spatial rank.
//!
//! Each analysis level: two `conv 3 → BN → ReLU`, the second **doubling** the channels before
//! the 2× max-pool (so the bottleneck is not a bottleneck of features), `base, 2·base` at the
//! finest level. Each synthesis level: a 2× up-convolution keeping the channels, concatenation
//! with the analysis level, two `conv 3 → BN → ReLU` halving them. A final 1× conv gives the
//! label scores. With 3 input channels, 3 labels, base 32 and 3 poolings this is the paper's
//! network: 19,069,955 parameters (Caffe's batch norm has no learnable scale or shift and the
//! up-convolutions no bias), as the paper reports.
//!
//! S3D-UNet replaces every `conv 3` by a depthwise-separable one ([`ConvKind::Separable`]:
//! per-channel 3×3×3, then 1×1×1 mixing), the parameter and FLOP saving its paper is about.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::conv::{ConvGeometry, ConvKind, ConvNd, ConvOptions, SpatialConv};
use crate::layers::norm::NormLayer;
use crate::layers::resample::max_pool;
use crate::{Error, Result};

/// Configuration of [`UNet3d`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNet3dConfig {
    /// Spatial rank (3 for volumes).
    pub dims: usize,
    /// Input channels.
    pub in_channels: i64,
    /// Output channels (labels).
    pub out_channels: i64,
    /// Channels of the first convolution (the finest level ends at `2·base`).
    pub base: i64,
    /// Max-pool steps.
    pub depth: usize,
    /// Dense or separable 3×3×3 convolutions.
    pub conv: ConvKind,
    /// Batch norm with learnable γ/β (PyTorch) instead of Caffe's parameter-free batch norm.
    pub affine_norm: bool,
}

impl UNet3dConfig {
    /// Çiçek et al. 2016: 3 channels in, 3 labels, base 32, 3 poolings: 19,069,955 parameters.
    pub fn cicek2016() -> Self {
        Self {
            dims: 3,
            in_channels: 3,
            out_channels: 3,
            base: 32,
            depth: 3,
            conv: ConvKind::Full,
            affine_norm: false,
        }
    }

    /// The same network with separable convolutions (S3D-UNet, Chen et al. 2018).
    pub fn s3d_unet() -> Self {
        Self { conv: ConvKind::Separable, ..Self::cicek2016() }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        crate::layers::check_dims(self.dims)?;
        if self.base < 1 || self.depth == 0 || self.in_channels < 1 || self.out_channels < 1 {
            return Err(Error::config(
                "base/depth/in/out",
                (self.base, self.depth, self.in_channels, self.out_channels),
                "need a positive base, at least one pooling and positive channel counts",
            ));
        }
        if !matches!(self.conv, ConvKind::Full | ConvKind::Separable) {
            return Err(Error::config("conv", self.conv, "the 3D U-Net uses Full or Separable"));
        }
        Ok(())
    }

    /// Spatial sizes must divide by this.
    pub fn size_multiple(&self) -> i64 {
        1 << self.depth
    }

    /// Multiply–accumulates of one forward pass on an input of `voxels` voxels (every
    /// convolution, up-convolution and the head; norms and activations not counted).
    pub fn macs(&self, voxels: i64) -> i64 {
        let kd = 3i64.pow(self.dims as u32);
        let conv = |cin: i64, cout: i64, n: i64| match self.conv {
            ConvKind::Separable => n * (kd * cin + cin * cout),
            _ => n * kd * cin * cout,
        };
        let mut total = 0;
        let mut cin = self.in_channels;
        for l in 0..=self.depth {
            let n = voxels >> (self.dims * l);
            let c = self.base << l;
            total += conv(cin, c, n) + conv(c, 2 * c, n);
            cin = 2 * c;
        }
        for l in (0..self.depth).rev() {
            let n = voxels >> (self.dims * l);
            let c = self.base << l;
            // The up-convolution: each coarse voxel feeds 2^dims outputs.
            total += (voxels >> (self.dims * (l + 1))) * (1 << self.dims) * cin * cin;
            total += conv(cin + 2 * c, 2 * c, n) + conv(2 * c, 2 * c, n);
            cin = 2 * c;
        }
        total + voxels * cin * self.out_channels
    }
}

/// `conv 3 → BN → ReLU`.
#[derive(Debug)]
struct Unit {
    conv: SpatialConv,
    norm: NormLayer,
}

impl Unit {
    fn new(path: nn::Path, cfg: &UNet3dConfig, cin: i64, cout: i64) -> Result<Self> {
        let conv = SpatialConv::new(&path / "conv", cfg.dims, cin, cout, 3, cfg.conv, true)?;
        let norm = if cfg.affine_norm {
            NormLayer::new(&path / "bn", crate::layers::norm::Norm::Batch, cout)?
        } else {
            NormLayer::batch_without_affine(&path / "bn", cout)?
        };
        Ok(Self { conv, norm })
    }

    /// In inference the batch norm is folded into a dense conv; ReLU runs in place (its input
    /// is the norm's fresh output, which no backward needs).
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = match &self.conv {
            SpatialConv::Full(c) => c.forward_norm(x, &self.norm, train)?,
            conv => self.norm.forward_t(&conv.forward(x)?, train)?,
        };
        let _ = h.relu_();
        Ok(h)
    }
}

/// The network; see the module docs.
#[derive(Debug)]
pub struct UNet3d {
    cfg: UNet3dConfig,
    /// Per analysis level (and the bottom): two units.
    down: Vec<[Unit; 2]>,
    /// Per synthesis level, coarsest first: up-convolution and two units.
    up: Vec<(ConvNd, [Unit; 2])>,
    head: ConvNd,
}

impl UNet3d {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &UNet3dConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.dims;
        let mut down = Vec::with_capacity(cfg.depth + 1);
        let mut cin = cfg.in_channels;
        for l in 0..=cfg.depth {
            let c = cfg.base << l;
            let p = path / "down" / l;
            down.push([Unit::new(&p / 0, cfg, cin, c)?, Unit::new(&p / 1, cfg, c, 2 * c)?]);
            cin = 2 * c;
        }
        let mut up = Vec::with_capacity(cfg.depth);
        for l in (0..cfg.depth).rev() {
            let c = cfg.base << l; // the level's first width; its output is 2c
            let p = path / "up" / l;
            let upconv = ConvNd::with_geometry(
                &p / "upconv",
                d,
                cin,
                cin,
                ConvGeometry {
                    stride: vec![2; d],
                    padding: vec![0; d],
                    transposed: true,
                    ..ConvGeometry::uniform(
                        d,
                        ConvOptions { kernel: 2, bias: false, ..ConvOptions::default() },
                    )
                },
            )?;
            let units = [
                Unit::new(&p / 0, cfg, cin + 2 * c, 2 * c)?,
                Unit::new(&p / 1, cfg, 2 * c, 2 * c)?,
            ];
            up.push((upconv, units));
            cin = 2 * c;
        }
        let head = ConvNd::new(path / "head", d, cin, cfg.out_channels, ConvOptions::same(1))?;
        Ok(Self { cfg: cfg.clone(), down, up, head })
    }

    /// The configuration.
    pub fn config(&self) -> &UNet3dConfig {
        &self.cfg
    }

    /// Label scores `[B, out, *S]` for `[B, in, *S]` (every spatial size a multiple of
    /// `2^depth`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
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
        // Analysis path.
        let mut skips = Vec::with_capacity(self.cfg.depth);
        let mut h = x.shallow_clone();
        for (l, [a, b]) in self.down.iter().enumerate() {
            if l > 0 {
                h = max_pool(&h, self.cfg.dims)?;
            }
            h = b.forward_t(&a.forward_t(&h, train)?, train)?;
            skips.push(h.shallow_clone());
        }
        skips.pop(); // the bottom is not a skip
                     // Synthesis path.
        for (upconv, [a, b]) in &self.up {
            let skip = skips
                .pop()
                .ok_or_else(|| Error::config("depth", self.cfg.depth, "skip missing"))?;
            let u = upconv.forward(&h)?;
            h = b.forward_t(&a.forward_t(&Tensor::cat(&[&u, &skip], 1), train)?, train)?;
        }
        self.head.forward(&h)
    }
}
