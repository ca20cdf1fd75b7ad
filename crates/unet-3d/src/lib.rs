//! # unet-3d
//!
//! Volumetric U-Nets of survey Section 4.5 and Table 4. Foundations in place:
//!
//! * [`io`]: mesh and point-cloud files ([`io::ply`] through `ply-rs`, [`io::off`],
//!   [`io::stl`], [`io::xyz`]) and volume files ([`io::inr`] INRIMAGE-4, [`io::vti`] VTK XML
//!   ImageData, [`io::nifti`] NIfTI-1/-2), typed errors naming the file ([`Error3d`]);
//! * [`mesh`]: [`TriMesh`] / [`PointCloud`] (validation, normalisation, area, volume,
//!   closedness, surface sampling);
//! * [`volume`]: [`Volume`] over any [`Voxel`] type and [`AnyVolume`] (crops, flips, padding,
//!   labels);
//! * [`voxelize`]: solid voxelisation of closed meshes; [`marching_cubes`]: iso-surfaces;
//! * [`metrics`]: Dice, IoU, Hausdorff-95, Chamfer, coverage / MMD;
//! * [`sliding`]: MONAI-style sliding-window inference with constant or Gaussian blending,
//!   in memory or streamed slab by slab from file to file (NIfTI) in bounded memory;
//! * [`data`]: the `cgal`, `pyvista` and `nibabel` sets (label volumes, shape meshes, voxel
//!   shapes; embedded samples when the cache is empty);
//!
//! Reproductions ([`models`]): `unet3d` (Çiçek 2016; [`unet_core::arch::UNet3d`], 19,069,955
//! parameters as published) and `s3d-unet` (Chen 2018, separable) segment the liver labels
//! with sliding-window inference; `voxel-diffusion` and `3dgaunet` (Shi 2023) generate
//! voxelised CGAL shapes, scored by coverage/MMD, with PLY samples. dResU-Net is a preset of
//! the core's residual units ([`unet_core::arch::ResUNetConfig::dresunet`]). See `docs/3d.md`.
//!
//! Run its tests: `cargo test -p unet-3d`; fill the caches with
//! `cargo xtask datasets fetch cgal` (and `pyvista`, `nibabel`).

pub mod data;
pub mod error;
pub mod io;
pub mod marching_cubes;
pub mod mesh;
pub mod metrics;
pub mod models;
pub mod sliding;
pub mod volume;
pub mod voxelize;

pub use error::{Error3d, Result};
pub use mesh::{PointCloud, TriMesh};
pub use volume::{AnyVolume, Volume, Voxel};

pub use unet_core;
pub use unet_core::*;
