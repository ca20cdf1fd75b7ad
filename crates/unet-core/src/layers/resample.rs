//! Down- and up-sampling by a factor of 2 on every spatial axis, for any rank.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::Result;

/// How an encoder level halves the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Downsample {
    /// 2×…×2 max pooling, stride 2 (Algorithm 1, Ronneberger 2015).
    #[default]
    MaxPool,
    /// 2×…×2 average pooling, stride 2.
    AvgPool,
    /// A learned 2×…×2 convolution with stride 2 that keeps the channel count.
    StridedConv,
}

/// How a decoder level doubles the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Upsample {
    /// 2×…×2 transposed convolution, stride 2 ("up-convolution", Algorithm 1).
    #[default]
    TransposedConv,
    /// Fixed interpolation by 2 followed by a learned 1×…×1 convolution that sets the
    /// channel count.
    Interpolate(InterpolationMode),
}

/// Interpolation kernel of [`Upsample::Interpolate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum InterpolationMode {
    /// Nearest neighbour.
    #[default]
    Nearest,
    /// Linear / bilinear / trilinear by rank (`align_corners = false`).
    Linear,
}

/// 2× max pooling over the `dims` trailing axes of `xs`.
pub fn max_pool(xs: &Tensor, dims: usize) -> Result<Tensor> {
    let k = vec![2i64; dims];
    let s = vec![2i64; dims];
    let p = vec![0i64; dims];
    let d = vec![1i64; dims];
    Ok(match dims {
        1 => xs.f_max_pool1d(k.as_slice(), s.as_slice(), p.as_slice(), d.as_slice(), false)?,
        2 => xs.f_max_pool2d(k.as_slice(), s.as_slice(), p.as_slice(), d.as_slice(), false)?,
        _ => xs.f_max_pool3d(k.as_slice(), s.as_slice(), p.as_slice(), d.as_slice(), false)?,
    })
}

/// 2× average pooling over the `dims` trailing axes of `xs`.
pub fn avg_pool(xs: &Tensor, dims: usize) -> Result<Tensor> {
    let k = vec![2i64; dims];
    let s = vec![2i64; dims];
    let p = vec![0i64; dims];
    Ok(match dims {
        1 => xs.f_avg_pool1d(k.as_slice(), s.as_slice(), p.as_slice(), false, true)?,
        2 => xs.f_avg_pool2d(k.as_slice(), s.as_slice(), p.as_slice(), false, true, None)?,
        _ => xs.f_avg_pool3d(k.as_slice(), s.as_slice(), p.as_slice(), false, true, None)?,
    })
}

/// Interpolates the `dims` trailing axes of `xs` to twice their size.
pub fn interpolate2x(xs: &Tensor, dims: usize, mode: InterpolationMode) -> Result<Tensor> {
    let size = xs.size();
    let out: Vec<i64> = size[size.len() - dims..].iter().map(|s| s * 2).collect();
    let o = out.as_slice();
    Ok(match (mode, dims) {
        (InterpolationMode::Nearest, 1) => xs.f_upsample_nearest1d(o, None)?,
        (InterpolationMode::Nearest, 2) => xs.f_upsample_nearest2d(o, None, None)?,
        (InterpolationMode::Nearest, _) => xs.f_upsample_nearest3d(o, None, None, None)?,
        (InterpolationMode::Linear, 1) => xs.f_upsample_linear1d(o, false, None)?,
        (InterpolationMode::Linear, 2) => xs.f_upsample_bilinear2d(o, false, None, None)?,
        (InterpolationMode::Linear, _) => xs.f_upsample_trilinear3d(o, false, None, None, None)?,
    })
}

/// Crops the `dims` trailing axes of `xs` around their centre to `target` (crop-and-concat of
/// Ronneberger 2015). Sizes already equal are left untouched.
pub fn center_crop(xs: &Tensor, target: &[i64]) -> Result<Tensor> {
    let size = xs.size();
    let first = size.len() - target.len();
    let mut out = xs.shallow_clone();
    for (i, &t) in target.iter().enumerate() {
        let axis = first + i;
        let s = size[axis];
        if s != t {
            let start = (s - t) / 2;
            out = out.f_narrow(axis as i64, start, t)?;
        }
    }
    Ok(out)
}

/// Nearest-neighbour interpolation of the trailing axes of `xs` to exactly `size` (diffusers'
/// `F.interpolate(x, size=…, mode="nearest")`); an empty `size` means ×2.
pub fn interpolate_to(xs: &Tensor, size: &[i64]) -> Result<Tensor> {
    let nd = xs.dim();
    let dims = nd - 2;
    if size.is_empty() {
        return interpolate2x(xs, dims, InterpolationMode::Nearest);
    }
    let o = size;
    Ok(match dims {
        1 => xs.f_upsample_nearest1d(o, None)?,
        2 => xs.f_upsample_nearest2d(o, None, None)?,
        _ => xs.f_upsample_nearest3d(o, None, None, None)?,
    })
}
