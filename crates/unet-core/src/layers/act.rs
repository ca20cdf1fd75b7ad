//! Element-wise activations used inside U-Net blocks.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Activation applied after each normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum Activation {
    /// `max(0, x)` (Nair & Hinton 2010): Algorithm 1's choice.
    #[default]
    ReLU,
    /// `x` if `x > 0` else `slope · x` (PyTorch's default slope is 0.01).
    LeakyReLU {
        /// Negative slope.
        slope: f64,
    },
    /// `x · σ(x)` (Swish).
    SiLU,
    /// Gaussian error linear unit (exact erf form, as `nn.GELU()`).
    GELU,
}

impl Activation {
    /// Applies the activation.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        match *self {
            Activation::ReLU => xs.relu(),
            Activation::LeakyReLU { slope } => xs.maximum(&(xs * slope)),
            Activation::SiLU => xs.silu(),
            Activation::GELU => xs.gelu("none"),
        }
    }
}
