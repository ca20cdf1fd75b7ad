//! Spectrogram pictures for reports: log-magnitude STFT panels (dB, an 80 dB range below the
//! loudest bin of all panels, so panels are comparable), low frequencies at the bottom,
//! coloured with a viridis-like map, stacked top to bottom into one PNG.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::convert::slice_to_tensor;
use crate::error::{AudioError, Result};
use crate::stft::{magnitude, Stft, StftConfig};

/// Viridis control points (matplotlib's map sampled at 0, 0.25, 0.5, 0.75, 1).
const VIRIDIS: [[f64; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

fn colour(v: f64) -> Rgb<u8> {
    let v = v.clamp(0.0, 1.0) * 4.0;
    let i = (v.floor() as usize).min(3);
    let t = v - i as f64;
    let c = |k: usize| (VIRIDIS[i][k] * (1.0 - t) + VIRIDIS[i + 1][k] * t).round() as u8;
    Rgb([c(0), c(1), c(2)])
}

/// Writes the spectrograms of `panels` (mono signals at one rate) to `path`: a 256-point STFT
/// with hop 64 (or `n_fft`/`hop` scaled for long signals so a panel is at most 1200 px wide),
/// one pixel per bin and frame, 4 px of white between panels.
pub fn write_spectrograms(path: &Path, panels: &[&[f32]], n_fft: i64) -> Result<()> {
    let longest = panels.iter().map(|p| p.len()).max().unwrap_or(0);
    if panels.is_empty() || longest == 0 {
        return Err(AudioError::Invalid(format!("{}: no samples to draw", path.display())));
    }
    let hop = ((longest as i64 / 1200).max(n_fft / 4)).max(1);
    let stft = Stft::new(StftConfig { n_fft, hop, win: n_fft, center: true })?;
    let mut mags = Vec::with_capacity(panels.len());
    for p in panels {
        let x = slice_to_tensor(p).unsqueeze(0);
        let m = magnitude(&stft.forward(&x)?)?.squeeze_dim(0); // [bins, frames]
        let db = (m.clamp_min(1e-10)).log10() * 20.0;
        let size = db.size();
        let v = Vec::<f32>::try_from(db.flatten(0, -1))?;
        mags.push((size[0] as usize, size[1] as usize, v));
    }
    let top = mags.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(f32::MIN, f32::max) as f64;
    let bins = mags[0].0;
    let width = mags.iter().map(|m| m.1).max().unwrap_or(1);
    let gap = 4usize;
    let height = mags.len() * bins + (mags.len() - 1) * gap;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
    for (k, (b, f, v)) in mags.iter().enumerate() {
        let y0 = k * (bins + gap);
        for bin in 0..*b {
            for frame in 0..*f {
                let db = v[bin * f + frame] as f64;
                let y = y0 + (b - 1 - bin);
                img.put_pixel(frame as u32, y as u32, colour((db - top + 80.0) / 80.0));
            }
        }
    }
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| AudioError::format(path, format!("PNG encoding failed: {e}")))?;
    unet_core::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}
