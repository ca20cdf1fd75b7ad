//! Audio data: clean speech (espeak-ng/flite reading the KJV, real codec2 recordings) and
//! noise (white, pink, brown, babble, tones) mixed at a chosen SNR.
//!
//! Run its tests: `cargo test -p unet-audio --test data`.

pub mod noise;
pub mod pairs;
pub mod speech;
