//! Marching cubes (Lorensen & Cline 1987) with 256-case edge and triangle tables.
//!
//! The tables are generated once at start-up from the cube's geometry instead of being
//! typed in: for each case, every cube face contributes segments between its crossed
//! edges, always separating the inside corners of an ambiguous face (the classic
//! Lorensen–Cline choice, made identically by both cubes sharing a face so the surface is
//! closed); the segments are chained into polygons and fanned into triangles.
//! Corner and edge numbering follow the usual convention (corner 0 at the origin,
//! 1 = +x, 3 = +y, 4 = +z; edges 0–3 bottom ring, 4–7 top ring, 8–11 vertical).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::mesh::TriMesh;
use crate::volume::Volume;

/// Corner offsets `(x, y, z)`.
pub const CORNERS: [[usize; 3]; 8] =
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]];

/// Edge endpoints (corner indices).
pub const EDGES: [[usize; 2]; 12] = [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 0],
    [4, 5],
    [5, 6],
    [6, 7],
    [7, 4],
    [0, 4],
    [1, 5],
    [2, 6],
    [3, 7],
];

/// Cube faces as corner cycles, counter-clockwise seen from outside the cube.
const FACES: [[usize; 4]; 6] = [
    [0, 3, 2, 1], // z = 0
    [4, 5, 6, 7], // z = 1
    [0, 1, 5, 4], // y = 0
    [2, 3, 7, 6], // y = 1
    [1, 2, 6, 5], // x = 1
    [0, 4, 7, 3], // x = 0
];

/// The generated tables.
#[derive(Debug)]
pub struct Tables {
    /// Bit `e` set when edge `e` is crossed in case `c` (`edge[c]`).
    pub edge: [u16; 256],
    /// Triangles (edge-index triples) for each case.
    pub tri: Vec<Vec<[u8; 3]>>,
}

fn edge_of(a: usize, b: usize) -> usize {
    EDGES.iter().position(|e| (e[0] == a && e[1] == b) || (e[0] == b && e[1] == a)).unwrap_or(0)
}

/// Faces (bit mask over [`FACES`]) that contain cube edge `e`.
fn faces_of_edge(e: usize) -> u8 {
    let [a, b] = EDGES[e];
    let mut m = 0;
    for (i, f) in FACES.iter().enumerate() {
        if f.contains(&a) && f.contains(&b) {
            m |= 1 << i;
        }
    }
    m
}

/// Ear-clips a polygon of edge indices, avoiding diagonals between two vertices on the
/// same cube face: such a diagonal would coincide with a segment of the neighbouring cube
/// and make the surface non-manifold.
fn triangulate(mut poly: Vec<u8>, out: &mut Vec<[u8; 3]>) {
    while poly.len() > 3 {
        let n = poly.len();
        let ok = |i: usize| {
            let (a, c) = (poly[i], poly[(i + 2) % n]);
            faces_of_edge(a as usize) & faces_of_edge(c as usize) == 0
        };
        let i = (0..n).find(|&i| ok(i)).unwrap_or(0);
        out.push([poly[i], poly[(i + 1) % n], poly[(i + 2) % n]]);
        poly.remove((i + 1) % n);
    }
    if poly.len() == 3 {
        out.push([poly[0], poly[1], poly[2]]);
    }
}

fn build_tables() -> Tables {
    let mut edge = [0u16; 256];
    let mut tri = Vec::with_capacity(256);
    for (case, edge_bits) in edge.iter_mut().enumerate() {
        let inside = |c: usize| case >> c & 1 == 1;
        for (e, [a, b]) in EDGES.iter().enumerate() {
            if inside(*a) != inside(*b) {
                *edge_bits |= 1 << e;
            }
        }
        // next[e] = the crossed edge following e around the polygon.
        let mut next = [usize::MAX; 12];
        for f in FACES {
            // Crossings in CCW order: (edge, entering-inside?).
            let mut cross = Vec::new();
            for k in 0..4 {
                let (a, b) = (f[k], f[(k + 1) % 4]);
                if inside(a) != inside(b) {
                    cross.push((edge_of(a, b), inside(b)));
                }
            }
            // Each entering crossing is joined to the next leaving one: the inside arc
            // between them is cut off, which separates inside corners on ambiguous faces.
            for i in 0..cross.len() {
                if cross[i].1 {
                    let j = (i + 1) % cross.len();
                    next[cross[i].0] = cross[j].0;
                }
            }
        }
        let mut tris = Vec::new();
        let mut used = [false; 12];
        for start in 0..12 {
            if next[start] == usize::MAX || used[start] {
                continue;
            }
            let mut poly = Vec::new();
            let mut e = start;
            while !used[e] && e != usize::MAX {
                used[e] = true;
                poly.push(e as u8);
                e = next[e];
            }
            triangulate(poly, &mut tris);
        }
        tri.push(tris);
    }
    Tables { edge, tri }
}

/// The 256-case tables (built on first use).
pub fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(build_tables)
}

