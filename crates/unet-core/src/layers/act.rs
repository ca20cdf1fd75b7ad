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
            Activation::LeakyReLU { slope } => leaky_relu(xs, slope),
            Activation::SiLU => xs.silu(),
            Activation::GELU => xs.gelu("none"),
        }
    }

    /// [`Activation::forward`] reusing the storage of `xs` (ReLU and LeakyReLU, as PyTorch's
    /// `inplace=True`; autograd records both): for a fresh result of a conv or norm that nothing
    /// else holds, whose backward does not need it (conv and batch/group norm save their
    /// inputs, not their outputs). One allocation and one memory pass fewer.
    pub fn forward_owned(&self, mut xs: Tensor) -> Tensor {
        match *self {
            Activation::ReLU => {
                let _ = xs.relu_();
                xs
            }
            Activation::LeakyReLU { slope } => leaky_relu_owned(xs, slope),
            _ => self.forward(&xs),
        }
    }
}

/// `max(x, slope · x)`: LeakyReLU (`x` if `x > 0` else `slope · x`) for `0 ≤ slope ≤ 1`,
/// where it runs as one vectorised kernel forward and one backward. tch 0.24 exposes
/// `leaky_relu` only with PyTorch's default slope, so the forward is ATen's
/// `leaky_relu_backward(x, x.detach(), slope)` = `x · (x > 0 ? 1 : slope)`: autograd then
/// differentiates it through its first argument only, which gives exactly LeakyReLU's
/// gradient, `grad · (x > 0 ? 1 : slope)` (the mask is piecewise constant). The `max` form
/// allocates a temporary and runs a two-sided `maximum` backward; PReLU with a constant
/// weight has a scalar (non-vectorised) backward that also writes a weight gradient. Other
/// slopes keep the `max` form.
pub fn leaky_relu(xs: &Tensor, slope: f64) -> Tensor {
    if (0.0..=1.0).contains(&slope) {
        // tch argument order: `self` (the mask source) is the receiver, `grad_output` the first.
        xs.detach().leaky_relu_backward(xs, slope, false)
    } else {
        xs.maximum(&(xs * slope))
    }
}

/// [`leaky_relu`] on a tensor the caller owns, overwriting it in place as PyTorch's
/// `leaky_relu(inplace=True)`: no allocation, and in training autograd keeps only the result
/// for the backward (not the input as well), which matters for the large 1D maps of audio
/// models. Give it a fresh result (of a conv or norm) whose own backward does not read it.
pub fn leaky_relu_owned(mut xs: Tensor, slope: f64) -> Tensor {
    if (0.0..=1.0).contains(&slope) && inplace_leaky_relu(&mut xs, slope) {
        return xs;
    }
    leaky_relu(&xs, slope)
}

/// ATen's in-place `leaky_relu_(x, slope)` through unet-core's C++ shim (tch 0.24 has it only
/// with slope 0.01); false where the shim is not built or the call is refused.
fn inplace_leaky_relu(xs: &mut Tensor, slope: f64) -> bool {
    #[cfg(unet_ops)]
    {
        extern "C" {
            fn unet_ops_leaky_relu_(t: *mut std::ffi::c_void, slope: f64) -> *mut std::ffi::c_char;
            fn unet_ops_free_error(err: *mut std::ffi::c_char);
        }
        // SAFETY: tch's tensor pointer is an `at::Tensor*`; the shim returns NULL or an error
        // string that it allocated, freed here.
        unsafe {
            let err = unet_ops_leaky_relu_(xs.as_mut_ptr().cast(), slope);
            if err.is_null() {
                return true;
            }
            unet_ops_free_error(err);
        }
        false
    }
    #[cfg(not(unet_ops))]
    {
        let _ = (xs, slope);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn leaky_relu_matches_its_definition_and_gradient() {
        let x = Tensor::randn([4, 3, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        for slope in [0.0, 0.01, 0.2, 1.0, 1.5] {
            let want = x.maximum(&(&x * slope));
            let got = leaky_relu(&x, slope);
            assert!(got.allclose(&want, 1e-6, 1e-7, false), "slope {slope}");
        }
        let plain = tch::no_grad(|| x.maximum(&(&x * 0.2)));
        let owned = tch::no_grad(|| leaky_relu_owned(x.detach().copy(), 0.2));
        assert!(owned.allclose(&plain, 1e-6, 1e-7, false));
        let y = leaky_relu(&x, 0.2).sum(Kind::Float);
        let g = Tensor::run_backward(&[y], &[&x], false, false).remove(0);
        let want = x.gt(0.0).to_kind(Kind::Float) * 0.8 + 0.2;
        assert!(g.allclose(&want, 1e-6, 1e-7, false));
        // In place in training: the same values and gradient through a preceding op.
        let h = &x * 1.0;
        let storage = h.data_ptr();
        let y = leaky_relu_owned(h, 0.2);
        #[cfg(unet_ops)]
        assert_eq!(y.data_ptr(), storage, "in place (no new tensor)");
        #[cfg(not(unet_ops))]
        let _ = storage;
        assert!(y.allclose(&leaky_relu(&x, 0.2), 1e-6, 1e-7, false));
        let g2 = Tensor::run_backward(&[y.sum(Kind::Float)], &[&x], false, false).remove(0);
        assert!(g2.allclose(&want, 1e-6, 1e-7, false), "in-place gradient");
    }
}
