//! diffusers-compatible U-Nets: `UNet2DModel` and `UNet2DConditionModel` whose variable names
//! equal diffusers' state-dict keys, configured from a diffusers `config.json`, loadable from
//! and exportable to a diffusers model folder (`config.json` +
//! `diffusion_pytorch_model.safetensors`).
//!
//! Presets: [`presets::ddpm_cifar10`] (Ho et al. 2020, 35,746,307 parameters) and
//! [`presets::sd_v1_5`] (Stable Diffusion v1.5 UNet, 859,520,964 parameters).
//! [`controlnet::ControlNet`] is diffusers' `ControlNetModel` for any of them (Zhang et al. 2023).
//! Export one with `cargo xtask export-diffusers <preset> <dir> [--tiny]`.

pub mod config;
pub mod controlnet;
pub mod folder;
pub mod model;
pub mod presets;

pub use config::{BlockKind, DiffusersConfig, Flavor, MidKind};
pub use controlnet::{ControlNet, ControlNetConfig, ControlOutput};
pub use model::{skip_count, ControlResiduals, DiffusersUNet};
