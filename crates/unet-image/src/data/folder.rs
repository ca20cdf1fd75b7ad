//! Any folder of PNG/JPEG images as a training set (the `image` crate decodes them): resized
//! and centre-cropped to a fixed size, grey or RGB, scaled to [0, 1], with class labels from
//! sub-folder names as torchvision's `ImageFolder`, and random flips and translations for
//! augmentation.
//!
//! ```no_run
//! use unet_image::data::folder::{FolderConfig, ImageFolder};
//! let set = ImageFolder::load("my_photos", &FolderConfig::default())?;
//! let x = set.to_tensor(); // [n, 3, 64, 64] in [-1, 1]
//! # Ok::<(), unet_image::ImageError>(())
//! ```

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use ndarray::Array4;
use tch::{Kind, Tensor};

use crate::{ImageError, Result};

/// Colour handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Channels {
    /// One luminance channel.
    Grey,
    /// Three channels.
    Rgb,
}

impl Channels {
    /// Channel count.
    pub fn count(&self) -> usize {
        match self {
            Channels::Grey => 1,
            Channels::Rgb => 3,
        }
    }
}

/// How [`ImageFolder::load`] shapes images.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FolderConfig {
    /// Output `(height, width)`. Default 64×64.
    pub size: (u32, u32),
    /// Grey or RGB. Default RGB.
    pub channels: Channels,
    /// Resize so the image covers `size`, then crop the centre (keeps the aspect ratio); when
    /// `false`, stretch to `size`. Default `true`.
    pub center_crop: bool,
}

impl Default for FolderConfig {
    fn default() -> Self {
        Self { size: (64, 64), channels: Channels::Rgb, center_crop: true }
    }
}

/// A loaded folder.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// `[n, c, h, w]` in [0, 1].
    pub images: Array4<f32>,
    /// Class index of each image (0 when the folder has no sub-folders).
    pub labels: Vec<usize>,
    /// Class names (sub-folder names, sorted), or `[""]`.
    pub classes: Vec<String>,
    /// Source file of each image.
    pub paths: Vec<PathBuf>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| ImageError::Io { path: dir.into(), source: e })?;
    let mut v = rd
        .map(|e| e.map(|e| e.path()).map_err(|e| ImageError::Io { path: dir.into(), source: e }))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

/// Decodes one file and shapes it to `cfg`: `[c, h, w]` values in [0, 1].
pub fn load_image(path: &Path, cfg: &FolderConfig) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::Io { path: path.into(), source: e })?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| ImageError::Image { path: path.into(), source: e })?;
    let (h, w) = cfg.size;
    if h == 0 || w == 0 {
        return Err(ImageError::Invalid(format!(
            "folder image size must be positive, got {h}×{w}"
        )));
    }
    let img = if cfg.center_crop {
        img.resize_to_fill(w, h, FilterType::Triangle)
    } else {
        img.resize_exact(w, h, FilterType::Triangle)
    };
    let (hw, c) = ((h * w) as usize, cfg.channels.count());
    let mut out = vec![0f32; c * hw];
    match cfg.channels {
        Channels::Grey => {
            for (i, p) in img.to_luma8().pixels().enumerate() {
                out[i] = p.0[0] as f32 / 255.0;
            }
        }
        Channels::Rgb => {
            for (i, p) in img.to_rgb8().pixels().enumerate() {
                for k in 0..3 {
                    out[k * hw + i] = p.0[k] as f32 / 255.0;
                }
            }
        }
    }
    Ok(out)
}

impl ImageFolder {
    /// Loads every PNG/JPEG of `dir` (or of its sub-folders, one class each; other files are
    /// skipped). A file that does not decode is an error naming it; an empty folder too.
    pub fn load(dir: impl AsRef<Path>, cfg: &FolderConfig) -> Result<Self> {
        let dir = dir.as_ref();
        let entries = sorted_entries(dir)?;
        let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let mut files: Vec<(PathBuf, usize)> = Vec::new();
        let classes: Vec<String> = if subdirs.is_empty() {
            files.extend(entries.iter().filter(|p| is_image(p)).map(|p| (p.clone(), 0)));
            vec![String::new()]
        } else {
            for (k, sub) in subdirs.iter().enumerate() {
                files.extend(
                    sorted_entries(sub)?.into_iter().filter(|p| is_image(p)).map(|p| (p, k)),
                );
            }
            subdirs
                .iter()
                .map(|p| {
                    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                })
                .collect()
        };
        if files.is_empty() {
            return Err(ImageError::format(dir, "no .png/.jpg/.jpeg images in this folder"));
        }
        let (h, w) = cfg.size;
        let c = cfg.channels.count();
        let mut data = Vec::with_capacity(files.len() * c * (h * w) as usize);
        for (p, _) in &files {
            data.extend(load_image(p, cfg)?);
        }
        let images = Array4::from_shape_vec((files.len(), c, h as usize, w as usize), data)
            .map_err(|e| ImageError::Invalid(e.to_string()))?;
        Ok(Self {
            images,
            labels: files.iter().map(|f| f.1).collect(),
            paths: files.into_iter().map(|f| f.0).collect(),
            classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[n, c, h, w]` float tensor normalised to [-1, 1].
    pub fn to_tensor(&self) -> Tensor {
        let s = self.images.shape();
        let v: Vec<f32> = self.images.iter().copied().collect();
        Tensor::from_slice(&v).view([s[0] as i64, s[1] as i64, s[2] as i64, s[3] as i64]) * 2.0
            - 1.0
    }
}

/// Random augmentation of a batch `[B, C, H, W]`: horizontal flips with probability ½ and
/// translations by up to `max_shift` pixels (reflection padding, then a random crop), drawn
/// from libtorch's generator (seed it for repeatable batches).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Flip left-right with probability ½.
    pub hflip: bool,
    /// Largest translation in pixels (0: none).
    pub max_shift: i64,
}

impl Augment {
    /// Applies the augmentation, image by image.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        if s.len() != 4 {
            return Err(ImageError::Invalid(format!("augment expects [B, C, H, W], got {s:?}")));
        }
        let (h, w, m) = (s[2], s[3], self.max_shift);
        if m < 0 || m >= h.min(w) {
            return Err(ImageError::Invalid(format!("max_shift {m} must be in [0, {})", h.min(w))));
        }
        let padded = if m > 0 { x.f_reflection_pad2d([m, m, m, m])? } else { x.shallow_clone() };
        let flips = Tensor::rand([s[0]], (Kind::Float, tch::Device::Cpu));
        let shifts = Tensor::randint(2 * m + 1, [s[0], 2], (Kind::Int64, tch::Device::Cpu));
        let mut out = Vec::with_capacity(s[0] as usize);
        for i in 0..s[0] {
            let (dy, dx) = (shifts.int64_value(&[i, 0]), shifts.int64_value(&[i, 1]));
            let mut img = padded.get(i).narrow(1, dy, h).narrow(2, dx, w);
            if self.hflip && flips.double_value(&[i]) < 0.5 {
                img = img.flip([2]);
            }
            out.push(img);
        }
        Ok(Tensor::f_stack(&out, 0)?)
    }
}
