//! # unet-core
//!
//! The dimension-generic heart of unet-rs: the U-Net of Algorithm 1 of *Revisiting U-Net: a
//! foundational backbone for modern generative AI* (survey Section 2.2) written once for 1D,
//! 2D and 3D data, its building blocks (conv blocks, norms, activations, down/up-sampling,
//! skip fusion), strict safetensors checkpoints, and the shared pieces of every reproduction
//! (deterministic RNG, loss plots, progress bars). Modality crates (`unet-image`,
//! `unet-audio`, …) re-export this crate.
//!
//! ```no_run
//! use tch::{nn, Device, Kind, Tensor};
//! use unet_core::{UNet, UNetConfig};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = UNet::new(&vs.root(), &UNetConfig::algorithm1(2, 32, 4))?;
//! let x = Tensor::randn([4, 1, 128, 128], (Kind::Float, Device::Cpu));
//! let y = net.forward_t(&x, false)?; // [4, 1, 128, 128]
//! # Ok::<(), unet_core::Error>(())
//! ```
//!
//! Run the first reproduction with `cargo xtask reproduce unet2015`.

pub mod arch;
pub mod attention;
pub mod autoregressive;
pub mod blocks;
pub mod checkpoint;
pub mod device;
pub mod diffusers;
pub mod diffusion;
pub mod distributed;
pub mod embeddings;
pub mod error;
pub mod gan;
pub mod layers;
pub mod metrics;
pub mod report;
pub mod resnet;
pub mod rng;
pub mod skip;
pub mod trainer;
pub mod unet;

pub use blocks::{ConvBlock, ConvBlockConfig, Padding};
pub use checkpoint::parameter_count;
pub use device::parse_device;
pub use error::{Error, Result};
pub use layers::{Activation, Downsample, InterpolationMode, Norm, Upsample};
pub use tch;
pub use unet::{FinalActivation, SkipFusion, UNet, UNetConfig};
