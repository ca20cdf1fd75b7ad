//! Pose and motion metrics, computed the way the field computes them.
//!
//! * [`mpjpe`]: mean per-joint position error, the mean Euclidean distance over joints and
//!   poses (Ionescu et al. 2014, Human3.6M protocol 1);
//! * [`pa_mpjpe`]: the same after a per-pose similarity Procrustes alignment (rotation, uniform
//!   scale, translation) of the prediction onto the ground truth (protocol 2);
//! * [`pck`]: percentage of correct keypoints, a joint being correct when it lies within a
//!   per-pose threshold (e.g. 0.2 of the torso or 0.5 of the head size) of the truth;
//! * [`foot_sliding`]: mean horizontal speed of the feet while they touch the ground;
//! * [`diversity`]: the mean feature distance between random pairs of motions (Guo et al.
//!   2020, Action2Motion); the Fréchet distance itself is [`unet_core::metrics`]'s.
//!
//! Tensors of poses are `[P, J, D]` with `D` 2 or 3.

use tch::{Kind, Tensor};

use crate::{PoseError, Result};

fn check(pred: &Tensor, gt: &Tensor) -> Result<()> {
    let (a, b) = (pred.size(), gt.size());
    if a != b || a.len() != 3 || !(a[2] == 2 || a[2] == 3) {
        return Err(PoseError::Invalid(format!(
            "poses must be [P, J, 2|3] of equal shape; got {a:?} and {b:?}"
        )));
    }
    Ok(())
}

/// Per-joint distances `[P, J]`.
pub fn joint_distances(pred: &Tensor, gt: &Tensor) -> Result<Tensor> {
    check(pred, gt)?;
    Ok((pred.to_kind(Kind::Double) - gt.to_kind(Kind::Double))
        .square()
        .sum_dim_intlist([-1i64].as_slice(), false, Kind::Double)
        .sqrt())
}

/// Mean per-joint position error, in the units of the poses.
pub fn mpjpe(pred: &Tensor, gt: &Tensor) -> Result<f64> {
    Ok(joint_distances(pred, gt)?.mean(Kind::Double).double_value(&[]))
}

/// `pred` aligned onto `gt` per pose by the similarity transform minimising the squared error
/// (Umeyama 1991: SVD of the cross-covariance, reflections excluded).
pub fn procrustes_align(pred: &Tensor, gt: &Tensor) -> Result<Tensor> {
    check(pred, gt)?;
    let x = pred.to_kind(Kind::Double);
    let y = gt.to_kind(Kind::Double);
    let mx = x.mean_dim([1i64].as_slice(), true, Kind::Double);
    let my = y.mean_dim([1i64].as_slice(), true, Kind::Double);
    let (xc, yc) = (&x - &mx, &y - &my);
    let h = xc.transpose(1, 2).matmul(&yc); // [P, D, D]
    let (u, s, v) = h.svd(true, true); // h = u · diag(s) · vᵀ
    let d = Tensor::linalg_det(&v.matmul(&u.transpose(1, 2))).sign(); // [P]
    let dims = x.size()[2];
    let ones = Tensor::ones([x.size()[0], dims], (Kind::Double, x.device()));
    ones.narrow(1, dims - 1, 1).copy_(&d.unsqueeze(1));
    let r = v.matmul(&ones.diag_embed(0, -2, -1)).matmul(&u.transpose(1, 2)); // [P, D, D]
    let var = xc.square().sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Double);
    let scale =
        (s * &ones).sum_dim_intlist([1i64].as_slice(), false, Kind::Double) / var.clamp_min(1e-12);
    let aligned = xc.matmul(&r.transpose(1, 2)) * scale.view([-1, 1, 1]) + my;
    Ok(aligned.to_kind(pred.kind()))
}

/// MPJPE after per-pose Procrustes alignment.
pub fn pa_mpjpe(pred: &Tensor, gt: &Tensor) -> Result<f64> {
    mpjpe(&procrustes_align(pred, gt)?, gt)
}

/// Fraction of joints within `threshold[p]` of the truth (`threshold`: `[P]`).
pub fn pck(pred: &Tensor, gt: &Tensor, threshold: &Tensor) -> Result<f64> {
    let d = joint_distances(pred, gt)?;
    if threshold.size() != [d.size()[0]] {
        return Err(PoseError::Invalid(format!(
            "threshold must be [P] = [{}], got {:?}",
            d.size()[0],
            threshold.size()
        )));
    }
    let ok = d.le_tensor(&threshold.to_kind(Kind::Double).unsqueeze(1));
    Ok(ok.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
}

/// Mean horizontal speed (units per second) of the contact points `feet` over consecutive
/// frames in which the point is below `height` (y up) in both frames; 0 when never in contact.
pub fn foot_sliding(positions: &[Vec<[f64; 3]>], feet: &[usize], fps: f64, height: f64) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for w in positions.windows(2) {
        for &f in feet {
            let (a, b) = (w[0][f], w[1][f]);
            if a[1] < height && b[1] < height {
                sum += ((a[0] - b[0]).powi(2) + (a[2] - b[2]).powi(2)).sqrt() * fps;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Diversity: the mean Euclidean distance between `pairs` random pairs of rows of
/// `features` (`[N, F]`), drawn with `seed`.
pub fn diversity(features: &Tensor, pairs: i64, seed: i64) -> Result<f64> {
    let n = features.size()[0];
    if n < 2 || pairs < 1 {
        return Err(PoseError::Invalid(format!("diversity needs ≥ 2 rows and ≥ 1 pair (got {n})")));
    }
    let mut rng = unet_core::rng::Rng::new(seed as u64);
    let mut next = |m: i64| rng.below(m as u64) as i64;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        let i = next(n);
        a.push(i);
        b.push((i + 1 + next(n - 1)) % n);
    }
    let g = Tensor::from_slice(&a).to_device(features.device());
    let h = Tensor::from_slice(&b).to_device(features.device());
    let d = (features.index_select(0, &g) - features.index_select(0, &h))
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
        .sqrt();
    Ok(d.mean(Kind::Double).double_value(&[]))
}
