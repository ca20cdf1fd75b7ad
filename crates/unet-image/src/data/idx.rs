//! Reader of the IDX format of (Fashion-)MNIST (LeCun et al.), gzip-compressed or raw.
//!
//! Layout: a big-endian magic `0x00 0x00 <type> <ndim>`, `ndim` big-endian u32 sizes, then the
//! data. Only unsigned bytes (`type = 0x08`) occur in (Fashion-)MNIST and are supported.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use ndarray::{ArrayD, IxDyn};

use crate::{ImageError, Result};

/// Decodes IDX bytes (gzip detected by its magic) into an `ndarray` of `u8`; `origin` names the
/// source in errors.
pub fn decode(bytes: &[u8], origin: &Path) -> Result<ArrayD<u8>> {
    let raw;
    let data: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| ImageError::format(origin, format!("corrupt gzip stream: {e}")))?;
        raw = out;
        &raw
    } else {
        bytes
    };
    if data.len() < 4 {
        return Err(ImageError::format(
            origin,
            format!("IDX header needs 4 bytes, file has {}", data.len()),
        ));
    }
    if data[0] != 0 || data[1] != 0 {
        return Err(ImageError::format(
            origin,
            "not an IDX file (magic must start with two zero bytes)",
        ));
    }
    if data[2] != 0x08 {
        return Err(ImageError::format(
            origin,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                data[2]
            ),
        ));
    }
    let ndim = data[3] as usize;
    if ndim == 0 || data.len() < 4 + 4 * ndim {
        return Err(ImageError::format(
            origin,
            format!("truncated IDX header ({ndim} dimensions)"),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(data[4 + 4 * i..8 + 4 * i].try_into().unwrap_or([0; 4])) as usize
        })
        .collect();
    let n: usize = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| ImageError::format(origin, format!("IDX dimensions {dims:?} overflow")))?;
    let body = &data[4 + 4 * ndim..];
    if body.len() != n {
        return Err(ImageError::format(
            origin,
            format!("IDX dimensions {dims:?} need {n} bytes of data, file has {}", body.len()),
        ));
    }
    ArrayD::from_shape_vec(IxDyn(&dims), body.to_vec())
        .map_err(|e| ImageError::format(origin, e.to_string()))
}

/// Reads an IDX file from disk.
pub fn read(path: impl AsRef<Path>) -> Result<ArrayD<u8>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ImageError::Io { path: path.into(), source: e })?;
    decode(&bytes, path)
}

/// Encodes an `ndarray` of `u8` as raw (uncompressed) IDX bytes.
pub fn encode(a: &ArrayD<u8>) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, a.ndim() as u8];
    for &d in a.shape() {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend(a.iter().copied());
    out
}

/// A label for in-memory sources in error messages.
pub fn embedded(name: &str) -> PathBuf {
    PathBuf::from(format!("<embedded>/{name}"))
}
