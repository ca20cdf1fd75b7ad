//! Dimension-generic layers: one implementation for 1D, 2D and 3D data.
//!
//! The spatial rank is a runtime value (`dims` ∈ {1, 2, 3}); each layer dispatches to the
//! libtorch kernel of that rank. Parameter names follow PyTorch (`weight`, `bias`,
//! `running_mean`, `running_var`, `num_batches_tracked`), so state dicts map one to one.

pub mod act;
pub mod conv;
pub mod norm;
pub mod resample;

pub use act::Activation;
pub use conv::{ConvGeometry, ConvKind, ConvNd, ConvOptions, SpatialConv};
pub use norm::{Norm, NormLayer};
pub use resample::{Downsample, InterpolationMode, Upsample};

use crate::{Error, Result};

/// Checks that `dims` is a supported spatial rank.
pub fn check_dims(dims: usize) -> Result<()> {
    if (1..=3).contains(&dims) {
        Ok(())
    } else {
        Err(Error::config("dims", dims, "spatial rank must be 1, 2 or 3"))
    }
}
