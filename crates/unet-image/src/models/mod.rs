//! Ready-made image models: presets (full size and small) and their reproductions.

pub mod controlnet;
pub mod ddpm;
pub mod freeu;
pub mod inpainting;
pub mod ldm;
pub mod pix2pix;
pub mod pixelcnnpp;
pub mod seg_variants;
pub mod segment;
pub mod unet2015;

/// Image models this crate reproduces, for `params` and `reproduce`.
pub const MODELS: &[&str] = &[
    "unet2015",
    "resunet",
    "multiresunet",
    "ddpm",
    "ldm",
    "controlnet",
    "freeu",
    "inpainting",
    "pix2pix",
    "pixelcnnpp",
];
