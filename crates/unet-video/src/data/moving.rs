//! Moving Fashion-MNIST / MNIST clips (after Srivastava et al. 2015's Moving MNIST), generated
//! deterministically: every clip is a function of `(seed, clip index)` only.
//!
//! Each clip pastes `items` images of the source set, shrunk to `item_size`², on a black
//! `canvas`² frame; every item starts at a uniform position with a uniform direction and a
//! speed drawn from `speed` (pixels per frame) and bounces off the borders (reflection of the
//! position, exact for any speed). Overlapping items combine by maximum, as in Moving MNIST.

use tch::{Device, Kind, Tensor};
use unet_core::rng::Rng;
use unet_image::data::fashion_mnist::FashionMnist;

use crate::{Result, VideoError};

/// Parameters of the clips.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MovingConfig {
    /// Frame side in pixels.
    pub canvas: i64,
    /// Side of a pasted item (the 28×28 source image, resampled with anti-aliasing).
    pub item_size: i64,
    /// Frames per clip.
    pub frames: i64,
    /// Items per clip.
    pub items: usize,
    /// Speed range in pixels per frame `[lo, hi)`.
    pub speed: (f64, f64),
}

impl Default for MovingConfig {
    /// 8 frames of 32×32 with one 18×18 item at 1–3 px/frame: the clips the video models train on.
    fn default() -> Self {
        Self { canvas: 32, item_size: 18, frames: 8, items: 1, speed: (1.0, 3.0) }
    }
}

impl MovingConfig {
    /// Checks that items fit and move.
    pub fn validate(&self) -> Result<()> {
        if self.canvas <= 0 || self.item_size <= 0 || self.item_size > self.canvas {
            return Err(VideoError::invalid(format!(
                "moving clips: item_size {} must lie in 1..={} (canvas)",
                self.item_size, self.canvas
            )));
        }
        if self.frames <= 0 || self.items == 0 {
            return Err(VideoError::invalid(format!(
                "moving clips: need frames ({}) and items ({}) > 0",
                self.frames, self.items
            )));
        }
        let (lo, hi) = self.speed;
        if !(lo >= 0.0 && hi >= lo && hi.is_finite()) {
            return Err(VideoError::invalid(format!("moving clips: bad speed range {lo}..{hi}")));
        }
        Ok(())
    }
}

/// A set of clips with what generated them.
#[derive(Debug)]
pub struct MovingClips {
    /// `[N, 1, T, H, W]` float in [-1, 1] (background −1).
    pub clips: Tensor,
    /// Source-set labels of each clip's items.
    pub labels: Vec<Vec<u8>>,
    /// Top-left corner `(y, x)` of every item in every frame: `[clip][frame][item]`.
    pub positions: Vec<Vec<Vec<(f64, f64)>>>,
}

/// Reflects `p` into `[0, span]` (bouncing off both ends, any distance).
fn reflect(p: f64, span: f64) -> f64 {
    if span <= 0.0 {
        return 0.0;
    }
    let period = 2.0 * span;
    let m = p.rem_euclid(period);
    if m <= span {
        m
    } else {
        period - m
    }
}

/// The images `idx` of `set` resampled to `size`² in [0, 1]: `[idx.len(), size, size]` (each
/// image on its own, so the result does not depend on which others are drawn).
fn shrink(set: &FashionMnist, idx: &[usize], size: i64) -> Result<Tensor> {
    let n = idx.len() as i64;
    let mut v: Vec<u8> = Vec::with_capacity(idx.len() * 784);
    for &i in idx {
        v.extend(set.images.index_axis(ndarray::Axis(0), i).iter().copied());
    }
    let x = Tensor::from_slice(&v).view([n, 1, 28, 28]).to_kind(Kind::Float) / 255.0;
    let x = if size == 28 {
        x
    } else {
        x.f_internal_upsample_bilinear2d_aa([size, size], false, None, None)?
    };
    Ok(x.clamp(0.0, 1.0).view([n, size, size]))
}

/// Generates `n` clips from `set` with `cfg`; clip `k` depends on `(seed, k)` only. Only the
/// drawn items are resampled, so a training batch costs its own size, not the set's.
pub fn generate(
    set: &FashionMnist,
    n: usize,
    cfg: &MovingConfig,
    seed: u64,
) -> Result<MovingClips> {
    cfg.validate()?;
    if set.is_empty() {
        return Err(VideoError::invalid("moving clips: empty source set"));
    }
    let s = cfg.item_size as usize;
    let c = cfg.canvas as usize;
    let t = cfg.frames as usize;
    let span = (c - s) as f64;
    let root = Rng::new(seed);
    let mut data = vec![0f32; n * t * c * c];
    let mut labels = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    // Draw every clip's items and tracks, then resample just those items.
    let mut all_tracks = Vec::with_capacity(n);
    let mut drawn = Vec::with_capacity(n * cfg.items);
    for k in 0..n {
        let mut rng = root.fork(k as u64);
        let mut tracks = Vec::new();
        for _ in 0..cfg.items {
            let idx = rng.below(set.len() as u64) as usize;
            let (y0, x0) = (rng.range_f64(0.0, span), rng.range_f64(0.0, span));
            let angle = rng.range_f64(0.0, std::f64::consts::TAU);
            let speed = rng.range_f64(cfg.speed.0, cfg.speed.1.max(cfg.speed.0 + 1e-9));
            tracks.push((drawn.len(), y0, x0, speed * angle.sin(), speed * angle.cos()));
            drawn.push(idx);
        }
        labels.push(
            drawn[drawn.len() - cfg.items..].iter().map(|&i| set.labels[i]).collect::<Vec<u8>>(),
        );
        all_tracks.push(tracks);
    }
    let items = shrink(set, &drawn, cfg.item_size)?;
    let item_px: Vec<f32> = Vec::<f32>::try_from(items.flatten(0, -1))?;
    for (k, tracks) in all_tracks.iter().enumerate() {
        let mut clip_pos = Vec::with_capacity(t);
        for f in 0..t {
            let frame = &mut data[(k * t + f) * c * c..(k * t + f + 1) * c * c];
            let mut at = Vec::new();
            for &(idx, y0, x0, vy, vx) in tracks {
                let y = reflect(y0 + vy * f as f64, span);
                let x = reflect(x0 + vx * f as f64, span);
                at.push((y, x));
                let (oy, ox) = (y.round() as usize, x.round() as usize);
                let src = &item_px[idx * s * s..(idx + 1) * s * s];
                for r in 0..s {
                    let row = &mut frame[(oy + r) * c + ox..(oy + r) * c + ox + s];
                    for (d, &v) in row.iter_mut().zip(&src[r * s..(r + 1) * s]) {
                        *d = d.max(v);
                    }
                }
            }
            clip_pos.push(at);
        }
        positions.push(clip_pos);
    }
    let clips =
        Tensor::from_slice(&data).view([n as i64, 1, t as i64, c as i64, c as i64]) * 2.0 - 1.0;
    Ok(MovingClips { clips: clips.to_device(Device::Cpu), labels, positions })
}
