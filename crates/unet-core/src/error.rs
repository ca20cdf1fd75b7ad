//! The typed error of `unet-core`.
//!
//! Every failure that can come from user input (a configuration, an input tensor, a file) is a
//! variant here that carries the offending values, so the message alone says what to fix.

use std::path::PathBuf;

/// Result alias used throughout `unet-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building, running or (de)serialising a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is impossible; `field` names the config field.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// Name of the offending configuration field.
        field: &'static str,
        /// The value it had, rendered for the message.
        value: String,
        /// Why the value cannot be used.
        reason: String,
    },

    /// The input tensor does not have the rank/channels the model was built for.
    #[error("input shape {shape:?} does not match the model: expected {expected}")]
    InputShape {
        /// Shape of the offending input.
        shape: Vec<i64>,
        /// What the model expects, in words.
        expected: String,
    },

    /// Under `Padding::Same`, every spatial size must be divisible by `2^depth`.
    #[error(
        "input spatial size {size} on axis {axis} is not divisible by {multiple} \
         (2^depth, depth = {depth}) as same padding requires; nearest valid sizes: {below} or {above}"
    )]
    InputNotDivisible {
        /// Spatial axis index (0 = first spatial axis).
        axis: usize,
        /// The size on that axis.
        size: i64,
        /// Required divisor.
        multiple: i64,
        /// U-Net depth (number of down-sampling steps).
        depth: usize,
        /// Nearest valid size below.
        below: i64,
        /// Nearest valid size above.
        above: i64,
    },

    /// Under `Padding::Valid` (Ronneberger 2015) the size shrinks at every convolution; it must
    /// stay positive and be even before every 2×2 pooling.
    #[error(
        "input spatial size {size} on axis {axis} does not work with valid padding: {reason}; \
         nearest valid input sizes: {below:?} or {above}"
    )]
    InvalidValidSize {
        /// Spatial axis index.
        axis: usize,
        /// The size on that axis.
        size: i64,
        /// What went wrong where.
        reason: String,
        /// Largest valid size not above `size`, if any.
        below: Option<i64>,
        /// Smallest valid size not below `size`.
        above: i64,
    },

    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint file exists but cannot be parsed.
    #[error("{path}: not a valid safetensors checkpoint: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Strict loading found different parameter names or shapes in the file and the model.
    #[error("{path}: checkpoint does not match the model:{}", mismatch_lines(.missing, .unexpected, .shape_mismatch))]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// Names the model has and the file lacks.
        missing: Vec<String>,
        /// Names the file has and the model lacks.
        unexpected: Vec<String>,
        /// `(name, model shape/kind, file shape/kind)` for tensors present in both.
        shape_mismatch: Vec<(String, String, String)>,
    },

    /// Training produced a NaN or infinite loss or gradient; training stops here.
    #[error("non-finite {what} at step {step} ({value}); lower the learning rate, enable gradient clipping, or check the data")]
    NonFinite {
        /// Step at which it happened.
        step: usize,
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The offending value.
        value: f64,
    },

    /// An error raised by libtorch.
    /// A distributed operation failed: `rank` is this process, `op` what it was doing,
    /// `lost` the ranks found gone (empty when none could be named).
    #[error("distributed rank {rank}: {op} failed{}: {reason}", lost_ranks(.lost))]
    Distributed {
        /// This process's rank.
        rank: usize,
        /// The operation ("all-reduce of gradients at step 7", "rendezvous at host:port").
        op: String,
        /// Ranks that stopped responding.
        lost: Vec<usize>,
        /// What c10d or the check reported.
        reason: String,
    },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn mismatch_lines(
    missing: &[String],
    unexpected: &[String],
    shapes: &[(String, String, String)],
) -> String {
    let mut s = String::new();
    if !missing.is_empty() {
        s.push_str(&format!("\n  missing in file ({}): {}", missing.len(), missing.join(", ")));
    }
    if !unexpected.is_empty() {
        s.push_str(&format!(
            "\n  unexpected in file ({}): {}",
            unexpected.len(),
            unexpected.join(", ")
        ));
    }
    for (name, model, file) in shapes {
        s.push_str(&format!("\n  shape mismatch `{name}`: model {model}, file {file}"));
    }
    s
}

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(
        field: &'static str,
        value: impl std::fmt::Debug,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig { field, value: format!("{value:?}"), reason: reason.into() }
    }
}

fn lost_ranks(lost: &[usize]) -> String {
    match lost {
        [] => String::new(),
        [r] => format!(" (lost rank {r})"),
        rs => format!(" (lost ranks {rs:?})"),
    }
}
