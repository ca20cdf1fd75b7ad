//! N-dimensional (transposed) convolution with PyTorch's parameter layout and initialisation,
//! and the efficient variants of survey Section 8.1 (depthwise-separable, (2+1)D factorised,
//! dilated) behind one [`SpatialConv`].

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::check_dims;
use super::norm::NormLayer;
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

/// Full geometry of a [`ConvNd`], per axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGeometry {
    /// Kernel size per spatial axis.
    pub kernel: Vec<i64>,
    /// Stride per axis.
    pub stride: Vec<i64>,
    /// Zero padding per axis (both sides).
    pub padding: Vec<i64>,
    /// Dilation per axis.
    pub dilation: Vec<i64>,
    /// Channel groups (`in` for depthwise).
    pub groups: i64,
    /// Bias present.
    pub bias: bool,
    /// Transposed convolution.
    pub transposed: bool,
}

impl ConvGeometry {
    /// A stride-1, size-preserving `kernel`-wide (odd) convolution with dilation `dilation`.
    pub fn same(dims: usize, kernel: i64, dilation: i64, bias: bool) -> Self {
        Self {
            kernel: vec![kernel; dims],
            stride: vec![1; dims],
            padding: vec![dilation * (kernel - 1) / 2; dims],
            dilation: vec![dilation; dims],
            groups: 1,
            bias,
            transposed: false,
        }
    }

    /// The uniform geometry of `opts` over `dims` axes.
    pub fn uniform(dims: usize, opts: ConvOptions) -> Self {
        Self {
            kernel: vec![opts.kernel; dims],
            stride: vec![opts.stride; dims],
            padding: vec![opts.padding; dims],
            dilation: vec![1; dims],
            groups: 1,
            bias: opts.bias,
            transposed: opts.transposed,
        }
    }
}

/// Which kernel [`ConvNd::forward`] runs.
enum Route {
    /// 3D `1×kh×kw`: conv2d over the frames.
    Frames,
    /// 3D `kt×1×1`: conv2d over `[T, H·W]`.
    Temporal,
    /// libtorch's N-d convolution.
    Nd,
}

