//! Image files: grey PNG/JPEG in and out, `ndarray` ↔ `tch::Tensor`, and PNG grids.

use std::path::Path;

use image::{GrayImage, ImageReader, Luma};
use ndarray::{Array2, Array3};
use tch::{Kind, Tensor};

use crate::{ImageError, Result};

/// Decodes a PNG/JPEG (any colour type) from memory into a grey `[h, w]` `u8` array.
pub fn decode_gray(bytes: &[u8], origin: &Path) -> Result<Array2<u8>> {
    let img = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Io { path: origin.into(), source: e })?
        .decode()
        .map_err(|e| ImageError::Image { path: origin.into(), source: e })?
        .into_luma8();
    let (w, h) = img.dimensions();
    Array2::from_shape_vec((h as usize, w as usize), img.into_raw())
        .map_err(|e| ImageError::format(origin, e.to_string()))
}

/// Reads a PNG/JPEG file as grey `[h, w]` `u8`.
pub fn read_gray(path: impl AsRef<Path>) -> Result<Array2<u8>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ImageError::Io { path: path.into(), source: e })?;
    decode_gray(&bytes, path)
}

/// Writes a grey `[h, w]` image with values in `[0, 1]` (clamped) as PNG, atomically.
pub fn write_gray_png(path: impl AsRef<Path>, img: &Array2<f32>) -> Result<()> {
    let path = path.as_ref();
    let (h, w) = img.dim();
    let mut out = GrayImage::new(w as u32, h as u32);
    for ((y, x), &v) in img.indexed_iter() {
        out.put_pixel(x as u32, y as u32, Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8]));
    }
    let mut bytes = Vec::new();
    out.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| ImageError::Image { path: path.into(), source: e })?;
    unet_core::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}

/// Tiles `cells` (`rows × cols`, row-major, each `[h, w]` in `[0, 1]`) into one image with a
/// `pad`-pixel white border between cells.
pub fn grid(cells: &[Array2<f32>], cols: usize, pad: usize) -> Result<Array2<f32>> {
    let first = cells.first().ok_or_else(|| ImageError::Invalid("grid of zero cells".into()))?;
    let (h, w) = first.dim();
    if let Some(c) = cells.iter().find(|c| c.dim() != (h, w)) {
        return Err(ImageError::Invalid(format!(
            "grid cells differ in size: {:?} vs {:?}",
            c.dim(),
            (h, w)
        )));
    }
    let cols = cols.max(1);
    let rows = cells.len().div_ceil(cols);
    let mut out = Array2::<f32>::ones((rows * (h + pad) + pad, cols * (w + pad) + pad));
    for (i, c) in cells.iter().enumerate() {
        let (r, k) = (i / cols, i % cols);
        let (y0, x0) = (pad + r * (h + pad), pad + k * (w + pad));
        out.slice_mut(ndarray::s![y0..y0 + h, x0..x0 + w]).assign(c);
    }
    Ok(out)
}

/// `[n, h, w]` `f32` array → `[n, 1, h, w]` float tensor (one copy, no per-element loop).
pub fn to_tensor(a: &Array3<f32>) -> Tensor {
    let (n, h, w) = a.dim();
    let t = match a.as_slice() {
        Some(s) => Tensor::from_slice(s),
        None => Tensor::from_slice(&a.iter().copied().collect::<Vec<f32>>()),
    };
    t.view([n as i64, 1, h as i64, w as i64])
}

/// A `[h, w]` float tensor (any device) → `ndarray`.
pub fn to_array2(t: &Tensor) -> Result<Array2<f32>> {
    let size = t.size();
    if size.len() != 2 {
        return Err(ImageError::Invalid(format!("expected a [h, w] tensor, got {size:?}")));
    }
    let v = Vec::<f32>::try_from(
        t.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]),
    )?;
    Array2::from_shape_vec((size[0] as usize, size[1] as usize), v)
        .map_err(|e| ImageError::Invalid(e.to_string()))
}
