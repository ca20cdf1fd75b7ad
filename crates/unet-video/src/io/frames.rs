//! Frame folders: `*.pgm` / `*.ppm` / `*.png` frames in natural order.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use image::ImageEncoder;
use tch::Tensor;

use super::{
    bytes_tensor, check_clip_shape, chw_to_hwc, hwc_to_chw, pnm, resize_frames, rgb_to_luma,
    tensor_bytes, to_u8, Clip,
};
use crate::{Result, VideoError};

/// How a frame folder is read.
#[derive(Debug, Clone, PartialEq)]
pub struct FramesPolicy {
    /// The rate the frames were taken at (a folder carries no timestamps); becomes
    /// [`Clip::fps`] divided by `step`.
    pub fps: f64,
    /// Keep every `step`-th frame (1 keeps all).
    pub step: usize,
    /// Output size `(h, w)` (area / bilinear resize, see [`super::resize_frames`]).
    pub size: Option<(i64, i64)>,
    /// BT.601 luma, `C = 1`. When false the clip has `C = 1` if every frame read is grey and
    /// `C = 3` otherwise (grey frames replicated).
    pub grey: bool,
    /// At most this many frames (after `start_frame` and `step`; at least 1).
    pub max_frames: Option<usize>,
    /// Number of files (in natural order) skipped first.
    pub start_frame: usize,
}

impl Default for FramesPolicy {
    /// 25 fps, every frame, native size and channels.
    fn default() -> Self {
        FramesPolicy {
            fps: 25.0,
            step: 1,
            size: None,
            grey: false,
            max_frames: None,
            start_frame: 0,
        }
    }
}

const EXTENSIONS: [&str; 3] = ["pgm", "ppm", "png"];

/// Compares file names "naturally": digit runs by value (`frame2` < `frame10`), other runs
/// byte-wise; the plain byte order breaks ties (`f01` vs `f1`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
                let (nx, ny) = (run(x), run(y));
                let strip = |s: &[u8]| -> Vec<u8> {
                    let t: Vec<u8> = s.iter().copied().skip_while(|&c| c == b'0').collect();
                    t
                };
                let (dx, dy) = (strip(&x[..nx]), strip(&y[..ny]));
                let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(&dy));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(p), Some(q)) => {
                if p != q {
                    return p.cmp(q);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// The frame files of `dir` (extensions `pgm`, `ppm`, `png`, any case) in natural order.
/// Fails when the folder cannot be listed or holds no frame.
pub fn list_frames(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|e| VideoError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| VideoError::io(dir, e))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(VideoError::format(dir, "no .pgm, .ppm or .png frame in the folder"));
    }
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    files.sort_by(|a, b| natural_cmp(&name(a).unwrap_or_default(), &name(b).unwrap_or_default()));
    Ok(files)
}

/// One frame file as interleaved bytes: (width, height, channels, data).
fn read_frame(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| VideoError::io(path, e))?;
    if bytes.starts_with(b"\x89PNG") {
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .map_err(|e| VideoError::format(path, format!("bad PNG: {e}")))?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        if img.color().has_color() {
            Ok((w, h, 3, img.to_rgb8().into_raw()))
        } else {
            Ok((w, h, 1, img.to_luma8().into_raw()))
        }
    } else {
        let img = pnm::decode(path, &bytes)?;
        Ok((img.width, img.height, img.channels, img.data))
    }
}

