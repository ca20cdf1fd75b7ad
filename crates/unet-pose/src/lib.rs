//! # unet-pose
//!
//! Pose and motion U-Nets of survey Section 4.6. This crate will hold the DeepMimic mocap clips
//! of pybullet with forward kinematics, BVH import/export, rotation representations, MPJPE,
//! PA-MPJPE, PCK, foot sliding and a motion Fréchet distance, stick-figure animations, and the
//! reproductions `motion-diffusion` (1D temporal U-Net with classifier-free guidance) and
//! `hourglass-unet` (Bulat 2020).
//!
//! Today it re-exports [`unet_core`], whose 1D [`unet_core::UNet`] runs over joint sequences.
//! Run the finished reproduction with `cargo xtask reproduce unet2015`.

pub use unet_core;
pub use unet_core::*;
