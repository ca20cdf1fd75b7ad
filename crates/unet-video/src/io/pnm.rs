//! Netpbm grey / colour images (`P2` `P3` `P5` `P6`), the frame format of the ViSP sequences.

use std::path::Path;

use crate::{Result, VideoError};

/// A decoded image: interleaved `[H, W, C]` bytes.
pub(crate) struct Image {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

/// Parses a PGM/PPM file (binary or ASCII, maxval 1..=65535, rescaled to 0..=255).
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Image> {
    let bad = |reason: String| VideoError::format(path, reason);
    let (channels, binary) = match bytes.get(..2) {
        Some(b"P5") => (1, true),
        Some(b"P6") => (3, true),
        Some(b"P2") => (1, false),
        Some(b"P3") => (3, false),
        _ => return Err(bad("not a PGM/PPM file (no P2/P3/P5/P6 magic)".into())),
    };
    let mut pos = 2;
    let mut header = [0usize; 3];
    for (i, field) in ["width", "height", "maxval"].iter().enumerate() {
        header[i] = next_number(bytes, &mut pos)
            .ok_or_else(|| bad(format!("header: missing or bad {field}")))?;
    }
    let [width, height, maxval] = header;
    if width == 0 || height == 0 || maxval == 0 || maxval > 65535 {
        return Err(bad(format!("header: bad size {width}x{height} or maxval {maxval}")));
    }
    let samples = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .filter(|&n| n <= 1 << 30)
        .ok_or_else(|| bad(format!("header: size {width}x{height} too large")))?;
    let scale = |v: usize| -> Result<u8> {
        if v > maxval {
            return Err(bad(format!("sample {v} exceeds maxval {maxval}")));
        }
        Ok(if maxval == 255 { v as u8 } else { ((v * 255 + maxval / 2) / maxval) as u8 })
    };
    let data = if binary {
        // exactly one whitespace byte separates maxval from the raster
        if !bytes.get(pos).is_some_and(|b| b.is_ascii_whitespace()) {
            return Err(bad("header: no whitespace after maxval".into()));
        }
        pos += 1;
        let width_bytes = if maxval < 256 { 1 } else { 2 };
        let need = samples * width_bytes;
        let raster = &bytes[pos.min(bytes.len())..];
        if raster.len() < need {
            return Err(bad(format!(
                "truncated: {width}x{height}x{channels} needs {need} raster bytes, found {}",
                raster.len()
            )));
        }
        if width_bytes == 1 && maxval == 255 {
            raster[..need].to_vec()
        } else if width_bytes == 1 {
            raster[..need].iter().map(|&v| scale(v as usize)).collect::<Result<_>>()?
        } else {
            raster[..need]
                .chunks_exact(2)
                .map(|p| scale(u16::from_be_bytes([p[0], p[1]]) as usize))
                .collect::<Result<_>>()?
        }
    } else {
        let mut data = Vec::new();
        while data.len() < samples {
            let v = next_number(bytes, &mut pos).ok_or_else(|| {
                bad(format!("truncated: {} of {samples} ASCII samples", data.len()))
            })?;
            data.push(scale(v)?);
        }
        data
    };
    Ok(Image { width, height, channels, data })
}

/// The next decimal number of a header, skipping whitespace and `#` comments.
fn next_number(bytes: &[u8], pos: &mut usize) -> Option<usize> {
    loop {
        match bytes.get(*pos)? {
            b'#' => {
                while bytes.get(*pos).is_some_and(|&b| b != b'\n' && b != b'\r') {
                    *pos += 1;
                }
            }
            b if b.is_ascii_whitespace() => *pos += 1,
            _ => break,
        }
    }
    let start = *pos;
    while bytes.get(*pos).is_some_and(|b| b.is_ascii_digit()) {
        *pos += 1;
    }
    if *pos == start || *pos - start > 9 {
        return None;
    }
    std::str::from_utf8(&bytes[start..*pos]).ok()?.parse().ok()
}

/// A binary PGM (`channels` = 1) or PPM (3) with maxval 255.
pub(crate) fn encode(width: usize, height: usize, channels: usize, data: &[u8]) -> Vec<u8> {
    let magic = if channels == 1 { "P5" } else { "P6" };
    let mut out = format!("{magic}\n{width} {height}\n255\n").into_bytes();
    out.extend_from_slice(data);
    out
}