/// Reads the frames of `dir` (see [`list_frames`]) into a clip `Uint8 [T, C, H, W]`.
///
/// Every frame read must have the size of the first one, else [`VideoError::Format`] names
/// the odd file; an empty folder, or one where `start_frame` skips every file, is an error.
pub fn read_frames_dir(dir: impl AsRef<Path>, policy: &FramesPolicy) -> Result<Clip> {
    let dir = dir.as_ref();
    if !(policy.fps.is_finite() && policy.fps > 0.0) || policy.step == 0 {
        return Err(VideoError::invalid(format!(
            "frames policy: fps must be > 0 and step >= 1, got fps {} step {}",
            policy.fps, policy.step
        )));
    }
    if policy.max_frames == Some(0) {
        return Err(VideoError::invalid("frames policy: max_frames must be at least 1"));
    }
    let files = list_frames(dir)?;
    let chosen: Vec<&PathBuf> = files
        .iter()
        .skip(policy.start_frame)
        .step_by(policy.step)
        .take(policy.max_frames.unwrap_or(usize::MAX))
        .collect();
    if chosen.is_empty() {
        return Err(VideoError::invalid(format!(
            "{}: start_frame {} skips all {} frames",
            dir.display(),
            policy.start_frame,
            files.len()
        )));
    }
    let mut first: Option<(usize, usize, &Path)> = None;
    // planar bytes of all frames; grey frames join colour ones as RGB (replicated), and luma,
    // when asked for, is taken once on the whole clip
    let (mut bytes, mut colour, mut n) = (Vec::new(), false, 0i64);
    for path in chosen {
        let (w, h, c, data) = read_frame(path)?;
        match first {
            None => first = Some((w, h, path)),
            Some((w0, h0, p0)) if (w, h) != (w0, h0) => {
                return Err(VideoError::format(
                    path,
                    format!(
                        "frame is {w}x{h} but the first frame {} is {w0}x{h0}",
                        p0.file_name().unwrap_or_default().to_string_lossy()
                    ),
                ))
            }
            Some(_) => {}
        }
        let chw = hwc_to_chw(data, h, w, c)?;
        if c == 3 && !colour {
            // the grey frames read so far become RGB
            colour = true;
            let grey = std::mem::take(&mut bytes);
            bytes.reserve(3 * grey.len());
            for plane in grey.chunks(w * h) {
                (0..3).for_each(|_| bytes.extend_from_slice(plane));
            }
        }
        let copies = if colour && c == 1 { 3 } else { 1 };
        (0..copies).for_each(|_| bytes.extend_from_slice(&chw));
        n += 1;
    }
    let (w, h) = first.map(|(w, h, _)| (w as i64, h as i64)).unwrap_or_default();
    let mut clip = bytes_tensor(&bytes, &[n, if colour { 3 } else { 1 }, h, w])?;
    drop(bytes);
    if policy.grey && colour {
        clip = rgb_to_luma(&clip)?;
    }
    if let Some(size) = policy.size {
        clip = resize_frames(&clip, size)?;
    }
    Ok(Clip { frames: clip, fps: policy.fps / policy.step as f64 })
}

/// Writes `frames` (`[T, C, H, W]`, `Uint8` or float in `[0, 1]`) as `dir/frame_00000.<ext>`
/// … (at least five digits, more when `T` needs them), each file written atomically; `ext` is
/// `png` (C = 1 or 3, lossless), `pgm` (C = 1) or `ppm` (C = 3). Creates `dir` if needed;
/// other files in it are left alone. Returns the paths written, in order.
pub fn write_frames_dir(dir: impl AsRef<Path>, frames: &Tensor, ext: &str) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let [t, c, h, w] = check_clip_shape(frames, &format!("write_frames_dir {}", dir.display()))?;
    let ext = ext.to_ascii_lowercase();
    match (ext.as_str(), c) {
        ("png", _) | ("pgm", 1) | ("ppm", 3) => {}
        _ => {
            return Err(VideoError::invalid(format!(
                "write_frames_dir: extension `{ext}` with {c} channels; use png (1 or 3 \
                 channels), pgm (1) or ppm (3)"
            )))
        }
    }
    let frames = to_u8(frames, "write_frames_dir")?;
    std::fs::create_dir_all(dir).map_err(|e| VideoError::io(dir, e))?;
    let digits = (t.max(1) - 1).to_string().len().max(5);
    let (wu, hu, cu) = (w as usize, h as usize, c as usize);
    let mut written = Vec::with_capacity(t as usize);
    for i in 0..t {
        let path = dir.join(format!("frame_{i:0digits$}.{ext}"));
        let data = chw_to_hwc(&tensor_bytes(&frames.f_select(0, i)?)?, cu, hu, wu)?;
        let bytes = if ext == "png" {
            let mut buf = Vec::new();
            let color =
                if c == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
            image::codecs::png::PngEncoder::new(&mut buf)
                .write_image(&data, w as u32, h as u32, color)
                .map_err(|e| VideoError::io(&path, std::io::Error::other(e.to_string())))?;
            buf
        } else {
            pnm::encode(wu, hu, cu, &data)
        };
        unet_core::checkpoint::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering;

    #[test]
    fn natural_order_puts_frame2_before_frame10() {
        let mut names = vec!["frame10.png", "frame2.png", "frame1.png", "frame010.png", "a.png"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["a.png", "frame1.png", "frame2.png", "frame010.png", "frame10.png"]);
        assert_eq!(natural_cmp("image.0009.pgm", "image.0010.pgm"), Ordering::Less);
    }
}
