//! # unet-audio
//!
//! Audio U-Nets of survey Section 4.3 and Table 5. This crate will hold WAV I/O (hound) with
//! resampling and overlap-add chunking, STFT/iSTFT and mel transforms, speech synthesised with
//! espeak-ng/flite plus real codec2 recordings mixed with noise, the enhancement metrics SNR,
//! SSNR and SI-SDR, and the reproductions `wave-unet` (Stoller 2018), `attn-wave-unet`
//! (Giri 2019), `deep-unet` (Jansson 2017) and `unetgan` (Hao 2020).
//!
//! Run its tests: `cargo test -p unet-audio`.

pub mod chunk;
pub mod convert;
pub mod data;
pub mod error;
pub mod metrics;
pub mod resample;
pub mod stft;
pub mod wav;

pub use error::{AudioError, Result};
pub use unet_core;
pub use unet_core::*;
