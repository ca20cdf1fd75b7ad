//! Conversions between `ndarray` buffers and `tch::Tensor` (one copy, no per-element loops).
//!
//! Run its tests: `cargo test -p unet-audio --test stft`.

use ndarray::{Array1, Array2};
use tch::Tensor;

use crate::error::{AudioError, Result};

/// `[rows, cols]` f32 array → f32 CPU tensor of the same shape.
pub fn array2_to_tensor(a: &Array2<f32>) -> Tensor {
    let (r, c) = a.dim();
    let flat: Vec<f32> = a.iter().copied().collect(); // row-major, whatever the layout
    Tensor::from_slice(&flat).view([r as i64, c as i64])
}

/// A 1-D f32 slice → tensor `[n]`.
pub fn slice_to_tensor(a: &[f32]) -> Tensor {
    Tensor::from_slice(a)
}

/// A 2-D tensor (any float kind, any device) → `[rows, cols]` f32 array.
pub fn tensor_to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let size = t.size();
    if size.len() != 2 {
        return Err(AudioError::Invalid(format!("expected a 2-D tensor, got shape {size:?}")));
    }
    let flat = t.f_to_kind(tch::Kind::Float)?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    let v = Vec::<f32>::try_from(flat.f_flatten(0, -1)?)?;
    Array2::from_shape_vec((size[0] as usize, size[1] as usize), v)
        .map_err(|e| AudioError::Invalid(e.to_string()))
}

/// A 1-D tensor → f32 vector.
pub fn tensor_to_array1(t: &Tensor) -> Result<Array1<f32>> {
    if t.dim() != 1 {
        return Err(AudioError::Invalid(format!("expected a 1-D tensor, got {:?}", t.size())));
    }
    let flat = t.f_to_kind(tch::Kind::Float)?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    Ok(Array1::from(Vec::<f32>::try_from(flat)?))
}
