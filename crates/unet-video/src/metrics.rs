//! Video metrics. Clips are `[N, C, T, H, W]` float tensors; `data_range` is the span of their
//! values (2 for [-1, 1], 1 for [0, 1], 255 for bytes).
//!
//! * per-frame [`psnr`] / [`ssim`] (scikit-image's definitions, through `unet-image`);
//! * [`flicker`]: temporal consistency against a reference — the mean absolute difference
//!   between the output's and the reference's consecutive-frame differences,
//!   `mean |(y_{t+1} − y_t) − (r_{t+1} − r_t)|`, in data units (0 for a perfectly consistent
//!   output; a frame-independent method that errs differently in every frame scores high even
//!   at a good per-frame PSNR);
//! * for generated one-item moving clips, where there is no paired reference: [`item_crops`]
//!   (each frame's item cropped and scaled to 28×28, so Fashion-MNIST features apply), the
//!   per-frame **FD-FMNIST** of those crops, [`class_consistency`] (the share of clips whose
//!   item keeps one predicted class in every frame), [`class_agreement`] (the share of
//!   consecutive frame pairs with one predicted class) and [`centroid_acceleration`] (the mean size of the
//!   second difference of the item's centroid track: near 0 for constant-velocity motion,
//!   large when the item jumps from frame to frame);
//! * [`frame_difference`]: the mean absolute consecutive-frame difference (motion energy).

use tch::{Kind, Tensor};
use unet_image::classifier::FmnistClassifier;

use crate::models::video_unet::frames_as_batch;
use crate::{Result, VideoError};

fn check_clip(x: &Tensor, what: &str) -> Result<(i64, i64, i64, i64, i64)> {
    let s = x.size();
    if s.len() != 5 || s[2] < 1 {
        return Err(VideoError::invalid(format!("{what}: expected [N, C, T, H, W], got {s:?}")));
    }
    Ok((s[0], s[1], s[2], s[3], s[4]))
}

fn check_pair(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    check_clip(a, what)?;
    if a.size() != b.size() {
        return Err(VideoError::invalid(format!(
            "{what}: clips of different shapes {:?} and {:?}",
            a.size(),
            b.size()
        )));
    }
    Ok(())
}

/// PSNR (dB) of every frame, clip-major (`N·T` values).
pub fn psnr(a: &Tensor, b: &Tensor, data_range: f64) -> Result<Vec<f64>> {
    check_pair(a, b, "psnr")?;
    Ok(unet_image::metrics::psnr(&frames_as_batch(a)?, &frames_as_batch(b)?, data_range)?)
}

/// SSIM of every frame, clip-major (`N·T` values; frames of at least 11×11).
pub fn ssim(a: &Tensor, b: &Tensor, data_range: f64) -> Result<Vec<f64>> {
    check_pair(a, b, "ssim")?;
    Ok(unet_image::metrics::ssim(&frames_as_batch(a)?, &frames_as_batch(b)?, data_range)?)
}

/// `mean |(y_{t+1} − y_t) − (r_{t+1} − r_t)|` over all clips, channels, pixels and frame pairs.
pub fn flicker(output: &Tensor, reference: &Tensor) -> Result<f64> {
    check_pair(output, reference, "flicker")?;
    let t = output.size()[2];
    if t < 2 {
        return Err(VideoError::invalid("flicker: needs at least 2 frames"));
    }
    let d = |x: &Tensor| {
        x.narrow(2, 1, t - 1).to_kind(Kind::Double) - x.narrow(2, 0, t - 1).to_kind(Kind::Double)
    };
    Ok((d(output) - d(reference)).abs().mean(Kind::Double).double_value(&[]))
}

/// `mean |x_{t+1} − x_t|` (motion energy of a clip set).
pub fn frame_difference(x: &Tensor) -> Result<f64> {
    let (_, _, t, _, _) = check_clip(x, "frame_difference")?;
    if t < 2 {
        return Err(VideoError::invalid("frame_difference: needs at least 2 frames"));
    }
    let d =
        x.narrow(2, 1, t - 1).to_kind(Kind::Double) - x.narrow(2, 0, t - 1).to_kind(Kind::Double);
    Ok(d.abs().mean(Kind::Double).double_value(&[]))
}

/// Every frame's item of one-channel clips in [-1, 1]: the square around the pixels brighter
/// than −0.5 (0.25 of full intensity), centred on their bounding box, cut out (black outside
/// the frame) and scaled to 28×28 with anti-aliasing: `[N·T, 1, 28, 28]` in [-1, 1]. A frame
/// without such pixels gives a black crop.
pub fn item_crops(x: &Tensor) -> Result<Tensor> {
    let (n, c, t, h, w) = check_clip(x, "item_crops")?;
    if c != 1 {
        return Err(VideoError::invalid(format!("item_crops: one-channel clips, got {c}")));
    }
    let frames = frames_as_batch(&x.to_kind(Kind::Float).to_device(tch::Device::Cpu))?; // [NT,1,H,W]
    let px: Vec<f32> = Vec::<f32>::try_from(frames.flatten(0, -1))?;
    let (h, w) = (h as usize, w as usize);
    let mut crops = Vec::with_capacity((n * t) as usize);
    for f in 0..(n * t) as usize {
        let img = &px[f * h * w..(f + 1) * h * w];
        let (mut y0, mut y1, mut x0, mut x1) = (usize::MAX, 0usize, usize::MAX, 0usize);
        for (i, &v) in img.iter().enumerate() {
            if v > -0.5 {
                let (yy, xx) = (i / w, i % w);
                y0 = y0.min(yy);
                y1 = y1.max(yy);
                x0 = x0.min(xx);
                x1 = x1.max(xx);
            }
        }
        if y0 == usize::MAX {
            crops.push(Tensor::full([1, 1, 28, 28], -1.0, (Kind::Float, tch::Device::Cpu)));
            continue;
        }
        let side = (y1 - y0 + 1).max(x1 - x0 + 1) as i64;
        let cy = (y0 + y1 + 1) as i64; // twice the centre
        let cx = (x0 + x1 + 1) as i64;
        let top = (cy - side) / 2;
        let left = (cx - side) / 2;
        let mut sq = vec![-1f32; (side * side) as usize];
        for r in 0..side {
            let yy = top + r;
            if yy < 0 || yy >= h as i64 {
                continue;
            }
            for q in 0..side {
                let xx = left + q;
                if xx >= 0 && xx < w as i64 {
                    sq[(r * side + q) as usize] = img[yy as usize * w + xx as usize];
                }
            }
        }
        let sq = Tensor::from_slice(&sq).view([1, 1, side, side]);
        let crop = if side == 28 {
            sq
        } else {
            sq.f_internal_upsample_bilinear2d_aa([28, 28], false, None, None)?
        };
        crops.push(crop.clamp(-1.0, 1.0));
    }
    Ok(Tensor::cat(&crops, 0))
}

