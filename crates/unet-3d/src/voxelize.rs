//! Solid voxelisation of triangle meshes by ray parity.

use crate::mesh::{unit_cube_transform, TriMesh};
use crate::volume::Volume;

/// Tiny deterministic offsets (fractions of a voxel) added to the ray positions so rays
/// do not pass exactly through mesh vertices or edges of axis-aligned or grid-aligned meshes.
const JITTER: [f64; 2] = [1.234_567e-4, 7.654_321e-5];

/// Voxelises the solid bounded by `mesh` into a `res³` grid (1 = inside, 0 = outside).
///
/// The mesh is first mapped into `[margin, 1 − margin]³` keeping its aspect ratio (see
/// [`TriMesh::normalise_to_unit_cube`]); voxel `(i, j, k)` covers
/// `[i/res, (i+1)/res] × …` and is filled when its centre is inside. Inside-ness is the
/// parity of ray crossings, computed three times with rays along +x, +y and +z (each ray
/// shifted by a tiny fixed offset), and decided by majority vote, which tolerates small
/// holes and non-manifold spots. The result is deterministic; spacing is `1/res`.
pub fn voxelize_solid(mesh: &TriMesh, res: usize, margin: f32) -> Volume<u8> {
    let h = 1.0 / res.max(1) as f64;
    let mut out = Volume { dims: [res; 3], spacing: [h; 3], data: vec![0u8; res * res * res] };
    let Some((centre, scale)) = unit_cube_transform(&mesh.vertices, margin) else {
        return out;
    };
    if res == 0 {
        return out;
    }
    let verts: Vec<[f64; 3]> = mesh
        .vertices
        .iter()
        .map(|p| [0, 1, 2].map(|a| ((p[a] - centre[a]) * scale + 0.5) as f64))
        .collect();
    let mut votes = vec![0u8; res * res * res];
    for axis in 0..3 {
        // Ray direction `axis`; (u, v) are the two other axes.
        let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
        let mut hits: Vec<Vec<f64>> = vec![Vec::new(); res * res];
        for f in &mesh.faces {
            let Some(tri) =
                f.iter().map(|&i| verts.get(i as usize).copied()).collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let (a, b, c) = (tri[0], tri[1], tri[2]);
            let umin = a[u].min(b[u]).min(c[u]);
            let umax = a[u].max(b[u]).max(c[u]);
            let vmin = a[v].min(b[v]).min(c[v]);
            let vmax = a[v].max(b[v]).max(c[v]);
            // Columns whose ray coordinate (i + 0.5 + jitter)·h lies in the bounding box.
            let lo = |m: f64, j: f64| ((m / h - 0.5 - j).ceil().max(0.0)) as usize;
            let hi = |m: f64, j: f64| {
                let x = (m / h - 0.5 - j).floor();
                if x < 0.0 {
                    None
                } else {
                    Some((x as usize).min(res - 1))
                }
            };
            let (Some(iu1), Some(iv1)) = (hi(umax, JITTER[0]), hi(vmax, JITTER[1])) else {
                continue;
            };
            let (iu0, iv0) = (lo(umin, JITTER[0]), lo(vmin, JITTER[1]));
            for iu in iu0..=iu1 {
                let pu = (iu as f64 + 0.5 + JITTER[0]) * h;
                for iv in iv0..=iv1 {
                    let pv = (iv as f64 + 0.5 + JITTER[1]) * h;
                    // Edge functions in the (u, v) plane.
                    let e = |p: [f64; 3], q: [f64; 3]| {
                        (q[u] - p[u]) * (pv - p[v]) - (q[v] - p[v]) * (pu - p[u])
                    };
                    let (w0, w1, w2) = (e(b, c), e(c, a), e(a, b));
                    let inside =
                        (w0 > 0.0 && w1 > 0.0 && w2 > 0.0) || (w0 < 0.0 && w1 < 0.0 && w2 < 0.0);
                    if !inside {
                        continue;
                    }
                    let s = w0 + w1 + w2;
                    let t = (w0 * a[axis] + w1 * b[axis] + w2 * c[axis]) / s;
                    hits[iu + res * iv].push(t);
                }
            }
        }
        for iv in 0..res {
            for iu in 0..res {
                let col = &mut hits[iu + res * iv];
                if col.len() < 2 {
                    continue;
                }
                col.sort_by(f64::total_cmp);
                let mut crossed = 0usize;
                for k in 0..res {
                    let w = (k as f64 + 0.5) * h;
                    while crossed < col.len() && col[crossed] < w {
                        crossed += 1;
                    }
                    if crossed % 2 == 1 {
                        let mut idx = [0usize; 3];
                        idx[axis] = k;
                        idx[u] = iu;
                        idx[v] = iv;
                        votes[idx[0] + res * (idx[1] + res * idx[2])] += 1;
                    }
                }
            }
        }
    }
    for (o, &n) in out.data.iter_mut().zip(&votes) {
        *o = u8::from(n >= 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::tests::{cube, icosphere};

    fn fraction(v: &Volume<u8>) -> f64 {
        v.data.iter().map(|&x| x as f64).sum::<f64>() / v.data.len() as f64
    }

    #[test]
    fn cube_fraction_exact() {
        let v = voxelize_solid(&cube(), 32, 0.1);
        // Centres (i + 0.5)/32 in [0.1, 0.9] → i = 3..=28, 26 per axis.
        assert_eq!(v.count(1), 26 * 26 * 26);
        assert_eq!(v.get(3, 3, 3), Some(1));
        assert_eq!(v.get(2, 3, 3), Some(0));
        assert_eq!(v.get(28, 28, 28), Some(1));
        assert_eq!(v.get(29, 28, 28), Some(0));
    }

    #[test]
    fn sphere_fraction_and_determinism() {
        let s = icosphere(3);
        let v = voxelize_solid(&s, 40, 0.1);
        let exact = s.signed_volume() * (0.4f64).powi(3) / 1.0; // radius 1 → 0.4
        let f = fraction(&v);
        assert!((f - exact).abs() / exact < 0.03, "{f} vs {exact}");
        assert_eq!(v, voxelize_solid(&s, 40, 0.1));
        // A small hole (one missing triangle) barely changes the result.
        let mut holed = s.clone();
        holed.faces.remove(100);
        let w = voxelize_solid(&holed, 40, 0.1);
        let diff = v.data.iter().zip(&w.data).filter(|(a, b)| a != b).count();
        assert!(diff < 10, "{diff}");
        // Empty mesh → empty volume.
        assert_eq!(voxelize_solid(&TriMesh::default(), 8, 0.0).count(1), 0);
    }
}
