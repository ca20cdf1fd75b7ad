//! Derived paired sets synthesised deterministically from a seed: degraded → clean pairs (blur
//! and noise, for image-to-image translation) and edge maps (Sobel magnitude, for control).
//!
//! Used by `cargo xtask reproduce pix2pix`.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use unet_core::rng::Rng;

use crate::{ImageError, Result};

/// How [`degrade`] corrupts an image: a Gaussian blur and additive Gaussian noise, each with a
/// strength drawn per image from a range.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Degradation {
    /// Blur σ in pixels, drawn uniformly in this range. Default (0.8, 1.6).
    pub blur_sigma: (f64, f64),
    /// Noise σ in intensity units ([0, 1] images), drawn uniformly. Default (0.08, 0.2).
    pub noise_sigma: (f64, f64),
}

impl Default for Degradation {
    fn default() -> Self {
        Self { blur_sigma: (0.8, 1.6), noise_sigma: (0.08, 0.2) }
    }
}

impl Degradation {
    fn validate(&self) -> Result<()> {
        let ok = |(a, b): (f64, f64)| a.is_finite() && b.is_finite() && 0.0 <= a && a <= b;
        if !ok(self.blur_sigma) || !ok(self.noise_sigma) {
            return Err(ImageError::Invalid(format!(
                "degradation ranges must be 0 ≤ lo ≤ hi: blur {:?}, noise {:?}",
                self.blur_sigma, self.noise_sigma
            )));
        }
        Ok(())
    }
}

fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as i64;
    let w: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| (v / s) as f32).collect()
}

/// Separable convolution with edge replication.
fn blur(img: ArrayView2<f32>, k: &[f32]) -> Array2<f32> {
    let (h, w) = img.dim();
    let r = (k.len() / 2) as i64;
    let at = |n: usize, i: i64| i.clamp(0, n as i64 - 1) as usize;
    let mut tmp = Array2::<f32>::zeros((h, w));
    for y in 0..h {
        for x in 0..w {
            tmp[[y, x]] = k
                .iter()
                .enumerate()
                .map(|(j, kv)| kv * img[[y, at(w, x as i64 + j as i64 - r)]])
                .sum();
        }
    }
    let mut out = Array2::<f32>::zeros((h, w));
    for y in 0..h {
        for x in 0..w {
            out[[y, x]] = k
                .iter()
                .enumerate()
                .map(|(j, kv)| kv * tmp[[at(h, y as i64 + j as i64 - r), x]])
                .sum();
        }
    }
    out
}

/// Degrades every image of `images` (`[n, h, w]`, u8) into `[0, 1]` floats: blur, then noise,
/// then clamping. Image `i` depends only on `seed` and `i`.
pub fn degrade(images: &Array3<u8>, seed: u64, cfg: &Degradation) -> Result<Array3<f32>> {
    cfg.validate()?;
    let root = Rng::new(seed);
    let mut out = Array3::<f32>::zeros(images.dim());
    for (i, (src, mut dst)) in images.outer_iter().zip(out.outer_iter_mut()).enumerate() {
        let mut rng = root.fork(i as u64);
        let sigma = rng.range_f64(cfg.blur_sigma.0, cfg.blur_sigma.1);
        let noise = rng.range_f64(cfg.noise_sigma.0, cfg.noise_sigma.1);
        let clean = src.mapv(|v| v as f32 / 255.0);
        let b = blur(clean.view(), &gaussian_kernel(sigma));
        dst.assign(&b.mapv(|v| (v + (noise * rng.normal()) as f32).clamp(0.0, 1.0)));
    }
    Ok(out)
}

/// Binary edge maps (`[n, h, w]`, 0/1) of `images`: Sobel gradient magnitude of the image in
/// `[0, 1]` above `threshold` (ControlNet's edge conditioning, without Canny's thinning).
pub fn sobel_edges(images: &Array3<u8>, threshold: f32) -> Array3<u8> {
    let (n, h, w) = images.dim();
    let mut out = Array3::<u8>::zeros((n, h, w));
    for (src, mut dst) in images.outer_iter().zip(out.outer_iter_mut()) {
        let p = |y: i64, x: i64| -> f32 {
            let (yy, xx) = (y.clamp(0, h as i64 - 1) as usize, x.clamp(0, w as i64 - 1) as usize);
            src[[yy, xx]] as f32 / 255.0
        };
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let gx = p(y - 1, x + 1) + 2.0 * p(y, x + 1) + p(y + 1, x + 1)
                    - p(y - 1, x - 1)
                    - 2.0 * p(y, x - 1)
                    - p(y + 1, x - 1);
                let gy = p(y + 1, x - 1) + 2.0 * p(y + 1, x) + p(y + 1, x + 1)
                    - p(y - 1, x - 1)
                    - 2.0 * p(y - 1, x)
                    - p(y - 1, x + 1);
                dst[[y as usize, x as usize]] = ((gx * gx + gy * gy).sqrt() > threshold) as u8;
            }
        }
    }
    out
}

/// The first `n` images of a `[N, h, w]` set (a view copied out), e.g. to cap a training set.
pub fn head<T: Clone>(set: &Array3<T>, n: usize) -> Array3<T> {
    set.slice_axis(Axis(0), (0..n.min(set.dim().0)).into()).to_owned()
}
