//! The 3D reproductions.
pub mod gaunet;
pub mod segment;
pub mod shapes;
pub mod voxel_diffusion;
