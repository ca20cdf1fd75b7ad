//! # unet-3d
//!
//! Volumetric U-Nets of survey Section 4.5 and Table 4. This crate will hold PLY/OFF/STL mesh
//! and INR/VTI/NIfTI volume I/O, voxelisation, sliding-window inference with Gaussian
//! blending, Dice/IoU/Hausdorff-95/Chamfer/coverage/MMD, and the reproductions `unet3d`
//! (Çiçek 2016), `s3d-unet` (Chen 2018), `3dgaunet` (Shi 2023) and `voxel-diffusion`.
//!
//! Today it re-exports [`unet_core`], whose [`unet_core::UNet`] with `dims: 3` is already a 3D
//! U-Net. Run the finished reproduction with `cargo xtask reproduce unet2015`.

pub use unet_core;
pub use unet_core::*;