/// Extracts the iso-surface `value = iso` of `vol`. Voxels with `value > iso` are inside;
/// triangles face outwards (towards lower values). Vertices are interpolated linearly on
/// grid edges and shared between neighbouring cubes, so the mesh is indexed; positions
/// are voxel coordinates times `spacing` (voxel `(0,0,0)` at the origin). NaN counts as
/// outside. Surfaces that reach the volume border are left open there; pad the volume
/// with an outside value ([`Volume::pad`]) for a closed mesh (positions then shift by one
/// voxel).
pub fn marching_cubes(vol: &Volume<f32>, iso: f32) -> TriMesh {
    let t = tables();
    let [dx, dy, dz] = vol.dims;
    let mut mesh = TriMesh::default();
    if dx < 2 || dy < 2 || dz < 2 || vol.data.len() != dx * dy * dz {
        return mesh;
    }
    let at = |x: usize, y: usize, z: usize| vol.data[x + dx * (y + dy * z)];
    let sp = vol.spacing;
    // Global edge key: (corner linear index, axis).
    let mut cache: HashMap<(usize, u8), u32> = HashMap::new();
    let mut ids = [0u32; 12];
    for z in 0..dz - 1 {
        for y in 0..dy - 1 {
            for x in 0..dx - 1 {
                let mut vals = [0f32; 8];
                let mut case = 0usize;
                for (c, o) in CORNERS.iter().enumerate() {
                    vals[c] = at(x + o[0], y + o[1], z + o[2]);
                    if vals[c] > iso {
                        case |= 1 << c;
                    }
                }
                let em = t.edge[case];
                if em == 0 {
                    continue;
                }
                for (e, [a, b]) in EDGES.iter().enumerate() {
                    if em >> e & 1 == 0 {
                        continue;
                    }
                    // Canonical endpoint order: lower corner first along the edge's axis.
                    let (ca, cb) = {
                        let (pa, pb) = (CORNERS[*a], CORNERS[*b]);
                        if pa <= pb {
                            (*a, *b)
                        } else {
                            (*b, *a)
                        }
                    };
                    let (pa, pb) = (CORNERS[ca], CORNERS[cb]);
                    let axis = (0..3).find(|&k| pa[k] != pb[k]).unwrap_or(0) as u8;
                    let gx = [x + pa[0], y + pa[1], z + pa[2]];
                    let key = (gx[0] + dx * (gx[1] + dy * gx[2]), axis);
                    let id = *cache.entry(key).or_insert_with(|| {
                        let (va, vb) = (vals[ca], vals[cb]);
                        let d = vb - va;
                        let s = if d != 0.0 && d.is_finite() {
                            ((iso - va) / d).clamp(0.0, 1.0)
                        } else {
                            0.5
                        };
                        let mut p = [0f32; 3];
                        for k in 0..3 {
                            let g = gx[k] as f32 + if k == axis as usize { s } else { 0.0 };
                            p[k] = g * sp[k] as f32;
                        }
                        mesh.vertices.push(p);
                        (mesh.vertices.len() - 1) as u32
                    });
                    ids[e] = id;
                }
                for tr in &t.tri[case] {
                    mesh.faces.push([
                        ids[tr[0] as usize],
                        ids[tr[1] as usize],
                        ids[tr[2] as usize],
                    ]);
                }
            }
        }
    }
    mesh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sphere(n: usize, r: f32, spacing: [f64; 3]) -> Volume<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        let mut v = Volume::zeros([n, n, n], spacing).unwrap();
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let p = [
                        (x as f32 - c) * spacing[0] as f32,
                        (y as f32 - c) * spacing[1] as f32,
                        (z as f32 - c) * spacing[2] as f32,
                    ];
                    let d = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
                    v.set(x, y, z, r - d);
                }
            }
        }
        v
    }

    #[test]
    fn tables_are_consistent() {
        let t = tables();
        assert_eq!(t.edge[0], 0);
        assert_eq!(t.edge[255], 0);
        assert_eq!(t.edge[1], 0b1_0000_1001);
        assert_eq!(t.tri[1].len(), 1);
        // Complementary cases cross the same edges and have the same triangle count
        // except on ambiguous configurations.
        for c in 0..256 {
            assert_eq!(t.edge[c], t.edge[255 - c]);
            let used: u16 = t.tri[c].iter().flatten().fold(0, |m, &e| m | 1 << e);
            assert_eq!(used, t.edge[c], "case {c}");
        }
        let max = t.tri.iter().map(Vec::len).max().unwrap();
        assert!(max <= 6, "{max}");
    }

    #[test]
    fn sphere_closed_accurate_volume() {
        let r = 10.0;
        let v = sphere(28, r, [1.0; 3]);
        let m = marching_cubes(&v, 0.0);
        assert!(m.is_closed());
        let c = 13.5;
        for p in &m.vertices {
            let d = ((p[0] - c).powi(2) + (p[1] - c).powi(2) + (p[2] - c).powi(2)).sqrt();
            assert!((d - r).abs() < 0.5, "{d}");
        }
        let vol = m.signed_volume();
        let exact = 4.0 / 3.0 * std::f64::consts::PI * (r as f64).powi(3);
        assert!(((vol - exact) / exact).abs() < 0.03, "{vol} vs {exact}");
    }

    #[test]
    fn anisotropic_spacing_and_random_field_closed() {
        let v = sphere(30, 6.0, [0.5, 1.0, 0.75]);
        let m = marching_cubes(&v, 0.0);
        assert!(m.is_closed());
        let exact = 4.0 / 3.0 * std::f64::consts::PI * 216.0;
        assert!(((m.signed_volume() - exact) / exact).abs() < 0.05);
        // Noise with many ambiguous cases, padded with outside values: still closed.
        let mut rng = unet_core::rng::Rng::new(3);
        let mut w = Volume::<f32>::zeros([12, 12, 12], [1.0; 3]).unwrap();
        for z in 1..11 {
            for y in 1..11 {
                for x in 1..11 {
                    w.set(x, y, z, rng.uniform() as f32 - 0.5 + 0.1);
                }
            }
        }
        let m = marching_cubes(&w, 0.0);
        assert!(m.faces.len() > 100);
        assert!(m.is_closed());
        assert!(m.signed_volume() > 0.0);
    }
}
