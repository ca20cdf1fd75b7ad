//! # unet-audio
//!
//! Audio U-Nets of survey Section 4.3 and Table 5. This crate will hold WAV I/O (hound) with
//! resampling and overlap-add chunking, STFT/iSTFT and mel transforms, speech synthesised with
//! espeak-ng/flite plus real codec2 recordings mixed with noise, the enhancement metrics SNR,
//! SSNR and SI-SDR, and the reproductions `wave-unet` (Stoller 2018), `attn-wave-unet`
//! (Giri 2019), `deep-unet` (Jansson 2017) and `unetgan` (Hao 2020).
//!
//! Today it re-exports [`unet_core`], whose [`unet_core::UNet`] already runs on 1D signals
//! (`UNetConfig { dims: 1, .. }`). Run the finished reproduction with
//! `cargo xtask reproduce unet2015` (image) until the audio ones land.

pub use unet_core;
pub use unet_core::*;
