//! Writes the embedded frog-tissue sample `datasets/pyvista/sample/frog_tissues_every4.vti`:
//! every 4th voxel along each axis of pyvista 0.49.1's `frog_tissues.vti` (500×470×136 →
//! 125×118×34 u8 labels, spacing ×4), as VTK XML ImageData with zlib-compressed base64 data
//! written by our own VTI writer.
//!
//! Run with: `cargo xtask datasets fetch pyvista && cargo run -p unet-3d --example make_frog_sample`
//! (or pass the path of `frog_tissues.vti` as the first argument).

use std::path::PathBuf;

use unet_3d::io::vti::{read_vti, write_vti, VtiFormat};
use unet_3d::{AnyVolume, Error3d, Volume};

fn main() -> Result<(), Error3d> {
    let src = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => unet_3d::data::default_cache()
            .map(|c| c.join("pyvista/frog_tissues.vti"))
            .ok_or_else(|| Error3d::invalid("no cache folder (HOME unset); pass the path"))?,
    };
    let vol = read_vti(&src, None)?;
    let frog = vol.as_u8().ok_or_else(|| {
        Error3d::format(&src, format!("expected u8 labels, got {}", vol.type_name()))
    })?;
    let step = 4;
    let dims = frog.dims.map(|d| d.div_ceil(step));
    let mut data = Vec::with_capacity(dims.iter().product());
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                data.push(frog.get(x * step, y * step, z * step).unwrap_or(0));
            }
        }
    }
    let spacing = frog.spacing.map(|s| s * step as f64);
    let sample = Volume::from_vec(dims, spacing, data)?;
    let dst = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/pyvista/sample/frog_tissues_every4.vti");
    write_vti(
        &dst,
        &AnyVolume::U8(sample),
        "MetaImage",
        VtiFormat::BinaryZlib { block_size: 32768 },
    )?;
    println!("wrote {} ({dims:?} from {:?})", dst.display(), frog.dims);
    Ok(())
}
