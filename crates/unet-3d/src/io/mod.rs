//! Mesh, point-cloud and volume file formats, each a module with `read_*` / `parse_*` (from
//! bytes, naming the source in errors) and `write_*` / `*_bytes` (atomic writes):
//!
//! * [`ply`]: PLY meshes and point clouds (ASCII, binary little/big endian) through `ply-rs`;
//! * [`off`]: OFF meshes (with optional colours, polygon faces fanned into triangles);
//! * [`stl`]: STL meshes (binary and ASCII, vertices welded);
//! * [`xyz`]: `.xyz` / `.pwn` point clouds (with optional normals);
//! * [`inr`]: INRIMAGE-4 volumes (CGAL's `.inr`, `.inr.gz`);
//! * [`vti`]: VTK XML ImageData (raw, base64 inline or appended, zlib-compressed);
//! * [`nifti`]: NIfTI-1/-2 single-file images (`.nii`, `.nii.gz`) and the header code the
//!   streaming volume source/sink of [`crate::sliding`] use.

pub mod inr;
pub mod nifti;
pub mod off;
pub mod ply;
pub mod stl;
pub mod vti;
pub mod xyz;
