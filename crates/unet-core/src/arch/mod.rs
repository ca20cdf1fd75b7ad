//! Published U-Net variants whose blocks differ from Algorithm 1's conv block, written once
//! for any spatial rank: ResUNet (residual units) and MultiResUNet (MultiRes blocks and
//! ResPaths), the pix2pix generator (4×4 stride-2 levels), PixelCNN++ (causal streams with U-Net
//! short-cuts), Wave-U-Net and Jansson's Deep U-Net (audio), the HourGlass/U-Net hybrid with
//! soft-gated skips (Bulat 2020) and the 3D U-Net of Çiçek 2016 with its separable S3D-UNet
//! variant. Modality crates wrap them into reproductions (`cargo xtask reproduce resunet`).

pub mod deep_unet;
pub mod hourglass;
pub mod multiresunet;
pub mod pix2pix;
pub mod pixelcnnpp;
pub mod resunet;
pub mod unet3d;
pub mod wave_unet;

pub use deep_unet::{DeepUNet, DeepUNetConfig};
pub use hourglass::{GatedBlock, HourglassConfig, HourglassUNet};
pub use multiresunet::{MultiResUNet, MultiResUNetConfig};
pub use pix2pix::{UnetGenerator, UnetGeneratorConfig};
pub use pixelcnnpp::{PixelCnnPP, PixelCnnPPConfig};
pub use resunet::{ResUNet, ResUNetConfig};
pub use unet3d::{UNet3d, UNet3dConfig};
pub use wave_unet::{WaveUNet, WaveUNetConfig};
