//! # unet-pose
//!
//! Pose and motion U-Nets of survey Section 4.6:
//!
//! * [`motion`]: the DeepMimic motion clips of pybullet (reader, re-timing, looping, ground
//!   frame); [`skeleton`]: the DeepMimic humanoid and forward kinematics (checked against
//!   pybullet by `tests/fk_pybullet.rs`); [`rotation`]: quaternions and the 6D representation;
//! * [`bvh`]: BVH import/export with forward kinematics ([`bvh::humanoid_bvh`] writes the
//!   humanoid's motions); [`render`]: stick-figure frames, animated GIFs, keypoint images;
//! * [`metrics`]: MPJPE, PA-MPJPE, PCK, foot sliding, diversity;
//! * [`models`]: the reproductions `motion-diffusion` and `hourglass-unet` (network in
//!   [`unet_core::arch::HourglassUNet`]) and the motion classifier behind the motion FD;
//! * [`data`]: the `motions` set (cache or embedded sample), features, windows, normalisation;
//! * [`error`]: typed errors naming the file and line.
//!
//! Fill the cache with `cargo xtask datasets fetch motions`; run the tests with
//! `cargo test -p unet-pose`.

pub mod bvh;
pub mod data;
pub mod error;
pub mod metrics;
pub mod models;
pub mod motion;
pub mod render;
pub mod rotation;
pub mod skeleton;

pub use error::{PoseError, Result};
pub use unet_core;
