//! The 3D data sets: label volumes for segmentation (CGAL's liver, pyvista's frog tissues)
//! and closed meshes for voxel shape generation (CGAL's demo meshes), read from the cache
//! that `cargo xtask datasets fetch cgal` / `pyvista` fill, or from the samples embedded in
//! the crate (`datasets/cgal/sample`, `datasets/pyvista/sample`) when the cache is empty.
//!
//! `cache` arguments name the folder holding the data-set folders
//! (`<cache>/cgal/data/…`, `<cache>/pyvista/…`): [`default_cache`] is
//! `~/.cache/unet-rs/datasets`; `None` means the embedded samples only.

use std::path::{Path, PathBuf};

use crate::error::{gunzip_if_gz, Error3d, Result};
use crate::io::{inr, off, ply, stl, vti};
use crate::mesh::TriMesh;
use crate::volume::Volume;
use crate::voxelize::voxelize_solid;

/// The liver label volume, verbatim (the full file is small enough to embed).
const LIVER: &[u8] = include_bytes!("../../../datasets/cgal/sample/liver.inr.gz");

/// Every 4th voxel of pyvista's `frog_tissues.vti` (made by `examples/make_frog_sample.rs`).
const FROG_SAMPLE: &[u8] =
    include_bytes!("../../../datasets/pyvista/sample/frog_tissues_every4.vti");

/// The embedded CGAL meshes: 13 small closed meshes copied verbatim.
const MESH_SAMPLE: &[(&str, &[u8])] = &[
    ("3torus.off", include_bytes!("../../../datasets/cgal/sample/3torus.off")),
    ("blob-closed.off", include_bytes!("../../../datasets/cgal/sample/blob-closed.off")),
    ("cross.off", include_bytes!("../../../datasets/cgal/sample/cross.off")),
    ("cube.off", include_bytes!("../../../datasets/cgal/sample/cube.off")),
    ("dragknob.off", include_bytes!("../../../datasets/cgal/sample/dragknob.off")),
    ("eight.off", include_bytes!("../../../datasets/cgal/sample/eight.off")),
    ("joint.off", include_bytes!("../../../datasets/cgal/sample/joint.off")),
    ("part.off", include_bytes!("../../../datasets/cgal/sample/part.off")),
    ("sphere.off", include_bytes!("../../../datasets/cgal/sample/sphere.off")),
    ("sphere.stl", include_bytes!("../../../datasets/cgal/sample/sphere.stl")),
    ("star.off", include_bytes!("../../../datasets/cgal/sample/star.off")),
    ("torus_quad.off", include_bytes!("../../../datasets/cgal/sample/torus_quad.off")),
    ("u.off", include_bytes!("../../../datasets/cgal/sample/u.off")),
];

/// The 44 closed meshes of the `cgal` recipe (under `data/meshes/`), by category: animals and
/// organic shapes, mechanical parts, tori/knots/blobs, primitives.
pub const CGAL_MESHES: [&str; 44] = [
    // animals and organic shapes
    "bear.off",
    "camel.off",
    "cow.off",
    "dino.off",
    "elephant.off",
    "elk.off",
    "bull.off",
    "triceratops.off",
    "homer.off",
    "hand.off",
    "cactus.off",
    "femur.off",
    "bones.off",
    // mechanical parts
    "anchor.off",
    "couplingdown.off",
    "fandisk.off",
    "pinion.off",
    "rotor.off",
    "spool.off",
    "turbine.off",
    "joint.off",
    "part.off",
    "handle.off",
    "dragknob.off",
    "helmet.off",
    // tori, knots and blobs
    "knot1.off",
    "knot2.off",
    "3torus.off",
    "double-torus-example.off",
    "eight.off",
    "torus_quad.off",
    "blob-closed.off",
    "blobby.off",
    // primitives
    "cube.off",
    "sphere.off",
    "ellipsoid.off",
    "icosahedron.off",
    "octahedron.off",
    "pyramid.off",
    "star.off",
    "cross.off",
    "u.off",
    "sphere.stl",
    "sphere.ply",
];

/// The folder holding the data-set folders of the user cache (`<cache>/datasets`), where
/// `cargo xtask datasets fetch <name>` writes.
pub fn default_cache() -> Option<PathBuf> {
    unet_core::checkpoint::dataset_dir("cgal")?.parent().map(Path::to_path_buf)
}

/// A segmentation target: labels renumbered to consecutive class ids.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelVolume {
    /// `"liver"` or `"frog-tissues"`.
    pub name: String,
    /// Class ids `0..classes()`, 0 = background.
    pub labels: Volume<u8>,
    /// The stored value of each class id (`values[id]`; for merged values the larger one).
    pub values: Vec<u32>,
    /// Where it came from: a file path, or the embedded sample.
    pub source: String,
}

impl LabelVolume {
    /// Number of classes, background included.
    pub fn classes(&self) -> usize {
        self.values.len()
    }
}

