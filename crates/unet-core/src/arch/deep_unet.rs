//! The spectrogram U-Net of Jansson, Humphrey, Montecchio, Bittner, Kumar & Weyde, "Singing
//! Voice Separation with Deep U-Net Convolutional Networks", ISMIR 2017, for any rank (2 for
//! magnitude spectrograms).
//!
//! ```text
//! |X| ─ conv↓ 16 ─ conv↓ 32 ─ … ─ conv↓ 512
//!          │          │              │
//!   mask ← deconv↑ 1 ← … ← deconv↑ 128 ← concat ← deconv↑ 256
//! ```
//!
//! Encoder: six 5×…×5 convolutions with stride 2 (16, 32, 64, 128, 256, 512 filters), each
//! followed by batch norm and LeakyReLU(0.2). Decoder: 5×…×5 transposed convolutions with
//! stride 2 (256, 128, 64, 32, 16 filters, then one), batch norm and ReLU, 50 % dropout in
//! the first three; from the second on, the input is the previous decoder output concatenated
//! with the encoder output of the same resolution. The last layer's sigmoid is a soft mask
//! multiplied with the input magnitude; the paper trains it with an L1 loss between the masked
//! mixture and the target source's magnitude.
//!
//! Transposed convolutions are PyTorch's `ConvTranspose(k = 5, stride = 2, padding = 2,
//! output_padding = 1)`, which double every axis exactly. Inputs must be multiples of 64 on
//! every axis (512 × 128 patches in the paper). State-dict names: `encoder.{i}.{0: conv,
//! 1: norm}`, `decoder.{i}.{0: deconv, 1: norm}` (the last decoder layer has no norm).

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::layers::{check_dims, ConvGeometry, ConvNd, Norm, NormLayer};
use crate::{Error, Result};

/// Configuration of a [`DeepUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepUNetConfig {
    /// Spatial rank (2: frequency × time). Default 2.
    pub dims: usize,
    /// Input channels (magnitude spectrograms: 1). Default 1.
    pub in_channels: i64,
    /// Output masks. Default 1.
    pub out_channels: i64,
    /// Filters of the encoder layers, finest first. Default `[16, 32, 64, 128, 256, 512]`.
    pub channels: Vec<i64>,
    /// Kernel of every (transposed) convolution. Default 5.
    pub kernel: i64,
    /// Dropout probability of the first `dropout_layers` decoder layers. Default 0.5.
    pub dropout: f64,
    /// Decoder layers with dropout. Default 3.
    pub dropout_layers: usize,
    /// Normalisation after every layer but the last. Default batch norm.
    pub norm: Norm,
}

impl Default for DeepUNetConfig {
    fn default() -> Self {
        Self::jansson2017()
    }
}

impl DeepUNetConfig {
    /// The published network: 9,823,313 parameters (no count is printed by the paper).
    pub fn jansson2017() -> Self {
        Self {
            dims: 2,
            in_channels: 1,
            out_channels: 1,
            channels: vec![16, 32, 64, 128, 256, 512],
            kernel: 5,
            dropout: 0.5,
            dropout_layers: 3,
            norm: Norm::Batch,
        }
    }

    /// Checks the configuration; messages carry the offending values.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.channels.len() < 2 || self.channels.iter().any(|&c| c <= 0) {
            return Err(Error::config(
                "channels",
                &self.channels,
                "need at least two positive widths",
            ));
        }
        if self.kernel < 3 || self.kernel % 2 == 0 {
            return Err(Error::config("kernel", self.kernel, "must be odd and at least 3"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", self.dropout, "must be in [0, 1)"));
        }
        for &c in &self.channels {
            self.norm.validate(c)?;
        }
        Ok(())
    }

    /// The side every spatial axis must be a multiple of: `2^levels`.
    pub fn size_multiple(&self) -> i64 {
        1 << self.channels.len()
    }
}

