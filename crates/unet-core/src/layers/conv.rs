//! N-dimensional (transposed) convolution with PyTorch's parameter layout and initialisation.

use tch::{nn, Kind, Tensor};

use super::check_dims;
use crate::{Error, Result};

/// Options of a [`ConvNd`]; the same value is used on every spatial axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvOptions {
    /// Kernel size on every spatial axis.
    pub kernel: i64,
    /// Stride on every spatial axis.
    pub stride: i64,
    /// Zero padding on every side of every spatial axis.
    pub padding: i64,
    /// Whether the layer has a bias.
    pub bias: bool,
    /// Transposed convolution (`ConvTransposeNd`) instead of `ConvNd`.
    pub transposed: bool,
}

impl Default for ConvOptions {
    fn default() -> Self {
        Self { kernel: 3, stride: 1, padding: 1, bias: true, transposed: false }
    }
}

impl ConvOptions {
    /// A `k`-wide convolution with `same` padding for odd `k`.
    pub fn same(kernel: i64) -> Self {
        Self { kernel, padding: kernel / 2, ..Self::default() }
    }
    /// A `k`-wide convolution without padding.
    pub fn valid(kernel: i64) -> Self {
        Self { kernel, padding: 0, ..Self::default() }
    }
    /// Sets the bias flag.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// `nn.Conv{1,2,3}d` / `nn.ConvTranspose{1,2,3}d` over `dims` spatial axes.
///
/// Weight shape: `[out, in, k…]` (or `[in, out, k…]` when transposed), as PyTorch.
#[derive(Debug)]
pub struct ConvNd {
    /// Kernel weights.
    pub weight: Tensor,
    /// Optional bias, `[out]`.
    pub bias: Option<Tensor>,
    dims: usize,
    opts: ConvOptions,
}

impl ConvNd {
    /// Creates the layer under `path` (`path/weight`, `path/bias`), initialised as PyTorch does
    /// (uniform in ±1/√fan_in for weight and bias).
    pub fn new(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        opts: ConvOptions,
    ) -> Result<Self> {
        check_dims(dims)?;
        if cin <= 0 || cout <= 0 {
            return Err(Error::config("channels", (cin, cout), "channel counts must be positive"));
        }
        if opts.kernel <= 0 || opts.stride <= 0 || opts.padding < 0 {
            return Err(Error::config("conv", opts, "kernel and stride must be > 0, padding >= 0"));
        }
        let ksize = opts.kernel.pow(dims as u32);
        let mut shape = if opts.transposed { vec![cin, cout] } else { vec![cout, cin] };
        shape.extend(std::iter::repeat_n(opts.kernel, dims));
        // PyTorch computes fan_in from weight.size(1) * receptive field, also for transposed.
        let fan_in = shape[1] * ksize;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let weight = path.f_uniform("weight", &shape, -bound, bound)?;
        let bias =
            if opts.bias { Some(path.f_uniform("bias", &[cout], -bound, bound)?) } else { None };
        Ok(Self { weight, bias, dims, opts })
    }

    /// Applies the convolution; `xs` is `[N, C_in, *spatial]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let d = self.dims;
        let stride = vec![self.opts.stride; d];
        let padding = vec![self.opts.padding; d];
        let dilation = vec![1i64; d];
        let output_padding = vec![0i64; d];
        Ok(xs.f_convolution(
            &self.weight,
            self.bias.as_ref(),
            stride.as_slice(),
            padding.as_slice(),
            dilation.as_slice(),
            self.opts.transposed,
            output_padding.as_slice(),
            1,
        )?)
    }

    /// Output channels.
    pub fn out_channels(&self) -> i64 {
        let s = self.weight.size();
        if self.opts.transposed {
            s[1]
        } else {
            s[0]
        }
    }

    /// Zeroes weight and bias (for zero-initialised injection points such as ControlNet's).
    pub fn zero_(&mut self) {
        tch::no_grad(|| {
            let _ = self.weight.zero_();
            if let Some(b) = self.bias.as_mut() {
                let _ = b.zero_();
            }
        });
    }

    /// The options the layer was built with.
    pub fn options(&self) -> ConvOptions {
        self.opts
    }

    /// Number of trainable scalars.
    pub fn numel(&self) -> i64 {
        self.weight.numel() as i64 + self.bias.as_ref().map_or(0, |b| b.numel() as i64)
    }

    /// The weight's dtype.
    pub fn kind(&self) -> Kind {
        self.weight.kind()
    }
}
