//! # unet-audio
//!
//! Audio U-Nets of survey Section 4.3 and Table 5. Foundations in place:
//!
//! * [`wav`]: WAV I/O through `hound` (PCM 8/16/24/32-bit, float 32, any channels/rate) into
//!   [`wav::Audio`] (`[channels, frames]` in `[-1, 1]`), streaming [`wav::WavChunks`] /
//!   [`wav::WavSink`], typed errors naming the file ([`AudioError`]);
//! * [`resample`]: band-limited rational-ratio resampling (Kaiser windowed sinc, the
//!   `scipy.signal.resample_poly` design, equal to it at f32 precision);
//! * [`chunk`]: overlapping chunks with Hann/linear cross-fade overlap-add (identity is exact)
//!   and [`chunk::process_file`], a bounded-memory WAV → closure → WAV stream;
//! * [`stft`]: STFT/iSTFT via libtorch, magnitude/phase, librosa's mel filterbank (Slaney or
//!   HTK), log-mel;
//! * [`metrics`]: SNR, segmental SNR, SI-SDR;
//! * [`data`]: the `speech` set (espeak-ng/flite reading the KJV, real codec2 recordings; an
//!   embedded sample) and noise (white, pink, brown, babble, tones, music-like) with
//!   `mix_at_snr`;
//! * [`convert`]: ndarray ↔ `tch::Tensor`.
//!
//! Models ([`models`], networks in [`unet_core::arch`]): the reproductions `wave-unet`
//! (Stoller 2018), `attn-wave-unet` (Giri 2019), `deep-unet` (Jansson 2017) and `unetgan`
//! (Hao 2020), with [`data::pairs`] (training pairs and evaluation mixtures), [`enhance`]
//! (chunked and streamed enhancement with real context, checkpoint loading) and
//! [`spectrogram`] (PNG panels). See `docs/audio.md`.
//!
//! Run its tests: `cargo test -p unet-audio`; fill the speech cache with
//! `cargo xtask datasets fetch speech`.

pub mod chunk;
pub mod convert;
pub mod data;
pub mod enhance;
pub mod error;
pub mod metrics;
pub mod models;
pub mod resample;
pub mod spectrogram;
pub mod stft;
pub mod wav;

pub use error::{AudioError, Result};
pub use unet_core;
pub use unet_core::*;