/// `nn.Conv{1,2,3}d` / `nn.ConvTranspose{1,2,3}d` over `dims` spatial axes.
///
/// Weight shape: `[out, in/groups, k…]` (or `[in, out/groups, k…]` when transposed), as PyTorch.
#[derive(Debug)]
pub struct ConvNd {
    /// Kernel weights.
    pub weight: Tensor,
    /// Optional bias, `[out]`.
    pub bias: Option<Tensor>,
    geo: ConvGeometry,
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
        Self::with_geometry(path, dims, cin, cout, ConvGeometry::uniform(dims, opts))
    }

    /// Creates the layer with a per-axis geometry.
    pub fn with_geometry(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        geo: ConvGeometry,
    ) -> Result<Self> {
        check_dims(dims)?;
        if cin <= 0 || cout <= 0 {
            return Err(Error::config("channels", (cin, cout), "channel counts must be positive"));
        }
        let per_axis = [&geo.kernel, &geo.stride, &geo.padding, &geo.dilation];
        if per_axis.iter().any(|v| v.len() != dims) {
            return Err(Error::config(
                "conv",
                &geo,
                format!("every per-axis list needs {dims} entries"),
            ));
        }
        if geo.kernel.iter().chain(&geo.stride).chain(&geo.dilation).any(|&v| v <= 0)
            || geo.padding.iter().any(|&p| p < 0)
        {
            return Err(Error::config(
                "conv",
                &geo,
                "kernel, stride, dilation must be > 0, padding >= 0",
            ));
        }
        if geo.groups <= 0 || cin % geo.groups != 0 || cout % geo.groups != 0 {
            return Err(Error::config(
                "groups",
                geo.groups,
                format!(
                    "{cin} input and {cout} output channels must both divide by the group count"
                ),
            ));
        }
        let ksize: i64 = geo.kernel.iter().product();
        let mut shape = if geo.transposed {
            vec![cin, cout / geo.groups]
        } else {
            vec![cout, cin / geo.groups]
        };
        shape.extend(&geo.kernel);
        // PyTorch computes fan_in from weight.size(1) * receptive field, also for transposed.
        let fan_in = shape[1] * ksize;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let weight = path.f_uniform("weight", &shape, -bound, bound)?;
        let bias =
            if geo.bias { Some(path.f_uniform("bias", &[cout], -bound, bound)?) } else { None };
        Ok(Self { weight, bias, geo })
    }

    /// Applies the convolution; `xs` is `[N, C_in, *spatial]`.
    ///
    /// A 3D convolution whose kernel spans only the last two axes (a per-frame or (2+1)D
    /// spatial conv) runs as a 2D convolution with the first axis folded into the batch, and
    /// one whose kernel spans only the first axis (a temporal conv) as a 2D convolution over
    /// `[T, H·W]`: the same result, 2-3× faster on CPU than libtorch's 3D kernels.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self.route(xs) {
            Route::Frames => self.forward_frames(xs),
            Route::Temporal => self.forward_temporal(xs),
            Route::Nd => self.forward_nd(xs),
        }
    }

    fn route(&self, xs: &Tensor) -> Route {
        let g = &self.geo;
        if g.kernel.len() == 3 && !g.transposed && xs.dim() == 5 {
            if g.kernel[0] == 1 && g.stride[0] == 1 && g.padding[0] == 0 {
                return Route::Frames;
            }
            if g.kernel[1] == 1
                && g.kernel[2] == 1
                && g.stride[1..] == [1, 1]
                && g.padding[1..] == [0, 0]
            {
                return Route::Temporal;
            }
        }
        Route::Nd
    }

    /// `norm(conv(xs))`. In inference (`train == false`) a batch norm is folded into the
    /// kernel and bias of a (non-transposed) convolution, `W' = W · scale`,
    /// `b' = b · scale + shift` ([`NormLayer::eval_affine`]): one pass over the activations
    /// instead of two, the same result up to float rounding. Folding costs a pass over the
    /// kernel, so it is done only where the output has more elements than the kernel (the
    /// high-resolution levels; not the coarse levels with wide kernels and small maps).
    pub fn forward_norm(&self, xs: &Tensor, norm: &NormLayer, train: bool) -> Result<Tensor> {
        let plain = !self.geo.transposed && matches!(self.route(xs), Route::Nd);
        let s = xs.size();
        let out_numel: i64 = s[0] * self.out_channels() * s[2..].iter().product::<i64>()
            / self.geo.stride.iter().product::<i64>().max(1);
        let fold = !train && plain && out_numel > self.weight.numel() as i64;
        match norm.eval_affine().filter(|_| fold) {
            Some((scale, shift)) => {
                let mut view = vec![1i64; self.weight.dim()];
                view[0] = -1;
                let w = &self.weight * scale.f_reshape(view.as_slice())?;
                let b = match &self.bias {
                    Some(b) => b * &scale + shift,
                    None => shift,
                };
                self.convolve(xs, &w, Some(&b))
            }
            _ => norm.forward_t(&self.forward(xs)?, train),
        }
    }

    fn forward_nd(&self, xs: &Tensor) -> Result<Tensor> {
        self.convolve(xs, &self.weight, self.bias.as_ref())
    }

    fn convolve(&self, xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let g = &self.geo;
        let output_padding = vec![0i64; g.kernel.len()];
        Ok(xs.f_convolution(
            weight,
            bias,
            g.stride.as_slice(),
            g.padding.as_slice(),
            g.dilation.as_slice(),
            g.transposed,
            output_padding.as_slice(),
            g.groups,
        )?)
    }

    /// `[N, C, T, H, W]` with a `1×kh×kw` kernel: conv2d on `[N·T, C, H, W]`.
    fn forward_frames(&self, xs: &Tensor) -> Result<Tensor> {
        let g = &self.geo;
        let s = xs.size();
        let (n, c, t) = (s[0], s[1], s[2]);
        let frames = xs.permute([0, 2, 1, 3, 4]).f_reshape([n * t, c, s[3], s[4]])?;
        let y = frames.f_conv2d(
            &self.weight.squeeze_dim(2),
            self.bias.as_ref(),
            &g.stride[1..],
            &g.padding[1..],
            &g.dilation[1..],
            g.groups,
        )?;
        let o = y.size();
        Ok(y.f_reshape([n, t, o[1], o[2], o[3]])?.permute([0, 2, 1, 3, 4]))
    }

    /// `[N, C, T, H, W]` with a `kt×1×1` kernel: conv2d on `[N, C, T, H·W]` (no copy).
    fn forward_temporal(&self, xs: &Tensor) -> Result<Tensor> {
        let g = &self.geo;
        let s = xs.size();
        let w = self.weight.size();
        let y = xs.f_reshape([s[0], s[1], s[2], s[3] * s[4]])?.f_conv2d(
            &self.weight.f_reshape([w[0], w[1], w[2], 1])?,
            self.bias.as_ref(),
            [g.stride[0], 1],
            [g.padding[0], 0],
            [g.dilation[0], 1],
            g.groups,
        )?;
        let o = y.size();
        Ok(y.f_reshape([s[0], o[1], o[2], s[3], s[4]])?)
    }

    /// Stores the kernel of a 2D/3D convolution channels-last (NHWC / NDHWC memory, same
    /// shape and values; the variable itself is re-laid, so its gradient, optimiser state and
    /// checkpoints follow). libtorch's CPU (oneDNN) convolution then runs channels-last for
    /// every input and passes the layout on to its output, which spares the per-call
    /// NCHW ↔ blocked reorders of plain layouts. No-op for 1D kernels.
    pub fn set_channels_last(&self) -> Result<()> {
        let perm: (&[i64], &[i64]) = match self.weight.dim() {
            4 => (&[0, 2, 3, 1], &[0, 3, 1, 2]),
            5 => (&[0, 2, 3, 4, 1], &[0, 4, 1, 2, 3]),
            _ => return Ok(()),
        };
        let relaid = tch::no_grad(|| -> Result<Tensor> {
            Ok(self.weight.f_permute(perm.0)?.f_contiguous()?.f_permute(perm.1)?)
        })?;
        let mut w = self.weight.shallow_clone();
        w.f_set_data(&relaid)?;
        Ok(())
    }

    /// Output channels.
    pub fn out_channels(&self) -> i64 {
        let s = self.weight.size();
        if self.geo.transposed {
            s[1] * self.geo.groups
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

    /// The geometry the layer was built with.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geo
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

/// Which convolution a block uses for its k×…×k layers (survey Section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ConvKind {
    /// A dense k×…×k convolution (`weight` at the layer's path).
    #[default]
    Full,
    /// Depthwise k×…×k convolution (`depthwise`, groups = in) then a pointwise 1×…×1
    /// convolution (`pointwise`): Chollet 2017 / S3D-UNet (Chen 2018).
    Separable,
    /// (2+1)D factorisation (Tran 2018): a convolution over all axes but the first
    /// (`spatial`, kernel 1 on the first axis) then one over the first axis (`temporal`).
    /// For video `[N, C, T, H, W]` the first axis is time. Needs `dims >= 2`.
    Factorised,
    /// A k×…×k convolution over all axes but the first (kernel 1 on the first axis,
    /// `weight` at the layer's path): an image model's convolution run on every frame of a
    /// `[N, C, T, H, W]` clip, with no mixing across time. Needs `dims >= 2`.
    PerFrame,
    /// A dense convolution with dilation `d` (padding `d·(k-1)/2` keeps the size).
    Dilated(i64),
}

/// A same-padded, stride-1 convolution of the chosen [`ConvKind`].
#[derive(Debug)]
pub enum SpatialConv {
    /// Dense (also dilated).
    Full(ConvNd),
    /// Depthwise then pointwise.
    Separable {
        /// Per-channel k×…×k.
        depthwise: ConvNd,
        /// 1×…×1 channel mixing.
        pointwise: ConvNd,
    },
    /// Spatial then temporal.
    Factorised {
        /// Over all axes but the first.
        spatial: ConvNd,
        /// Over the first axis.
        temporal: ConvNd,
    },
}

impl SpatialConv {
    /// Builds a `kernel`-wide same-padded conv of `kind` under `path`.
    pub fn new(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        kernel: i64,
        kind: ConvKind,
        bias: bool,
    ) -> Result<Self> {
        check_dims(dims)?;
        if kernel % 2 == 0 {
            return Err(Error::config(
                "kernel_size",
                kernel,
                "same padding needs an odd kernel size",
            ));
        }
        let same = |k: i64, d: i64| ConvGeometry::same(dims, k, d, bias);
        Ok(match kind {
            ConvKind::Full => {
                SpatialConv::Full(ConvNd::with_geometry(path, dims, cin, cout, same(kernel, 1))?)
            }
            ConvKind::Dilated(d) => {
                if d <= 0 {
                    return Err(Error::config("dilation", d, "must be positive"));
                }
                SpatialConv::Full(ConvNd::with_geometry(path, dims, cin, cout, same(kernel, d))?)
            }
            ConvKind::Separable => SpatialConv::Separable {
                depthwise: ConvNd::with_geometry(
                    &path / "depthwise",
                    dims,
                    cin,
                    cin,
                    ConvGeometry { groups: cin, ..same(kernel, 1) },
                )?,
                pointwise: ConvNd::with_geometry(&path / "pointwise", dims, cin, cout, same(1, 1))?,
            },
            ConvKind::PerFrame => {
                if dims < 2 {
                    return Err(Error::config("conv", kind, "a per-frame conv needs dims >= 2"));
                }
                let mut sp = same(kernel, 1);
                sp.kernel[0] = 1;
                sp.padding[0] = 0;
                SpatialConv::Full(ConvNd::with_geometry(path, dims, cin, cout, sp)?)
            }
            ConvKind::Factorised => {
                if dims < 2 {
                    return Err(Error::config(
                        "conv",
                        kind,
                        "(2+1)D factorisation needs dims >= 2",
                    ));
                }
                let mut sp = same(kernel, 1);
                sp.kernel[0] = 1;
                sp.padding[0] = 0;
                let mut tp = same(1, 1);
                tp.kernel[0] = kernel;
                tp.padding[0] = kernel / 2;
                SpatialConv::Factorised {
                    spatial: ConvNd::with_geometry(&path / "spatial", dims, cin, cout, sp)?,
                    temporal: ConvNd::with_geometry(&path / "temporal", dims, cout, cout, tp)?,
                }
            }
        })
    }

    /// Makes the temporal half of a (2+1)D convolution the identity (centre tap 1 on the
    /// diagonal, the rest and the bias 0), so the layer starts as its spatial convolution
    /// alone: the way video models inflated from image models start their temporal layers.
    /// Other kinds are left unchanged.
    pub fn init_temporal_identity(&mut self) {
        if let SpatialConv::Factorised { temporal, .. } = self {
            tch::no_grad(|| {
                let w = &mut temporal.weight;
                let s = w.size(); // [C, C, k, 1, …]
                let _ = w.zero_();
                let (c, k) = (s[0].min(s[1]), s[2]);
                for i in 0..c {
                    let _ = w.get(i).get(i).narrow(0, k / 2, 1).fill_(1.0);
                }
                if let Some(b) = temporal.bias.as_mut() {
                    let _ = b.zero_();
                }
            });
        }
    }

    /// Applies the convolution (size-preserving).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            SpatialConv::Full(c) => c.forward(xs),
            SpatialConv::Separable { depthwise, pointwise } => {
                pointwise.forward(&depthwise.forward(xs)?)
            }
            SpatialConv::Factorised { spatial, temporal } => {
                temporal.forward(&spatial.forward(xs)?)
            }
        }
    }
}
