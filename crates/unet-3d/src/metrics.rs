//! Segmentation and generation metrics: Dice, IoU, HD95, Chamfer, coverage / MMD.
//!
//! Binary volumes treat any non-zero voxel as foreground.

use std::collections::BTreeMap;

use crate::error::{Error3d, Result};
use crate::volume::Volume;

/// A 3D kd-tree over points for exact nearest-neighbour queries.
#[derive(Debug, Clone)]
pub struct KdTree {
    /// Points reordered so that every range `[lo, hi)` is split at `(lo + hi) / 2`
    /// along axis `depth % 3`.
    pts: Vec<[f64; 3]>,
}

fn build(pts: &mut [[f64; 3]], depth: usize) {
    if pts.len() <= 1 {
        return;
    }
    let axis = depth % 3;
    let mid = pts.len() / 2;
    pts.select_nth_unstable_by(mid, |a, b| a[axis].total_cmp(&b[axis]));
    let (l, r) = pts.split_at_mut(mid);
    build(l, depth + 1);
    build(&mut r[1..], depth + 1);
}

impl KdTree {
    /// Builds the tree (O(n log n)).
    pub fn new(points: Vec<[f64; 3]>) -> Self {
        let mut pts = points;
        build(&mut pts, 0);
        KdTree { pts }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.pts.len()
    }

    /// True when the tree holds no point.
    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }

    /// Squared distance from `q` to its nearest point (`INFINITY` when empty).
    pub fn nearest_sq(&self, q: [f64; 3]) -> f64 {
        let mut best = f64::INFINITY;
        self.search(&self.pts, 0, q, &mut best);
        best
    }

    fn search(&self, pts: &[[f64; 3]], depth: usize, q: [f64; 3], best: &mut f64) {
        if pts.is_empty() {
            return;
        }
        let mid = pts.len() / 2;
        let p = pts[mid];
        let d = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
        if d < *best {
            *best = d;
        }
        let axis = depth % 3;
        let diff = q[axis] - p[axis];
        let (near, far) = if diff < 0.0 {
            (&pts[..mid], &pts[mid + 1..])
        } else {
            (&pts[mid + 1..], &pts[..mid])
        };
        self.search(near, depth + 1, q, best);
        if diff * diff < *best {
            self.search(far, depth + 1, q, best);
        }
    }
}

fn same_dims<A, B>(a: &Volume<A>, b: &Volume<B>) -> Result<()> {
    if a.dims != b.dims || a.data.len() != b.data.len() {
        return Err(Error3d::Invalid(format!("volume dims differ: {:?} vs {:?}", a.dims, b.dims)));
    }
    Ok(())
}

fn overlap(a: &Volume<u8>, b: &Volume<u8>) -> Result<(usize, usize, usize)> {
    same_dims(a, b)?;
    let (mut na, mut nb, mut both) = (0, 0, 0);
    for (&x, &y) in a.data.iter().zip(&b.data) {
        let (x, y) = (x != 0, y != 0);
        na += x as usize;
        nb += y as usize;
        both += (x && y) as usize;
    }
    Ok((na, nb, both))
}

/// Dice coefficient `2|A∩B| / (|A| + |B|)`; 1 when both are empty.
pub fn dice(a: &Volume<u8>, b: &Volume<u8>) -> Result<f64> {
    let (na, nb, both) = overlap(a, b)?;
    Ok(if na + nb == 0 { 1.0 } else { 2.0 * both as f64 / (na + nb) as f64 })
}

/// Intersection over union `|A∩B| / |A∪B|`; 1 when both are empty.
pub fn iou(a: &Volume<u8>, b: &Volume<u8>) -> Result<f64> {
    let (na, nb, both) = overlap(a, b)?;
    let union = na + nb - both;
    Ok(if union == 0 { 1.0 } else { both as f64 / union as f64 })
}

/// `1 − IoU`, a distance between voxelised shapes (for [`coverage_mmd`]).
pub fn voxel_iou_distance(a: &Volume<u8>, b: &Volume<u8>) -> Result<f64> {
    Ok(1.0 - iou(a, b)?)
}

