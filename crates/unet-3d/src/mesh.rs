//! Triangle meshes and point clouds.

use crate::error::{Error3d, Result};
use unet_core::rng::Rng;

/// An indexed triangle mesh. Polygons are triangulated as fans when loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriMesh {
    /// Vertex positions.
    pub vertices: Vec<[f32; 3]>,
    /// Triangles as indices into `vertices`.
    pub faces: Vec<[u32; 3]>,
    /// Optional per-vertex normals (same length as `vertices`).
    pub normals: Option<Vec<[f32; 3]>>,
    /// Optional per-vertex RGB colours (same length as `vertices`).
    pub colours: Option<Vec<[u8; 3]>>,
}

/// A point cloud with optional per-point normals and colours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud {
    /// Point positions.
    pub points: Vec<[f32; 3]>,
    /// Optional per-point normals.
    pub normals: Option<Vec<[f32; 3]>>,
    /// Optional per-point RGB colours.
    pub colours: Option<Vec<[u8; 3]>>,
}

/// Axis-aligned bounding box of `points` as `(min, max)`; `None` when empty or only non-finite.
pub fn bounding_box(points: &[[f32; 3]]) -> Option<([f32; 3], [f32; 3])> {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    let mut any = false;
    for p in points {
        if p.iter().all(|c| c.is_finite()) {
            any = true;
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
    }
    any.then_some((lo, hi))
}

/// Affine map `p ↦ (p − centre)·scale + 0.5` that puts `points` in `[margin, 1 − margin]³`
/// keeping the aspect ratio (longest side spans `1 − 2·margin`, centred).
/// Returns `(centre, scale)`; `None` for empty input.
pub fn unit_cube_transform(points: &[[f32; 3]], margin: f32) -> Option<([f32; 3], f32)> {
    let (lo, hi) = bounding_box(points)?;
    let centre = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])];
    let ext = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(hi[2] - lo[2]);
    let span = (1.0 - 2.0 * margin).max(f32::EPSILON);
    let scale = if ext > 0.0 { span / ext } else { 1.0 };
    Some((centre, scale))
}