/// The network; see the module docs.
#[derive(Debug)]
pub struct DeepUNet {
    cfg: DeepUNetConfig,
    encoder: Vec<(ConvNd, NormLayer)>,
    /// Coarsest first; the last has no norm.
    decoder: Vec<(ConvNd, Option<NormLayer>)>,
}

impl DeepUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &DeepUNetConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, k) = (cfg.dims, cfg.kernel);
        let down = ConvGeometry {
            stride: vec![2; d],
            padding: vec![k / 2; d],
            ..ConvGeometry::same(d, k, 1, true)
        };
        // padding k/2 − 1 and the first sample dropped = PyTorch's padding k/2, output_padding 1.
        let up = ConvGeometry { padding: vec![k / 2 - 1; d], transposed: true, ..down.clone() };
        let n = cfg.channels.len();
        let mut encoder = Vec::with_capacity(n);
        let mut cin = cfg.in_channels;
        for (i, &c) in cfg.channels.iter().enumerate() {
            let p = path / "encoder" / i;
            encoder.push((
                ConvNd::with_geometry(&p / 0, d, cin, c, down.clone())?,
                NormLayer::new(&p / 1, cfg.norm, c)?,
            ));
            cin = c;
        }
        let mut decoder = Vec::with_capacity(n);
        for j in 0..n {
            // Decoder layer j restores the resolution of encoder layer n − 2 − j.
            let cin = if j == 0 { cfg.channels[n - 1] } else { 2 * cfg.channels[n - 1 - j] };
            let last = j == n - 1;
            let cout = if last { cfg.out_channels } else { cfg.channels[n - 2 - j] };
            let p = path / "decoder" / j;
            let norm = if last { None } else { Some(NormLayer::new(&p / 1, cfg.norm, cout)?) };
            decoder.push((ConvNd::with_geometry(&p / 0, d, cin, cout, up.clone())?, norm));
        }
        Ok(Self { cfg: cfg.clone(), encoder, decoder })
    }

    /// The configuration.
    pub fn config(&self) -> &DeepUNetConfig {
        &self.cfg
    }

    /// The soft mask in (0, 1), `[B, out_channels, *S]`, for magnitudes `[B, in_channels, *S]`.
    pub fn mask(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let size = x.size();
        let m = self.cfg.size_multiple();
        if size.len() != self.cfg.dims + 2 || size[1] != self.cfg.in_channels {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[B, {}, {} spatial axes]", self.cfg.in_channels, self.cfg.dims),
            });
        }
        if let Some(&bad) = size[2..].iter().find(|&&s| s % m != 0 || s == 0) {
            return Err(Error::config("input size", bad, format!("must be a multiple of {m}")));
        }
        let mut skips = Vec::with_capacity(self.encoder.len());
        let mut h = x.shallow_clone();
        for (conv, norm) in &self.encoder {
            let y = norm.forward_t(&conv.forward(&h)?, train)?;
            h = y.maximum(&(&y * 0.2));
            skips.push(h.shallow_clone());
        }
        skips.pop(); // the deepest output is `h` itself
        for (j, (deconv, norm)) in self.decoder.iter().enumerate() {
            if j > 0 {
                let skip = skips.pop().ok_or_else(|| Error::config("levels", j, "skip missing"))?;
                h = Tensor::f_cat(&[&h, &skip], 1)?;
            }
            let mut y = deconv.forward(&h)?;
            for axis in 2..y.dim() as i64 {
                let len = y.size()[axis as usize];
                y = y.f_narrow(axis, 1, len - 1)?;
            }
            h = match norm {
                Some(norm) => {
                    let y = norm.forward_t(&y, train)?.relu();
                    if j < self.cfg.dropout_layers {
                        y.dropout(self.cfg.dropout, train)
                    } else {
                        y
                    }
                }
                None => y.sigmoid(),
            };
        }
        Ok(h)
    }

    /// The masked input `mask(x) ⊙ x`, the separated magnitude.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.mask(x, train)? * x)
    }
}
