//! Items on textures: a segmentation set synthesised deterministically from a seed.
//!
//! Each scene is a crop of a grey texture photograph (random texture, position, flips,
//! contrast) with 1-3 Fashion-MNIST items pasted on it. Every item gets a random grey-level
//! ramp, so items can be brighter or darker than the background, or similar to it: a
//! threshold cannot separate them reliably, shape and texture must. The mask marks the item
//! pixels (source pixel ≥ `item_threshold`). Training scenes use training items and the top
//! part of each texture; test scenes use test items and the bottom part, so nothing is shared.

use std::ops::Range;

use ndarray::{s, Array2, Array3};
use unet_core::rng::Rng;

use super::fashion_mnist::FashionMnist;
use super::textures::Textures;
use crate::{ImageError, Result};

/// Scene parameters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SceneConfig {
    /// Scene side in pixels. Default 64.
    pub size: usize,
    /// Items per scene, inclusive range. Default 1..=3.
    pub items: (usize, usize),
    /// Std of additive Gaussian noise (intensity units in [0, 1]). Default 0.03.
    pub noise: f64,
    /// Source pixels at or above this value belong to an item. Default 26 (≈ 0.1).
    pub item_threshold: u8,
    /// Minimum contrast between the two ends of an item's grey ramp. Default 0.3.
    pub min_item_contrast: f64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self { size: 64, items: (1, 3), noise: 0.03, item_threshold: 26, min_item_contrast: 0.3 }
    }
}

/// Scenes `[n, h, w]` in `[0, 1]` with binary masks `[n, h, w]`.
#[derive(Debug, Clone)]
pub struct SegmentationSet {
    /// Grey scenes.
    pub images: Array3<f32>,
    /// 1 = item, 0 = background.
    pub masks: Array3<u8>,
}

impl SegmentationSet {
    /// Scenes quantised to 8 bits (as they would be stored in a PNG).
    pub fn images_u8(&self) -> Array3<u8> {
        self.images.mapv(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

/// Synthesises `n` scenes. `texture_rows` selects the fraction of each texture's rows to crop
/// from (e.g. `0.0..0.6` for training, `0.6..1.0` for testing).
pub fn synthesize(
    items: &FashionMnist,
    textures: &Textures,
    texture_rows: Range<f64>,
    n: usize,
    seed: u64,
    cfg: &SceneConfig,
) -> Result<SegmentationSet> {
    let size = cfg.size;
    if items.is_empty() || textures.images.is_empty() {
        return Err(ImageError::Invalid("need at least one item and one texture".into()));
    }
    if cfg.items.0 > cfg.items.1 || cfg.items.1 == 0 {
        return Err(ImageError::Invalid(format!("item count range {:?} is empty", cfg.items)));
    }
    let (ih, iw) = (items.images.shape()[1], items.images.shape()[2]);
    if ih > size || iw > size {
        return Err(ImageError::Invalid(format!(
            "items {ih}x{iw} do not fit in a {size}x{size} scene"
        )));
    }
    for t in &textures.images {
        let (h, w) = t.dim();
        let rows = ((texture_rows.end - texture_rows.start) * h as f64) as usize;
        if rows < size || w < size {
            return Err(ImageError::Invalid(format!(
                "texture {h}x{w} rows {texture_rows:?} are smaller than the {size}px scene"
            )));
        }
    }
    let base = Rng::new(seed);
    let mut images = Array3::<f32>::zeros((n, size, size));
    let mut masks = Array3::<u8>::zeros((n, size, size));
    for i in 0..n {
        let mut rng = base.fork(i as u64);
        // Background: a texture crop with random flips and contrast.
        let tex = &textures.images[rng.below(textures.images.len() as u64) as usize];
        let (th, tw) = tex.dim();
        let r0 = (texture_rows.start * th as f64) as usize;
        let r1 = (texture_rows.end * th as f64) as usize;
        let y = r0 + rng.below((r1 - r0 - size + 1) as u64) as usize;
        let x = rng.below((tw - size + 1) as u64) as usize;
        let mut crop = tex.slice(s![y..y + size, x..x + size]).mapv(|v| v as f32 / 255.0);
        if rng.bernoulli(0.5) {
            crop.invert_axis(ndarray::Axis(0));
        }
        if rng.bernoulli(0.5) {
            crop.invert_axis(ndarray::Axis(1));
        }
        let contrast = rng.range_f64(0.4, 1.0) as f32;
        let offset = rng.range_f64(0.0, 1.0 - contrast as f64) as f32;
        let mut scene: Array2<f32> = crop.mapv(|v| offset + contrast * v);
        let mut mask = Array2::<u8>::zeros((size, size));

        // Items with random grey ramps.
        let k = cfg.items.0 + rng.below((cfg.items.1 - cfg.items.0 + 1) as u64) as usize;
        for _ in 0..k {
            let idx = rng.below(items.len() as u64) as usize;
            let item = items.images.slice(s![idx, .., ..]);
            let oy = rng.below((size - ih + 1) as u64) as usize;
            let ox = rng.below((size - iw + 1) as u64) as usize;
            let flip = rng.bernoulli(0.5);
            let (lo, hi) = loop {
                let (a, b) = (rng.uniform(), rng.uniform());
                if (a - b).abs() >= cfg.min_item_contrast {
                    break (a as f32, b as f32);
                }
            };
            for yy in 0..ih {
                for xx in 0..iw {
                    let v = item[[yy, if flip { iw - 1 - xx } else { xx }]];
                    if v >= cfg.item_threshold {
                        let t = v as f32 / 255.0;
                        scene[[oy + yy, ox + xx]] = lo + (hi - lo) * t;
                        mask[[oy + yy, ox + xx]] = 1;
                    }
                }
            }
        }
        for v in scene.iter_mut() {
            *v = (*v + (cfg.noise * rng.normal()) as f32).clamp(0.0, 1.0);
        }
        images.slice_mut(s![i, .., ..]).assign(&scene);
        masks.slice_mut(s![i, .., ..]).assign(&mask);
    }
    Ok(SegmentationSet { images, masks })
}