fn apply_transform(points: &mut [[f32; 3]], centre: [f32; 3], scale: f32) {
    for p in points {
        for a in 0..3 {
            p[a] = (p[a] - centre[a]) * scale + 0.5;
        }
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

impl TriMesh {
    /// Builds a mesh, checking that every face index is in range.
    pub fn new(vertices: Vec<[f32; 3]>, faces: Vec<[u32; 3]>) -> Result<Self> {
        let m = TriMesh { vertices, faces, normals: None, colours: None };
        m.validate()?;
        Ok(m)
    }

    /// Checks face indices and attribute lengths.
    pub fn validate(&self) -> Result<()> {
        let n = self.vertices.len();
        if let Some((i, f)) =
            self.faces.iter().enumerate().find(|(_, f)| f.iter().any(|&v| v as usize >= n))
        {
            return Err(Error3d::Invalid(format!(
                "face {i} {f:?} references a vertex out of range (0..{n})"
            )));
        }
        if self.normals.as_ref().is_some_and(|v| v.len() != n)
            || self.colours.as_ref().is_some_and(|v| v.len() != n)
        {
            return Err(Error3d::Invalid(
                "normals/colours length differs from vertex count".into(),
            ));
        }
        Ok(())
    }

    /// Axis-aligned bounding box of the vertices.
    pub fn bounding_box(&self) -> Option<([f32; 3], [f32; 3])> {
        bounding_box(&self.vertices)
    }

    /// Scales and translates in place into `[margin, 1 − margin]³`, keeping the aspect ratio.
    pub fn normalise_to_unit_cube(&mut self, margin: f32) {
        if let Some((c, s)) = unit_cube_transform(&self.vertices, margin) {
            apply_transform(&mut self.vertices, c, s);
        }
    }

    /// Area of face `f` (zero for out-of-range indices).
    pub fn face_area(&self, f: usize) -> f32 {
        match self.corners(f) {
            Some([a, b, c]) => {
                let n = cross(sub(b, a), sub(c, a));
                0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()
            }
            None => 0.0,
        }
    }

    fn corners(&self, f: usize) -> Option<[[f32; 3]; 3]> {
        let face = self.faces.get(f)?;
        Some([
            *self.vertices.get(face[0] as usize)?,
            *self.vertices.get(face[1] as usize)?,
            *self.vertices.get(face[2] as usize)?,
        ])
    }

    /// Total surface area.
    pub fn surface_area(&self) -> f64 {
        (0..self.faces.len()).map(|f| self.face_area(f) as f64).sum()
    }

    /// Signed enclosed volume by the divergence theorem (positive for outward-facing triangles).
    pub fn signed_volume(&self) -> f64 {
        let mut v = 0.0f64;
        for f in 0..self.faces.len() {
            if let Some([a, b, c]) = self.corners(f) {
                let a = a.map(f64::from);
                let b = b.map(f64::from);
                let c = c.map(f64::from);
                v += a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                    + a[2] * (b[0] * c[1] - b[1] * c[0]);
            }
        }
        v / 6.0
    }

    /// Samples `n` points on the surface, area-weighted, with a deterministic LCG seeded by `seed`.
    /// Returns an empty vector when the mesh has no positive-area face.
    pub fn sample_surface(&self, n: usize, seed: u64) -> Vec<[f32; 3]> {
        let mut cdf = Vec::with_capacity(self.faces.len());
        let mut total = 0.0f64;
        for f in 0..self.faces.len() {
            total += self.face_area(f) as f64;
            cdf.push(total);
        }
        if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Vec::new();
        }
        let mut rng = Rng::new(seed);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = rng.uniform() * total;
            let f = cdf.partition_point(|&c| c <= r).min(cdf.len() - 1);
            let (mut u, mut v) = (rng.uniform() as f32, rng.uniform() as f32);
            if u + v > 1.0 {
                u = 1.0 - u;
                v = 1.0 - v;
            }
            if let Some([a, b, c]) = self.corners(f) {
                let ab = sub(b, a);
                let ac = sub(c, a);
                out.push([
                    a[0] + u * ab[0] + v * ac[0],
                    a[1] + u * ab[1] + v * ac[1],
                    a[2] + u * ab[2] + v * ac[2],
                ]);
            }
        }
        out
    }

    /// Per-vertex normals by area-weighted averaging of face normals (unit length or zero).
    pub fn compute_vertex_normals(&self) -> Vec<[f32; 3]> {
        let mut acc = vec![[0.0f32; 3]; self.vertices.len()];
        for f in 0..self.faces.len() {
            if let Some([a, b, c]) = self.corners(f) {
                let n = cross(sub(b, a), sub(c, a));
                for &i in &self.faces[f] {
                    for k in 0..3 {
                        acc[i as usize][k] += n[k];
                    }
                }
            }
        }
        for n in &mut acc {
            let l = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            if l > 0.0 {
                *n = [n[0] / l, n[1] / l, n[2] / l];
            }
        }
        acc
    }

    /// Number of undirected edges used by exactly `k` faces (for watertightness checks).
    pub fn edges_with_face_count(&self, k: usize) -> usize {
        let mut map = std::collections::HashMap::<(u32, u32), usize>::new();
        for f in &self.faces {
            for e in 0..3 {
                let (a, b) = (f[e], f[(e + 1) % 3]);
                *map.entry((a.min(b), a.max(b))).or_insert(0) += 1;
            }
        }
        map.values().filter(|&&c| c == k).count()
    }

    /// True when every edge is shared by exactly two faces (and there is at least one face).
    pub fn is_closed(&self) -> bool {
        let mut map = std::collections::HashMap::<(u32, u32), usize>::new();
        for f in &self.faces {
            for e in 0..3 {
                let (a, b) = (f[e], f[(e + 1) % 3]);
                *map.entry((a.min(b), a.max(b))).or_insert(0) += 1;
            }
        }
        !map.is_empty() && map.values().all(|&c| c == 2)
    }

    /// The vertices (with normals and colours) as a point cloud.
    pub fn to_point_cloud(&self) -> PointCloud {
        PointCloud {
            points: self.vertices.clone(),
            normals: self.normals.clone(),
            colours: self.colours.clone(),
        }
    }
}

impl PointCloud {
    /// A point cloud without normals or colours.
    pub fn new(points: Vec<[f32; 3]>) -> Self {
        PointCloud { points, normals: None, colours: None }
    }

    /// Axis-aligned bounding box of the points.
    pub fn bounding_box(&self) -> Option<([f32; 3], [f32; 3])> {
        bounding_box(&self.points)
    }

    /// Scales and translates in place into `[margin, 1 − margin]³`, keeping the aspect ratio.
    pub fn normalise_to_unit_cube(&mut self, margin: f32) {
        if let Some((c, s)) = unit_cube_transform(&self.points, margin) {
            apply_transform(&mut self.points, c, s);
        }
    }

    /// `n` points drawn uniformly with replacement (deterministic for a given `seed`).
    pub fn subsample(&self, n: usize, seed: u64) -> Vec<[f32; 3]> {
        if self.points.is_empty() {
            return Vec::new();
        }
        let mut rng = Rng::new(seed);
        let len = self.points.len() as u64;
        (0..n).map(|_| self.points[rng.below(len) as usize]).collect()
    }
}

