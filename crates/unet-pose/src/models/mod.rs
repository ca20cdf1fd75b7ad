//! The pose reproductions and the networks they train.

pub mod artefacts;
pub mod classifier;
pub mod hourglass;
pub mod motion_diffusion;
pub mod motion_generate;
