//! Pictures and videos of clips: a PNG strip (one row per clip, one column per frame) and an
//! MP4 of clips tiled in a grid.

use std::path::Path;

use tch::{Kind, Tensor};

use crate::{Result, VideoError};

/// `[N, C, T, H, W]` in `[lo, hi]` → bytes `[N, C, T, H·scale, W·scale]` (nearest up-scaling).
fn to_bytes(clips: &Tensor, range: (f64, f64), scale: i64) -> Result<Tensor> {
    let s = clips.size();
    if s.len() != 5 || scale < 1 {
        return Err(VideoError::invalid(format!("expected [N, C, T, H, W] clips, got {s:?}")));
    }
    let x = ((clips.to_device(tch::Device::Cpu).to_kind(Kind::Float) - range.0)
        / (range.1 - range.0))
        .clamp(0.0, 1.0)
        * 255.0;
    let x = if scale > 1 {
        x.repeat_interleave_self_int(scale, 3, None).repeat_interleave_self_int(scale, 4, None)
    } else {
        x
    };
    Ok(x.round().to_kind(Kind::Uint8))
}

/// Writes a PNG with one row per clip and one column per frame (2-pixel grey gaps).
pub fn strip_png(path: &Path, clips: &Tensor, range: (f64, f64), scale: i64) -> Result<()> {
    let x = to_bytes(clips, range, scale)?;
    let s = x.size();
    let (n, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    let gap = 2;
    let (gw, gh) = (t * (w + gap) + gap, n * (h + gap) + gap);
    let mut canvas = vec![96u8; (gw * gh * 3) as usize];
    let px: Vec<u8> = Vec::<u8>::try_from(x.flatten(0, -1))?;
    for i in 0..n {
        for f in 0..t {
            for y in 0..h {
                for xx in 0..w {
                    let oy = gap + i * (h + gap) + y;
                    let ox = gap + f * (w + gap) + xx;
                    for k in 0..3 {
                        let ch = if c == 3 { k } else { 0 };
                        let v = px[((((i * c + ch) * t + f) * h + y) * w + xx) as usize];
                        canvas[((oy * gw + ox) * 3 + k) as usize] = v;
                    }
                }
            }
        }
    }
    let img = image::RgbImage::from_raw(gw as u32, gh as u32, canvas)
        .ok_or_else(|| VideoError::invalid("strip_png: buffer size"))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| VideoError::format(path, e.to_string()))?;
    unet_core::checkpoint::write_atomic(path, &bytes)?;
    Ok(())
}

/// Tiles clips `[N, C, T, H, W]` into one clip `[T, C, rows·(H+2), cols·(W+2)]` of bytes.
pub fn grid_clip(clips: &Tensor, cols: i64, range: (f64, f64), scale: i64) -> Result<Tensor> {
    let x = to_bytes(clips, range, scale)?;
    let s = x.size();
    let (n, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    let cols = cols.clamp(1, n.max(1));
    let rows = (n + cols - 1) / cols;
    let out =
        Tensor::full([t, c, rows * (h + 2), cols * (w + 2)], 96, (Kind::Uint8, tch::Device::Cpu));
    for i in 0..n {
        let (r, q) = (i / cols, i % cols);
        out.narrow(2, r * (h + 2) + 1, h)
            .narrow(3, q * (w + 2) + 1, w)
            .copy_(&x.get(i).permute([1, 0, 2, 3]));
    }
    Ok(out)
}

/// Writes the clips tiled in a grid as an H.264 MP4.
pub fn grid_mp4(
    path: &Path,
    clips: &Tensor,
    cols: i64,
    range: (f64, f64),
    scale: i64,
    fps: f64,
) -> Result<()> {
    let g = grid_clip(clips, cols, range, scale)?;
    crate::io::write_mp4(path, &g, fps)
}
