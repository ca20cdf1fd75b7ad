//! The 3D reproductions: [`segment`] (`unet3d`, `s3d-unet`), [`voxel_diffusion`] and
//! [`gaunet`] (`3dgaunet`), with the shape data, metrics and artefacts they share in
//! [`shapes`].

pub mod gaunet;
pub mod segment;
pub mod shapes;
pub mod voxel_diffusion;
