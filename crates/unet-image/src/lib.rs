//! # unet-image
//!
//! Image U-Nets of survey Section 4.1 (Tables 2-4): image data sets (Fashion-MNIST from its
//! IDX files, scikit-image textures, PNG/JPEG folders, derived sets synthesised from a seed),
//! segmentation metrics (Dice, IoU) with an Otsu baseline, PNG grids, and ready-made models
//! with their reproductions. The first is `unet2015` (Ronneberger et al. 2015).
//!
//! Run it: `cargo xtask reproduce unet2015`. This crate re-exports [`unet_core`], so it is the
//! only dependency an image project needs.

pub mod classifier;
pub mod data;
pub mod error;
pub mod io;
pub mod metrics;
pub mod models;
pub mod sample;

pub use error::{ImageError, Result};
pub use unet_core;
pub use unet_core::*;
