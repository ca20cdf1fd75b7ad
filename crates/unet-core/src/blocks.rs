//! The U-Net conv block (Algorithm 1 lines 3-4): `(conv → norm → act) × 2`, any rank.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::{check_dims, Activation, ConvNd, ConvOptions, Norm, NormLayer};
use crate::{Error, Result};

/// Whether convolutions pad to keep the size or shrink it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Padding {
    /// Zero padding of `k/2`: sizes are kept (the common modern U-Net).
    #[default]
    Same,
    /// No padding: each `k`-wide conv removes `k-1` samples per axis, and skips are centre-cropped
    /// before fusion (crop-and-concat of Ronneberger 2015).
    Valid,
}

/// Configuration of a [`ConvBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConvBlockConfig {
    /// Kernel size on every axis (odd under same padding). Default 3.
    pub kernel_size: i64,
    /// Same or valid padding. Default same.
    pub padding: Padding,
    /// Normalisation after each conv. Default batch norm.
    pub norm: Norm,
    /// Activation after each norm. Default ReLU.
    pub activation: Activation,
    /// Whether the convolutions carry a bias. Default `false`: a bias directly before a
    /// batch/group norm is cancelled by its mean subtraction.
    pub bias: bool,
}

impl Default for ConvBlockConfig {
    fn default() -> Self {
        Self {
            kernel_size: 3,
            padding: Padding::Same,
            norm: Norm::Batch,
            activation: Activation::ReLU,
            bias: false,
        }
    }
}

impl ConvBlockConfig {
    /// Checks the fields that do not depend on channel counts.
    pub fn validate(&self) -> Result<()> {
        if self.kernel_size <= 0 {
            return Err(Error::config("kernel_size", self.kernel_size, "must be positive"));
        }
        if self.padding == Padding::Same && self.kernel_size % 2 == 0 {
            return Err(Error::config(
                "kernel_size",
                self.kernel_size,
                "same padding needs an odd kernel size",
            ));
        }
        if let Activation::LeakyReLU { slope } = self.activation {
            if !slope.is_finite() {
                return Err(Error::config("activation", self.activation, "slope must be finite"));
            }
        }
        Ok(())
    }

    /// How many samples per axis one block removes (0 under same padding).
    pub fn shrink(&self) -> i64 {
        match self.padding {
            Padding::Same => 0,
            Padding::Valid => 2 * (self.kernel_size - 1),
        }
    }

    fn conv_options(&self) -> ConvOptions {
        let opts = match self.padding {
            Padding::Same => ConvOptions::same(self.kernel_size),
            Padding::Valid => ConvOptions::valid(self.kernel_size),
        };
        opts.bias(self.bias)
    }
}

/// `(conv → norm → act) × 2`. State-dict names follow the PyTorch `nn.Sequential`
/// `double_conv = [conv, norm, act, conv, norm, act]`: `double_conv.0` (conv),
/// `double_conv.1` (norm), `double_conv.3` (conv), `double_conv.4` (norm), as in the widely used
/// PyTorch U-Net of milesial/Pytorch-UNet, so its checkpoints load.
#[derive(Debug)]
pub struct ConvBlock {
    conv1: ConvNd,
    norm1: NormLayer,
    conv2: ConvNd,
    norm2: NormLayer,
    activation: Activation,
}

impl ConvBlock {
    /// Builds the block under `path` mapping `cin` to `cout` channels over `dims` axes.
    pub fn new(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        cfg: &ConvBlockConfig,
    ) -> Result<Self> {
        check_dims(dims)?;
        cfg.validate()?;
        let seq = &path / "double_conv";
        let opts = cfg.conv_options();
        Ok(Self {
            conv1: ConvNd::new(&seq / 0, dims, cin, cout, opts)?,
            norm1: NormLayer::new(&seq / 1, cfg.norm, cout)?,
            conv2: ConvNd::new(&seq / 3, dims, cout, cout, opts)?,
            norm2: NormLayer::new(&seq / 4, cfg.norm, cout)?,
            activation: cfg.activation,
        })
    }

    /// Lays both kernels out channels-last ([`ConvNd::set_channels_last`]).
    pub fn set_channels_last(&self) -> Result<()> {
        self.conv1.set_channels_last()?;
        self.conv2.set_channels_last()
    }

    /// # Shapes
    /// `[N, cin, *S]` → `[N, cout, *S']`, `S' = S` (same) or `S - 2(k-1)` (valid).
    ///
    /// In inference a batch norm is folded into its conv ([`ConvNd::forward_norm`]); the
    /// activation runs in place on the norm's fresh output where autograd allows it.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.conv1.forward_norm(xs, &self.norm1, train)?;
        let h = self.activation.forward_owned(h);
        let h = self.conv2.forward_norm(&h, &self.norm2, train)?;
        Ok(self.activation.forward_owned(h))
    }
}
