//! Image metrics: Dice and IoU with an Otsu thresholding baseline for segmentation, PSNR and
//! SSIM for restoration (checked against scikit-image).
//!
//! Dice (Sørensen-Dice, `2|P∩G| / (|P|+|G|)`) and IoU (Jaccard, `|P∩G| / |P∪G|`) are computed
//! per image on the foreground class and averaged over images, the way segmentation papers
//! report them; an image where prediction and ground truth are both empty scores 1.

use ndarray::{ArrayView2, Zip};

/// Per-image overlap counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overlap {
    /// |P ∩ G|
    pub intersection: u64,
    /// |P|
    pub predicted: u64,
    /// |G|
    pub truth: u64,
}

impl Overlap {
    /// Counts the overlap of two binary masks (non-zero = foreground).
    pub fn of(pred: ArrayView2<u8>, truth: ArrayView2<u8>) -> Self {
        let mut o = Overlap::default();
        Zip::from(pred).and(truth).for_each(|&p, &t| {
            let (p, t) = (p != 0, t != 0);
            o.intersection += (p && t) as u64;
            o.predicted += p as u64;
            o.truth += t as u64;
        });
        o
    }

    /// Dice coefficient.
    pub fn dice(&self) -> f64 {
        let d = self.predicted + self.truth;
        if d == 0 {
            1.0
        } else {
            2.0 * self.intersection as f64 / d as f64
        }
    }

    /// Intersection over union.
    pub fn iou(&self) -> f64 {
        let u = self.predicted + self.truth - self.intersection;
        if u == 0 {
            1.0
        } else {
            self.intersection as f64 / u as f64
        }
    }
}

/// Mean Dice and IoU over pairs of masks.
pub fn mean_dice_iou<'a>(
    pairs: impl IntoIterator<Item = (ArrayView2<'a, u8>, ArrayView2<'a, u8>)>,
) -> (f64, f64) {
    let (mut d, mut i, mut n) = (0.0, 0.0, 0usize);
    for (p, t) in pairs {
        let o = Overlap::of(p, t);
        d += o.dice();
        i += o.iou();
        n += 1;
    }
    if n == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (d / n as f64, i / n as f64)
    }
}

/// Otsu's threshold (Otsu 1979) of an 8-bit image, computed exactly as scikit-image's
/// `threshold_otsu` does for integer images: the histogram spans `min..=max`, and pixels
/// strictly above the returned value are foreground. A constant image returns its value.
pub fn otsu_threshold(img: ArrayView2<u8>) -> u8 {
    let (mut lo, mut hi) = (u8::MAX, u8::MIN);
    let mut hist = [0u64; 256];
    for &v in img.iter() {
        hist[v as usize] += 1;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if img.is_empty() || lo == hi {
        return lo;
    }
    let h = &hist[lo as usize..=hi as usize];
    let centers: Vec<f64> = (lo as usize..=hi as usize).map(|c| c as f64).collect();
    let n = h.len();
    let mut w1 = vec![0f64; n];
    let mut m1 = vec![0f64; n];
    let (mut cw, mut cm) = (0f64, 0f64);
    for k in 0..n {
        cw += h[k] as f64;
        cm += h[k] as f64 * centers[k];
        w1[k] = cw;
        m1[k] = if cw > 0.0 { cm / cw } else { 0.0 };
    }
    let mut w2 = vec![0f64; n];
    let mut m2 = vec![0f64; n];
    let (mut cw, mut cm) = (0f64, 0f64);
    for k in (0..n).rev() {
        cw += h[k] as f64;
        cm += h[k] as f64 * centers[k];
        w2[k] = cw;
        m2[k] = if cw > 0.0 { cm / cw } else { 0.0 };
    }
    let mut best = (f64::MIN, 0usize);
    for k in 0..n - 1 {
        let v = w1[k] * w2[k + 1] * (m1[k] - m2[k + 1]).powi(2);
        if v > best.0 {
            best = (v, k);
        }
    }
    centers[best.1] as u8
}

/// Which side of the Otsu threshold is called foreground.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// The smaller of the two classes is foreground (no ground truth used).
    Minority,
    /// Pixels above the threshold are foreground.
    Bright,
    /// Pixels at or below the threshold are foreground.
    Dark,
}

/// Binary segmentation by Otsu's threshold with the given polarity.
pub fn otsu_segment(img: ArrayView2<u8>, polarity: Polarity) -> ndarray::Array2<u8> {
    let t = otsu_threshold(img);
    let bright = img.mapv(|v| (v > t) as u8);
    let n_bright = bright.iter().map(|&b| b as usize).sum::<usize>();
    let use_bright = match polarity {
        Polarity::Bright => true,
        Polarity::Dark => false,
        Polarity::Minority => 2 * n_bright <= img.len(),
    };
    if use_bright {
        bright
    } else {
        bright.mapv(|b| 1 - b)
    }
}

