//! The typed error of `unet-pose`: every file error names the file (and the line where the
//! format has lines) and what is wrong with it.

use std::path::PathBuf;

/// Result alias of `unet-pose`.
pub type Result<T, E = PoseError> = std::result::Result<T, E>;

/// Errors from motion files, BVH, rendering, data sets and pose models.
#[derive(Debug, thiserror::Error)]
pub enum PoseError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file that exists but is not what it should be.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Format {
        /// The file.
        path: PathBuf,
        /// The 1-based line, where the format has lines.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
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

impl PoseError {
    /// Shorthand for [`PoseError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PoseError::Io { path: path.into(), source }
    }

    /// Shorthand for [`PoseError::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        PoseError::Invalid(message.into())
    }

    /// Shorthand for [`PoseError::Format`].
    pub fn format(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        reason: impl Into<String>,
    ) -> Self {
        PoseError::Format { path: path.into(), line, reason: reason.into() }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename (a crash leaves the old file).
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    Ok(unet_core::checkpoint::write_atomic(path, bytes)?)
}
