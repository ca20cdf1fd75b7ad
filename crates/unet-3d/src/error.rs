//! The typed error of `unet-3d`: every file error names the file and what is wrong with it.
//!
//! Seen in action by `cargo test -p unet-3d --test io_real_data`.

use std::path::{Path, PathBuf};

/// Result alias of `unet-3d`.
pub type Result<T, E = Error3d> = std::result::Result<T, E>;

/// Errors from mesh and volume files, geometry, data sets, sliding-window inference and the
/// 3D models.
#[derive(Debug, thiserror::Error)]
pub enum Error3d {
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file that exists but is corrupt, truncated or inconsistent.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The offending file (or a description of an in-memory source).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A shape, size or parameter that does not fit the operation (mismatched dimensions,
    /// empty inputs, a zero window, …).
    #[error("{0}")]
    Invalid(String),
    /// An error from the core (config, shapes, checkpoints, atomic writes).
    #[error(transparent)]
    Core(#[from] unet_core::Error),
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Error3d {
    /// Shorthand for [`Error3d::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error3d::Io { path: path.into(), source }
    }

    /// Shorthand for [`Error3d::Format`].
    pub fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error3d::Format { path: path.into(), reason: reason.into() }
    }

    /// Shorthand for [`Error3d::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error3d::Invalid(message.into())
    }
}

/// Reads a whole file, mapping errors to [`Error3d::Io`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error3d::io(path, e))
}

/// Reads a whole file and transparently gunzips it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = read_file(path)?;
    gunzip_if_gz(raw, path)
}

/// Gunzips `raw` when it starts with the gzip magic; `path` names the source in errors.
pub(crate) fn gunzip_if_gz(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error3d::format(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Writes `bytes` to `path` atomically (a temporary file in the same folder, then a rename)
/// through [`unet_core::checkpoint::write_atomic`].
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(unet_core::checkpoint::write_atomic(path, bytes)?)
}

/// Gzip-compresses `bytes` (default level).
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}