/// The label volumes: CGAL's liver (values 0, 84/85, 127, 255 → classes 0, 1, 2, 3; the two
/// voxels of 84 merged into 85) and pyvista's frog tissues (its 26 labels in 0..=29 →
/// classes 0..=25 in increasing order). Each comes from `cache` when there, else from the
/// embedded sample (the liver file itself; every 4th voxel of the frog).
pub fn label_volumes(cache: Option<&Path>) -> Result<Vec<LabelVolume>> {
    Ok(vec![liver(cache)?, frog_tissues(cache)?])
}

/// CGAL's liver label volume (see [`label_volumes`]).
pub fn liver(cache: Option<&Path>) -> Result<LabelVolume> {
    let file = cache.map(|c| c.join("cgal/data/images/liver.inr.gz")).filter(|p| p.is_file());
    let (vol, path) = match file {
        Some(p) => (inr::read_inr(&p)?, p),
        None => {
            let path = PathBuf::from("datasets/cgal/sample/liver.inr.gz (embedded)");
            let bytes = gunzip_if_gz(LIVER.to_vec(), &path)?;
            (inr::parse_inr(&bytes, &path)?, path)
        }
    };
    let raw = vol.as_u8().ok_or_else(|| {
        Error3d::format(&path, format!("expected u8 labels, found {}", vol.type_name()))
    })?;
    let mut data = Vec::with_capacity(raw.data.len());
    for &v in &raw.data {
        data.push(match v {
            0 => 0,
            84 | 85 => 1,
            127 => 2,
            255 => 3,
            other => {
                return Err(Error3d::format(
                    &path,
                    format!("unexpected liver label {other} (expected 0, 84, 85, 127, 255)"),
                ))
            }
        });
    }
    Ok(LabelVolume {
        name: "liver".into(),
        labels: Volume { dims: raw.dims, spacing: raw.spacing, data },
        values: vec![0, 85, 127, 255],
        source: path.display().to_string(),
    })
}

/// Pyvista's frog tissue labels (see [`label_volumes`]).
pub fn frog_tissues(cache: Option<&Path>) -> Result<LabelVolume> {
    let file = cache.map(|c| c.join("pyvista/frog_tissues.vti")).filter(|p| p.is_file());
    let (vol, path) = match file {
        Some(p) => (vti::read_vti(&p, None)?, p),
        None => {
            let path = PathBuf::from("datasets/pyvista/sample/frog_tissues_every4.vti (embedded)");
            (vti::parse_vti(FROG_SAMPLE, &path, None)?, path)
        }
    };
    let raw = vol.to_labels_u8().map_err(|e| Error3d::format(&path, e.to_string()))?;
    let values: Vec<u8> = raw.unique_labels();
    let mut lut = [0u8; 256];
    for (id, &v) in values.iter().enumerate() {
        lut[v as usize] = id as u8;
    }
    Ok(LabelVolume {
        name: "frog-tissues".into(),
        labels: raw.map(|v| lut[v as usize]),
        values: values.iter().map(|&v| v as u32).collect(),
        source: path.display().to_string(),
    })
}

fn parse_mesh(name: &str, bytes: &[u8], path: &Path) -> Result<TriMesh> {
    if name.ends_with(".off") {
        off::parse_off(bytes, path)
    } else if name.ends_with(".stl") {
        stl::parse_stl(bytes, path)
    } else if name.ends_with(".ply") {
        ply::parse_ply(bytes, path)
    } else {
        Err(Error3d::format(path, "not an OFF, STL or PLY mesh"))
    }
}

/// The shape meshes, named by file: the 44 of [`CGAL_MESHES`] from `cache` when all are
/// there, else the 13 embedded ones. A cached mesh that fails to parse is an error naming it.
pub fn shape_meshes(cache: Option<&Path>) -> Result<Vec<(String, TriMesh)>> {
    let dir = cache.map(|c| c.join("cgal/data/meshes"));
    if let Some(dir) = dir.filter(|d| CGAL_MESHES.iter().all(|m| d.join(m).is_file())) {
        return CGAL_MESHES
            .iter()
            .map(|m| {
                let path = dir.join(m);
                let bytes = std::fs::read(&path).map_err(|e| Error3d::io(&path, e))?;
                Ok((m.to_string(), parse_mesh(m, &bytes, &path)?))
            })
            .collect();
    }
    MESH_SAMPLE
        .iter()
        .map(|(m, bytes)| {
            let path = PathBuf::from(format!("datasets/cgal/sample/{m} (embedded)"));
            Ok((m.to_string(), parse_mesh(m, bytes, &path)?))
        })
        .collect()
}

/// Solid voxelisations (1 inside, 0 outside) of `meshes` in `res³` grids (32 or 64 for the
/// generation task), each mesh scaled into the grid with a margin of one voxel; deterministic.
pub fn voxel_shapes(meshes: &[(String, TriMesh)], res: usize) -> Vec<Volume<u8>> {
    let margin = 1.0 / res.max(1) as f32;
    meshes.iter().map(|(_, m)| voxelize_solid(m, res, margin)).collect()
}
