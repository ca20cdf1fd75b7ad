//! The audio reproductions of `../shared/MODELS.md` (`cargo xtask reproduce <name>`).

pub mod deep_unet;
pub mod harness;
pub mod unetgan;
pub mod wave_unet;