/// Triangulates a polygon as a fan `(p0, p_i, p_{i+1})`, appending to `out`.
pub(crate) fn fan(poly: &[u32], out: &mut Vec<[u32; 3]>) {
    for i in 1..poly.len().saturating_sub(1) {
        out.push([poly[0], poly[i], poly[i + 1]]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Unit cube `[0,1]³` with outward-facing triangles.
    pub fn cube() -> TriMesh {
        let v = vec![
            [0., 0., 0.],
            [1., 0., 0.],
            [1., 1., 0.],
            [0., 1., 0.],
            [0., 0., 1.],
            [1., 0., 1.],
            [1., 1., 1.],
            [0., 1., 1.],
        ];
        let quads =
            [[0, 3, 2, 1], [4, 5, 6, 7], [0, 1, 5, 4], [2, 3, 7, 6], [1, 2, 6, 5], [0, 4, 7, 3]];
        let mut f = Vec::new();
        for q in quads {
            fan(&q, &mut f);
        }
        TriMesh::new(v, f).unwrap()
    }

    /// Icosphere of radius 1 subdivided `levels` times.
    pub fn icosphere(levels: usize) -> TriMesh {
        let t = (1.0 + 5f32.sqrt()) / 2.0;
        let mut v: Vec<[f32; 3]> = vec![
            [-1., t, 0.],
            [1., t, 0.],
            [-1., -t, 0.],
            [1., -t, 0.],
            [0., -1., t],
            [0., 1., t],
            [0., -1., -t],
            [0., 1., -t],
            [t, 0., -1.],
            [t, 0., 1.],
            [-t, 0., -1.],
            [-t, 0., 1.],
        ];
        let mut f: Vec<[u32; 3]> = vec![
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ];
        let norm = |p: [f32; 3]| {
            let l = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            [p[0] / l, p[1] / l, p[2] / l]
        };
        for p in &mut v {
            *p = norm(*p);
        }
        for _ in 0..levels {
            let mut mid = std::collections::HashMap::new();
            let mut nf = Vec::new();
            let mut get = |a: u32, b: u32, v: &mut Vec<[f32; 3]>| -> u32 {
                *mid.entry((a.min(b), a.max(b))).or_insert_with(|| {
                    let (p, q) = (v[a as usize], v[b as usize]);
                    v.push(norm([p[0] + q[0], p[1] + q[1], p[2] + q[2]]));
                    (v.len() - 1) as u32
                })
            };
            for [a, b, c] in f {
                let ab = get(a, b, &mut v);
                let bc = get(b, c, &mut v);
                let ca = get(c, a, &mut v);
                nf.extend([[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]);
            }
            f = nf;
        }
        TriMesh::new(v, f).unwrap()
    }

    #[test]
    fn cube_volume_area_closed() {
        let c = cube();
        assert!((c.signed_volume() - 1.0).abs() < 1e-6);
        assert!((c.surface_area() - 6.0).abs() < 1e-6);
        assert!(c.is_closed());
        let s = icosphere(2);
        assert!(s.is_closed());
        assert!(s.signed_volume() > 3.5 && s.signed_volume() < 4.19);
    }

    #[test]
    fn bad_face_index_rejected() {
        assert!(TriMesh::new(vec![[0.0; 3]; 2], vec![[0, 1, 2]]).is_err());
    }

    #[test]
    fn normalise_keeps_aspect() {
        let mut m = cube();
        for p in &mut m.vertices {
            p[0] *= 4.0;
        }
        m.normalise_to_unit_cube(0.1);
        let (lo, hi) = m.bounding_box().unwrap();
        assert!((lo[0] - 0.1).abs() < 1e-6 && (hi[0] - 0.9).abs() < 1e-6);
        assert!((hi[1] - lo[1] - 0.2).abs() < 1e-6);
        assert!((lo[1] + hi[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sampling_deterministic_and_on_surface() {
        let s = icosphere(3);
        let a = s.sample_surface(500, 7);
        let b = s.sample_surface(500, 7);
        let c = s.sample_surface(500, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        for p in &a {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            assert!(r > 0.98 && r <= 1.0001);
        }
        // Area weighting: a cube with one face scaled up gets more samples there.
        let cube = cube();
        let pts = cube.sample_surface(6000, 1);
        let bottom = pts.iter().filter(|p| p[2].abs() < 1e-6).count();
        assert!((800..1200).contains(&bottom), "{bottom}");
    }
}
