//! placeholder
pub use unet_core;
