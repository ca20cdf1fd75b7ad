//! The typed error of `unet-image`.

use std::path::PathBuf;

/// Result alias of `unet-image`.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Errors from image files, data sets and image models.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that exists but is not in the expected format.
    #[error("{path}: {reason}")]
    Format {
        /// The file (or a description of an in-memory source).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A PNG/JPEG that cannot be decoded or encoded.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// A shape or value that does not fit the operation.
    #[error("{0}")]
    Invalid(String),
    /// An error from the core (config, shapes, checkpoints).
    #[error(transparent)]
    Core(#[from] unet_core::Error),
    /// An error from the text encoder (prompt conditioning).
    #[error(transparent)]
    Text(#[from] unet_text::TextError),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl ImageError {
    /// Shorthand for [`ImageError::Format`].
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ImageError::Format { path: path.into(), reason: reason.into() }
    }
}