/// Peak signal-to-noise ratio per image, `10 · log10(L² / MSE)` dB, for `[N, C, H, W]`
/// tensors with data range `L` (as scikit-image's `peak_signal_noise_ratio`). Identical images
/// give +∞.
pub fn psnr(a: &tch::Tensor, b: &tch::Tensor, data_range: f64) -> crate::Result<Vec<f64>> {
    check_pair(a, b)?;
    let mse = (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
        .square()
        .flatten(1, -1)
        .mean_dim(1, false, tch::Kind::Double);
    Ok(Vec::<f64>::try_from(mse)?
        .into_iter()
        .map(|m| 10.0 * (data_range * data_range / m).log10())
        .collect())
}

fn check_pair(a: &tch::Tensor, b: &tch::Tensor) -> crate::Result<()> {
    if a.size() != b.size() || a.dim() != 4 {
        return Err(crate::ImageError::Invalid(format!(
            "expected two [N, C, H, W] images of one shape, got {:?} and {:?}",
            a.size(),
            b.size()
        )));
    }
    Ok(())
}

/// Structural similarity (Wang et al. 2004) per image for `[N, C, H, W]` tensors: 11-tap
/// Gaussian window (σ = 1.5), K₁ = 0.01, K₂ = 0.03, population covariances, mean over the
/// positions whose window lies inside the image and over channels — the same number as
/// scikit-image's `structural_similarity(…, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False, data_range=L, channel_axis=…)`.
pub fn ssim(a: &tch::Tensor, b: &tch::Tensor, data_range: f64) -> crate::Result<Vec<f64>> {
    use tch::{Kind, Tensor};
    check_pair(a, b)?;
    let s = a.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    if h < 11 || w < 11 {
        return Err(crate::ImageError::Invalid(format!(
            "SSIM needs images of at least 11×11, got {h}×{w}"
        )));
    }
    let sigma = 1.5f64;
    let taps: Vec<f64> = (-5..=5).map(|x: i32| (-0.5 * (x as f64 / sigma).powi(2)).exp()).collect();
    let sum: f64 = taps.iter().sum();
    let g = Tensor::from_slice(&taps.iter().map(|t| t / sum).collect::<Vec<_>>());
    let kx = g.view([1, 1, 1, 11]).to_device(a.device());
    let ky = g.view([1, 1, 11, 1]).to_device(a.device());
    // Valid-mode separable filtering = the interior that scikit-image keeps after cropping.
    let filt = |t: &Tensor| -> crate::Result<Tensor> {
        let t = t.f_reshape([n * c, 1, h, w])?;
        let t = t.f_conv2d(&kx, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
        Ok(t.f_conv2d(&ky, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1)?)
    };
    let x = a.to_kind(Kind::Double);
    let y = b.to_kind(Kind::Double);
    let (ux, uy) = (filt(&x)?, filt(&y)?);
    let (uxx, uyy, uxy) = (filt(&(&x * &x))?, filt(&(&y * &y))?, filt(&(&x * &y))?);
    let vx = uxx - &ux * &ux;
    let vy = uyy - &uy * &uy;
    let vxy = uxy - &ux * &uy;
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let num = (&ux * &uy * 2.0 + c1) * (vxy * 2.0 + c2);
    let den = (ux.square() + uy.square() + c1) * (vx + vy + c2);
    let map = (num / den).f_reshape([n, -1])?;
    Ok(Vec::<f64>::try_from(map.mean_dim(1, false, Kind::Double))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn dice_and_iou_by_hand() {
        let p = array![[1u8, 1, 0, 0]];
        let t = array![[0u8, 1, 1, 0]];
        let o = Overlap::of(p.view(), t.view());
        assert_eq!(o, Overlap { intersection: 1, predicted: 2, truth: 2 });
        assert!((o.dice() - 0.5).abs() < 1e-12);
        assert!((o.iou() - 1.0 / 3.0).abs() < 1e-12);
        let z = array![[0u8, 0]];
        assert_eq!(Overlap::of(z.view(), z.view()).dice(), 1.0);
    }

    #[test]
    fn otsu_separates_two_levels() {
        let img = array![[10u8, 10, 10, 200], [10, 10, 200, 200]];
        let t = otsu_threshold(img.view());
        assert!((10..200).contains(&t));
        assert_eq!(otsu_segment(img.view(), Polarity::Minority).sum(), 3);
        assert_eq!(otsu_segment(img.view(), Polarity::Dark).sum(), 5);
        assert_eq!(otsu_threshold(array![[7u8, 7]].view()), 7);
    }
}