/// Per-frame FD-FMNIST: the Fréchet distance between the classifier features of the item crops
/// of two clip sets.
pub fn fd_fmnist_frames(clf: &FmnistClassifier, a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(unet_image::classifier::fd_fmnist(clf, &item_crops(a)?, &item_crops(b)?)?)
}

/// Classifier features of every frame's item crop, `[N·T, 128]` (computed once per clip set
/// when several sets are compared with one reference).
pub fn item_features(clf: &FmnistClassifier, x: &Tensor) -> Result<Tensor> {
    Ok(clf.features(&item_crops(x)?)?)
}

/// Predicted classes `[N, T]` of the items of one-item clips (one classifier pass).
pub fn item_classes(clf: &FmnistClassifier, x: &Tensor) -> Result<Tensor> {
    let (n, _, t, _, _) = check_clip(x, "item_classes")?;
    Ok(clf.logits(&item_crops(x)?)?.argmax(1, false).view([n, t]))
}

/// Share of clips whose item crops get one predicted class in every frame.
pub fn class_consistency(clf: &FmnistClassifier, x: &Tensor) -> Result<f64> {
    consistency_of(&item_classes(clf, x)?)
}

/// [`class_consistency`] of predicted classes `[N, T]`.
pub fn consistency_of(pred: &Tensor) -> Result<f64> {
    let same = pred.eq_tensor(&pred.narrow(1, 0, 1)).all_dim(1, false);
    Ok(same.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}

/// Share of consecutive frame pairs whose item crops get the same predicted class (a softer
/// form of [`class_consistency`]: one changed frame costs one or two pairs, not the clip).
pub fn class_agreement(clf: &FmnistClassifier, x: &Tensor) -> Result<f64> {
    agreement_of(&item_classes(clf, x)?)
}

/// [`class_agreement`] of predicted classes `[N, T]`.
pub fn agreement_of(pred: &Tensor) -> Result<f64> {
    let t = pred.size()[1];
    if t < 2 {
        return Err(VideoError::invalid("class_agreement: needs at least 2 frames"));
    }
    let same = pred.narrow(1, 1, t - 1).eq_tensor(&pred.narrow(1, 0, t - 1));
    Ok(same.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}

/// Intensity-weighted centroid `(y, x)` of every frame of one-channel clips in [-1, 1]
/// (weights = value + 1): `[N, T, 2]`.
pub fn centroids(x: &Tensor) -> Result<Tensor> {
    let (n, c, t, h, w) = check_clip(x, "centroids")?;
    if c != 1 {
        return Err(VideoError::invalid(format!("centroids: one-channel clips, got {c}")));
    }
    let wgt = (x.to_kind(Kind::Double).reshape([n, t, h, w]) + 1.0).clamp_min(0.0);
    let total = wgt.sum_dim_intlist([2, 3].as_slice(), false, Kind::Double).clamp_min(1e-9);
    let ys = Tensor::arange(h, (Kind::Double, x.device())).view([1, 1, h, 1]);
    let xs = Tensor::arange(w, (Kind::Double, x.device())).view([1, 1, 1, w]);
    let cy = (&wgt * ys).sum_dim_intlist([2, 3].as_slice(), false, Kind::Double) / &total;
    let cx = (&wgt * xs).sum_dim_intlist([2, 3].as_slice(), false, Kind::Double) / &total;
    Ok(Tensor::stack(&[cy, cx], 2))
}

/// Mean `‖c_{t+1} − 2c_t + c_{t−1}‖` of the centroid tracks, in pixels per frame².
pub fn centroid_acceleration(x: &Tensor) -> Result<f64> {
    let c = centroids(x)?;
    let t = c.size()[1];
    if t < 3 {
        return Err(VideoError::invalid("centroid_acceleration: needs at least 3 frames"));
    }
    let acc = c.narrow(1, 2, t - 2) - c.narrow(1, 1, t - 2) * 2.0 + c.narrow(1, 0, t - 2);
    Ok(acc
        .square()
        .sum_dim_intlist([2].as_slice(), false, Kind::Double)
        .sqrt()
        .mean(Kind::Double)
        .double_value(&[]))
}

/// Mean with +∞ (the PSNR of identical frames) counted as `cap`; a NaN anywhere gives NaN, so a
/// broken frame is never silently left out.
pub fn mean_capped(v: &[f64], cap: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().map(|&x| if x == f64::INFINITY { cap } else { x }).sum::<f64>() / v.len() as f64
}
