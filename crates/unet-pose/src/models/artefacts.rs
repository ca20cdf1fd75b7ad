//! Report artefacts: animated GIFs and BVH files of generated motions, and PNG grids of
//! keypoint predictions.

use std::path::Path;

use image::{Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

use crate::bvh::humanoid_bvh;
use crate::models::motion_diffusion::Prepared;
use crate::render::write_gif_grid;
use crate::skeleton::Skeleton;
use crate::{PoseError, Result};

/// Writes `samples.gif` (the first sample of every class, one tile each, labelled in the
/// report's order) and `bvh/<class>.bvh` for the same samples.
pub fn write_motion_artefacts(
    out: &Path,
    data: &Prepared,
    samples: &Tensor,
    requests: &[i64],
    classes: &[String],
    fps: f64,
) -> Result<()> {
    let layout = &data.windows.layout;
    let skel = &layout.skeleton;
    let mut firsts = Vec::new();
    for c in 0..classes.len() as i64 {
        if let Some(i) = requests.iter().position(|&r| r == c) {
            firsts.push((c as usize, i as i64));
        }
    }
    if firsts.is_empty() {
        return Ok(());
    }
    let idx = Tensor::from_slice(&firsts.iter().map(|f| f.1).collect::<Vec<_>>());
    let picked = samples.index_select(0, &idx);
    let motions = data.positions(&picked)?;
    write_gif_grid(
        &out.join("samples.gif"),
        &motions,
        6,
        &skel.bones(),
        &skel.bone_colours(),
        fps,
        160,
        160,
        35f64.to_radians(),
        12f64.to_radians(),
    )?;
    let bvh_dir = out.join("bvh");
    std::fs::create_dir_all(&bvh_dir).map_err(|e| PoseError::io(&bvh_dir, e))?;
    let t = picked.size()[2] as usize;
    let flat = unnormalise(data, &picked)?;
    let d = layout.dim();
    for (k, (c, _)) in firsts.iter().enumerate() {
        let poses = layout.decode(&flat[k * d * t..(k + 1) * d * t], t)?;
        humanoid_bvh(skel, &poses, 1.0 / fps)?
            .write(&bvh_dir.join(format!("{}.bvh", classes[*c])))?;
    }
    Ok(())
}

fn unnormalise(data: &Prepared, x: &Tensor) -> Result<Vec<f32>> {
    let t = x.size()[2] as usize;
    let flat = Vec::<f32>::try_from(x.to_device(Device::Cpu).contiguous().view([-1]))?;
    let d = data.mean.len();
    Ok(flat
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let c = (k / t) % d;
            v * data.std[c] + data.mean[c]
        })
        .collect())
}

/// A 4-column PNG grid of images `[N, 3, S, S]` (in [-1, 1]) with predicted keypoints as
/// red crosses and the truth as green dots.
pub fn write_keypoint_grid(
    path: &Path,
    skel: &Skeleton,
    x: &Tensor,
    pred: &Tensor,
    gt: &Tensor,
) -> Result<()> {
    let (n, _, s, _) = x.size4()?;
    let cols = 4i64;
    let rows = (n + cols - 1) / cols;
    let s_u = s as u32;
    let mut img = RgbImage::from_pixel(cols as u32 * s_u, rows as u32 * s_u, Rgb([255, 255, 255]));
    let px = ((x.to_device(Device::Cpu) + 1.0) * 127.5).clamp(0.0, 255.0).to_kind(Kind::Uint8);
    let px = Vec::<u8>::try_from(px.contiguous().view([-1]))?;
    let p = Vec::<f32>::try_from(
        pred.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]),
    )?;
    let g = Vec::<f32>::try_from(
        gt.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]),
    )?;
    let j = skel.len();
    for i in 0..n as usize {
        let (ox, oy) = ((i as u32 % cols as u32) * s_u, (i as u32 / cols as u32) * s_u);
        for y in 0..s_u {
            for xx in 0..s_u {
                let at = |c: usize| {
                    px[((i * 3 + c) * s as usize + y as usize) * s as usize + xx as usize]
                };
                let v = [at(0), at(1), at(2)];
                // Black background of the renders shown as white.
                let v = if v == [0, 0, 0] { [255, 255, 255] } else { v };
                img.put_pixel(ox + xx, oy + y, Rgb(v));
            }
        }
        let mut mark = |cx: f32, cy: f32, colour: [u8; 3], cross: bool| {
            for d in -2i32..=2 {
                let pts: Vec<(i32, i32)> =
                    if cross { vec![(d, d), (d, -d)] } else { vec![(d, 0), (0, d)] };
                for (dx, dy) in pts {
                    let (xx, yy) = (cx as i32 + dx, cy as i32 + dy);
                    if xx >= 0 && yy >= 0 && xx < s as i32 && yy < s as i32 {
                        img.put_pixel(ox + xx as u32, oy + yy as u32, Rgb(colour));
                    }
                }
            }
        };
        for k in 0..j {
            let b = (i * j + k) * 2;
            mark(g[b], g[b + 1], [20, 160, 40], false);
            mark(p[b], p[b + 1], [220, 20, 20], true);
        }
    }
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| PoseError::format(path, None, format!("cannot encode PNG: {e}")))?;
    Ok(unet_core::checkpoint::write_atomic(path, &png.into_inner())?)
}
