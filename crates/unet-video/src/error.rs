//! The typed error of `unet-video`: every file error names the file and what is wrong with it.

use std::path::PathBuf;

/// Result alias of `unet-video`.
pub type Result<T, E = VideoError> = std::result::Result<T, E>;

/// Errors from video files, frame folders, data sets and video models.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that exists but is not a readable video / frame (corrupt, truncated, not video).
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A shape, length or parameter that does not fit the operation.
    #[error("{0}")]
    Invalid(String),
    /// An error from the core (config, shapes, checkpoints).
    #[error(transparent)]
    Core(#[from] unet_core::Error),
    /// An error from unet-image (FMNIST data, classifier, PSNR/SSIM).
    #[error(transparent)]
    Image(#[from] unet_image::ImageError),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl VideoError {
    /// Shorthand for [`VideoError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VideoError::Io { path: path.into(), source }
    }

    /// Shorthand for [`VideoError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        VideoError::Invalid(message.into())
    }

    /// Shorthand for [`VideoError::Format`].
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        VideoError::Format { path: path.into(), reason: reason.into() }
    }
}
