//! Image data sets: Fashion-MNIST (IDX), scikit-image textures, and derived sets synthesised
//! deterministically from a seed.

pub mod fashion_mnist;
pub mod idx;
pub mod segmentation;
pub mod textures;
