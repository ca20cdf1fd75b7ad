//! Ready-made image models: presets (full size and small) and their reproductions.

pub mod ddpm;
pub mod freeu;
pub mod inpainting;
pub mod unet2015;

/// Image models this crate reproduces, for `params` and `reproduce`.
pub const MODELS: &[&str] = &["unet2015", "ddpm", "freeu", "inpainting"];