/// Dice per label for two label volumes, over the labels present in either
/// (label 0 is skipped unless `include_background`).
pub fn dice_per_label(
    pred: &Volume<u8>,
    target: &Volume<u8>,
    include_background: bool,
) -> Result<BTreeMap<u8, f64>> {
    same_dims(pred, target)?;
    let mut np = [0usize; 256];
    let mut nt = [0usize; 256];
    let mut both = [0usize; 256];
    for (&p, &t) in pred.data.iter().zip(&target.data) {
        np[p as usize] += 1;
        nt[t as usize] += 1;
        if p == t {
            both[p as usize] += 1;
        }
    }
    let first = if include_background { 0 } else { 1 };
    Ok((first..256)
        .filter(|&l| np[l] + nt[l] > 0)
        .map(|l| (l as u8, 2.0 * both[l] as f64 / (np[l] + nt[l]) as f64))
        .collect())
}

/// Physical coordinates of the surface voxels of a binary volume: foreground voxels with a
/// background 6-neighbour or on the volume border (as medpy's `binary_erosion` border).
pub fn surface_points(v: &Volume<u8>, spacing: [f64; 3]) -> Vec<[f64; 3]> {
    let [dx, dy, dz] = v.dims;
    let fg = |x: usize, y: usize, z: usize| v.data[x + dx * (y + dy * z)] != 0;
    let mut out = Vec::new();
    if v.data.len() != dx * dy * dz {
        return out;
    }
    for z in 0..dz {
        for y in 0..dy {
            for x in 0..dx {
                if !fg(x, y, z) {
                    continue;
                }
                let border =
                    x == 0 || y == 0 || z == 0 || x + 1 == dx || y + 1 == dy || z + 1 == dz;
                let surf = border
                    || !fg(x - 1, y, z)
                    || !fg(x + 1, y, z)
                    || !fg(x, y - 1, z)
                    || !fg(x, y + 1, z)
                    || !fg(x, y, z - 1)
                    || !fg(x, y, z + 1);
                if surf {
                    out.push([x as f64 * spacing[0], y as f64 * spacing[1], z as f64 * spacing[2]]);
                }
            }
        }
    }
    out
}

/// Directed distances from every point of `from` to its nearest point of `to`.
fn directed(from: &[[f64; 3]], to: &KdTree) -> Vec<f64> {
    from.iter().map(|&p| to.nearest_sq(p).sqrt()).collect()
}

