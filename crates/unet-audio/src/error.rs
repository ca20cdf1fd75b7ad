//! The typed error of `unet-audio`: every file error names the file and what is wrong with it.
//!
//! Seen in action by `cargo test -p unet-audio --test wav_io`.

use std::path::PathBuf;

/// Result alias of `unet-audio`.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;

/// Errors from audio files, transforms, data sets and audio models.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that exists but is not what it should be (empty, truncated, not a WAV,
    /// an unsupported encoding).
    #[error("{path}: {reason}")]
    Format {
        /// The file (or a description of an in-memory source).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An error reported by the WAV codec (`hound`) on a named file.
    #[error("{path}: WAV: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        source: hound::Error,
    },
    /// A shape, length or parameter that does not fit the operation.
    #[error("{0}")]
    Invalid(String),
    /// An error from the core (config, shapes, checkpoints).
    #[error(transparent)]
    Core(#[from] unet_core::Error),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl AudioError {
    /// Shorthand for [`AudioError::Format`].
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AudioError::Format { path: path.into(), reason: reason.into() }
    }

    /// Shorthand for [`AudioError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AudioError::Io { path: path.into(), source }
    }
}