/// `q`-th percentile (0–100) with linear interpolation (numpy's default); sorts `d`.
pub fn percentile(d: &mut [f64], q: f64) -> f64 {
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_by(f64::total_cmp);
    let rank = (q / 100.0).clamp(0.0, 1.0) * (d.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    d[lo] + (d[hi] - d[lo]) * (rank - lo as f64)
}

fn surface_distances(
    a: &Volume<u8>,
    b: &Volume<u8>,
    spacing: [f64; 3],
) -> Result<Option<Vec<f64>>> {
    same_dims(a, b)?;
    let pa = surface_points(a, spacing);
    let pb = surface_points(b, spacing);
    if pa.is_empty() || pb.is_empty() {
        return Ok(None);
    }
    let (ta, tb) = (KdTree::new(pa.clone()), KdTree::new(pb.clone()));
    let mut d = directed(&pa, &tb);
    d.extend(directed(&pb, &ta));
    Ok(Some(d))
}

/// 95th-percentile symmetric Hausdorff distance between the surface voxels (see
/// [`surface_points`]) of two binary volumes, in the units of `spacing`.
///
/// Definition: medpy's `hd95` — the 95th percentile (linear interpolation) of the *pooled*
/// directed distances A→B and B→A. (MONAI's `compute_hausdorff_distance(percentile=95)`
/// instead takes the maximum of the two directed 95th percentiles; the two usually differ
/// slightly.) Distances are exact Euclidean nearest-neighbour distances (kd-tree).
/// Returns 0 when both are empty and `INFINITY` when only one is.
pub fn hausdorff95(a: &Volume<u8>, b: &Volume<u8>, spacing: [f64; 3]) -> Result<f64> {
    hausdorff_percentile(a, b, spacing, 95.0)
}

/// Like [`hausdorff95`] with any percentile `q` (100 gives the classic Hausdorff distance).
pub fn hausdorff_percentile(
    a: &Volume<u8>,
    b: &Volume<u8>,
    spacing: [f64; 3],
    q: f64,
) -> Result<f64> {
    let ea = a.data.iter().all(|&x| x == 0);
    let eb = b.data.iter().all(|&x| x == 0);
    match surface_distances(a, b, spacing)? {
        Some(mut d) => Ok(percentile(&mut d, q)),
        None if ea && eb => Ok(0.0),
        None => Ok(f64::INFINITY),
    }
}

/// Chamfer distance between point sets, as in Achlioptas et al. 2018 and PointFlow (Yang
/// et al. 2019): the mean over `p` of the squared distance to the nearest point of `q`,
/// plus the mean over `q` of the squared distance to the nearest point of `p`
/// (squared distances, means not sums). NaN when either set is empty.
pub fn chamfer(p: &[[f32; 3]], q: &[[f32; 3]]) -> f64 {
    if p.is_empty() || q.is_empty() {
        return f64::NAN;
    }
    let to64 = |s: &[[f32; 3]]| -> Vec<[f64; 3]> { s.iter().map(|x| x.map(f64::from)).collect() };
    let (p64, q64) = (to64(p), to64(q));
    let (tp, tq) = (KdTree::new(p64.clone()), KdTree::new(q64.clone()));
    let a: f64 = p64.iter().map(|&x| tq.nearest_sq(x)).sum::<f64>() / p.len() as f64;
    let b: f64 = q64.iter().map(|&x| tp.nearest_sq(x)).sum::<f64>() / q.len() as f64;
    a + b
}

/// Coverage and minimum matching distance (Achlioptas et al. 2018) between `n_generated`
/// generated and `n_reference` reference shapes, given `dist(i_generated, j_reference)`
/// (e.g. [`chamfer`] or [`voxel_iou_distance`]).
///
/// COV = fraction of reference shapes that are the nearest reference of at least one
/// generated shape; MMD = mean over reference shapes of the distance to the closest
/// generated shape. Returns `(cov, mmd)`; `(NaN, NaN)` when either set is empty.
pub fn coverage_mmd(
    n_generated: usize,
    n_reference: usize,
    dist: impl Fn(usize, usize) -> f64,
) -> (f64, f64) {
    if n_generated == 0 || n_reference == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut covered = vec![false; n_reference];
    let mut min_to_ref = vec![f64::INFINITY; n_reference];
    for i in 0..n_generated {
        let mut best = (f64::INFINITY, 0usize);
        for (j, m) in min_to_ref.iter_mut().enumerate() {
            let d = dist(i, j);
            if d < best.0 {
                best = (d, j);
            }
            if d < *m {
                *m = d;
            }
        }
        if best.0.is_finite() {
            covered[best.1] = true;
        }
    }
    let cov = covered.iter().filter(|&&c| c).count() as f64 / n_reference as f64;
    let mmd = min_to_ref.iter().sum::<f64>() / n_reference as f64;
    (cov, mmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unet_core::rng::Rng;

    fn ball(n: usize, c: [f64; 3], r: f64) -> Volume<u8> {
        let mut v = Volume::zeros([n, n, n], [1.0; 3]).unwrap();
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let d = ((x as f64 - c[0]).powi(2)
                        + (y as f64 - c[1]).powi(2)
                        + (z as f64 - c[2]).powi(2))
                    .sqrt();
                    v.set(x, y, z, u8::from(d <= r));
                }
            }
        }
        v
    }

    #[test]
    fn dice_iou_basics() {
        let a = Volume::from_vec([4, 1, 1], [1.0; 3], vec![1, 1, 0, 0]).unwrap();
        let b = Volume::from_vec([4, 1, 1], [1.0; 3], vec![0, 1, 1, 0]).unwrap();
        assert_eq!(dice(&a, &b).unwrap(), 0.5);
        assert!((iou(&a, &b).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((voxel_iou_distance(&a, &a).unwrap()).abs() < 1e-12);
        let z = Volume::from_vec([4, 1, 1], [1.0; 3], vec![0; 4]).unwrap();
        assert_eq!(dice(&z, &z).unwrap(), 1.0);
        let c = Volume::from_vec([2, 1, 1], [1.0; 3], vec![0; 2]).unwrap();
        assert!(dice(&a, &c).is_err());
        let p = Volume::from_vec([4, 1, 1], [1.0; 3], vec![0, 2, 2, 1]).unwrap();
        let t = Volume::from_vec([4, 1, 1], [1.0; 3], vec![0, 2, 1, 1]).unwrap();
        let d = dice_per_label(&p, &t, false).unwrap();
        assert_eq!(d.len(), 2);
        assert!((d[&1] - 2.0 / 3.0).abs() < 1e-12 && (d[&2] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(dice_per_label(&p, &t, true).unwrap()[&0], 1.0);
    }

    #[test]
    fn kdtree_matches_brute_force() {
        let mut rng = Rng::new(1);
        let pts: Vec<[f64; 3]> =
            (0..500).map(|_| [rng.uniform(), rng.uniform(), rng.uniform()]).collect();
        let t = KdTree::new(pts.clone());
        for _ in 0..200 {
            let q = [rng.uniform(), rng.uniform(), rng.uniform()];
            let brute = pts
                .iter()
                .map(|p| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(t.nearest_sq(q), brute);
        }
    }

    #[test]
    fn hd95_shifted_ball() {
        let a = ball(30, [14.0, 14.0, 14.0], 8.0);
        let b = ball(30, [16.0, 14.0, 14.0], 8.0);
        assert_eq!(hausdorff95(&a, &a, [1.0; 3]).unwrap(), 0.0);
        let h = hausdorff95(&a, &b, [1.0; 3]).unwrap();
        assert!(h > 1.0 && h <= 2.0 + 1e-9, "{h}");
        let hmax = hausdorff_percentile(&a, &b, [1.0; 3], 100.0).unwrap();
        assert!((hmax - 2.0).abs() < 1e-9, "{hmax}");
        // Spacing scales distances.
        let h2 = hausdorff95(&a, &b, [2.0; 3]).unwrap();
        assert!((h2 - 2.0 * h).abs() < 1e-9);
        let z = Volume::zeros([30, 30, 30], [1.0; 3]).unwrap();
        assert_eq!(hausdorff95(&a, &z, [1.0; 3]).unwrap(), f64::INFINITY);
        assert_eq!(hausdorff95(&z, &z, [1.0; 3]).unwrap(), 0.0);
        let mut d = vec![3.0, 1.0, 2.0, 4.0];
        assert!((percentile(&mut d, 95.0) - 3.85).abs() < 1e-12);
    }

    #[test]
    fn chamfer_and_coverage() {
        let p = [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]];
        let q = [[0.0f32, 0.0, 0.5]];
        // p→q: (0.25 + 1.25)/2 = 0.75; q→p: 0.25.
        assert!((chamfer(&p, &q) - 1.0).abs() < 1e-9);
        assert_eq!(chamfer(&p, &p), 0.0);
        assert!(chamfer(&p, &[]).is_nan());
        // Generated {0, 0.1}, reference {0, 1, 5} on a line.
        let g = [0.0f64, 0.1];
        let r = [0.0f64, 1.0, 5.0];
        let (cov, mmd) = coverage_mmd(2, 3, |i, j| (g[i] - r[j]).abs());
        assert!((cov - 1.0 / 3.0).abs() < 1e-12);
        assert!((mmd - (0.0 + 0.9 + 4.9) / 3.0).abs() < 1e-12);
    }
}
