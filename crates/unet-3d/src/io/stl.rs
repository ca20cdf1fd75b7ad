//! STL meshes, ASCII and binary. A file whose size is exactly `84 + 50·n` (with `n` the
//! count at byte 80) is binary, whatever its first bytes say; otherwise it must be ASCII
//! (`solid` … `endsolid`). Identical vertices are merged so the mesh is indexed.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{read_file, write_atomic, Error3d, Result};
use crate::mesh::{fan, TriMesh};

/// Reads an STL file (ASCII or binary).
pub fn read_stl(path: impl AsRef<Path>) -> Result<TriMesh> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_stl(&bytes, path)
}

/// Merges bit-identical vertices (treating −0 as +0).
#[derive(Default)]
struct Welder {
    map: HashMap<[u32; 3], u32>,
    vertices: Vec<[f32; 3]>,
}

impl Welder {
    fn add(&mut self, p: [f32; 3]) -> u32 {
        let p = p.map(|c| if c == 0.0 { 0.0 } else { c });
        let key = p.map(f32::to_bits);
        let n = self.vertices.len() as u32;
        *self.map.entry(key).or_insert_with(|| {
            self.vertices.push(p);
            n
        })
    }
}

/// True when `bytes` has the exact size of a binary STL with the count it declares.
pub fn is_binary_stl(bytes: &[u8]) -> bool {
    if bytes.len() < 84 {
        return false;
    }
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
    bytes.len() as u64 == 84 + 50 * n
}

/// Parses STL bytes; `path` is only used in error messages.
pub fn parse_stl(bytes: &[u8], path: &Path) -> Result<TriMesh> {
    let mut w = Welder::default();
    let mut faces = Vec::new();
    if is_binary_stl(bytes) {
        for rec in bytes[84..].chunks_exact(50) {
            let mut tri = [0u32; 3];
            for (k, t) in tri.iter_mut().enumerate() {
                let off = 12 + 12 * k;
                let p = [0, 1, 2].map(|c| {
                    let o = off + 4 * c;
                    f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]])
                });
                if p.iter().any(|c| !c.is_finite()) {
                    return Err(Error3d::format(path, "non-finite vertex coordinate"));
                }
                *t = w.add(p);
            }
            faces.push(tri);
        }
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Error3d::format(path, "neither binary STL (size is not 84 + 50·count) nor ASCII text")
        })?;
        let mut toks = text.split_whitespace();
        if toks.next() != Some("solid") {
            return Err(Error3d::format(
                path,
                "bad magic: not `solid` and size is not 84 + 50·count",
            ));
        }
        let mut poly: Vec<u32> = Vec::new();
        let mut in_facet = false;
        let mut ended = false;
        while let Some(t) = toks.next() {
            match t {
                "facet" => {
                    if in_facet {
                        return Err(Error3d::format(path, "nested `facet`"));
                    }
                    in_facet = true;
                    poly.clear();
                }
                "vertex" => {
                    if !in_facet {
                        return Err(Error3d::format(path, "`vertex` outside a facet"));
                    }
                    let mut p = [0f32; 3];
                    for c in &mut p {
                        let tok = toks.next().unwrap_or("");
                        *c = tok.parse().map_err(|_| {
                            Error3d::format(path, format!("bad vertex coordinate `{tok}`"))
                        })?;
                    }
                    poly.push(w.add(p));
                }
                "endfacet" => {
                    if !in_facet || poly.len() < 3 {
                        return Err(Error3d::format(
                            path,
                            format!("facet with {} vertices", poly.len()),
                        ));
                    }
                    fan(&poly, &mut faces);
                    in_facet = false;
                }
                "endsolid" => {
                    if in_facet {
                        return Err(Error3d::format(path, "`endsolid` inside a facet"));
                    }
                    ended = true;
                    break;
                }
                _ => {}
            }
        }
        if !ended {
            return Err(Error3d::format(path, "truncated: no `endsolid`"));
        }
    }
    Ok(TriMesh { vertices: w.vertices, faces, normals: None, colours: None })
}

fn face_normal(m: &TriMesh, f: &[u32; 3]) -> [f32; 3] {
    let [a, b, c] = f.map(|i| m.vertices[i as usize]);
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    let l = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if l > 0.0 {
        n.map(|x| x / l)
    } else {
        [0.0; 3]
    }
}

/// Serialises a mesh as binary STL.
pub fn stl_binary_bytes(mesh: &TriMesh) -> Result<Vec<u8>> {
    mesh.validate()?;
    let mut out = vec![0u8; 80];
    out[..14].copy_from_slice(b"binary unet-3d");
    out.extend_from_slice(&(mesh.faces.len() as u32).to_le_bytes());
    for f in &mesh.faces {
        for c in face_normal(mesh, f) {
            out.extend_from_slice(&c.to_le_bytes());
        }
        for &i in f {
            for c in mesh.vertices[i as usize] {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    Ok(out)
}

/// Serialises a mesh as ASCII STL.
pub fn stl_ascii_bytes(mesh: &TriMesh) -> Result<Vec<u8>> {
    mesh.validate()?;
    let mut s = String::from("solid unet-3d\n");
    for f in &mesh.faces {
        let n = face_normal(mesh, f);
        s.push_str(&format!("facet normal {} {} {}\n outer loop\n", n[0], n[1], n[2]));
        for &i in f {
            let v = mesh.vertices[i as usize];
            s.push_str(&format!("  vertex {} {} {}\n", v[0], v[1], v[2]));
        }
        s.push_str(" endloop\nendfacet\n");
    }
    s.push_str("endsolid unet-3d\n");
    Ok(s.into_bytes())
}

/// Writes a mesh as STL (binary or ASCII) atomically.
pub fn write_stl(path: impl AsRef<Path>, mesh: &TriMesh, binary: bool) -> Result<()> {
    let bytes = if binary { stl_binary_bytes(mesh)? } else { stl_ascii_bytes(mesh)? };
    write_atomic(path.as_ref(), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::tests::cube;

    #[test]
    fn roundtrip_merges_vertices() {
        let dir = tempfile::tempdir().unwrap();
        for binary in [true, false] {
            let p = dir.path().join(format!("c{binary}.stl"));
            write_stl(&p, &cube(), binary).unwrap();
            let m = read_stl(&p).unwrap();
            assert_eq!(m.vertices.len(), 8);
            assert_eq!(m.faces.len(), 12);
            assert!(m.is_closed());
            assert!((m.signed_volume() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn binary_starting_with_solid() {
        let mut b = stl_binary_bytes(&cube()).unwrap();
        b[..5].copy_from_slice(b"solid");
        assert_eq!(parse_stl(&b, Path::new("s.stl")).unwrap().faces.len(), 12);
    }

    #[test]
    fn corrupt() {
        let p = Path::new("x.stl");
        let b = stl_binary_bytes(&cube()).unwrap();
        // Truncated binary (size no longer matches, not text).
        assert!(matches!(parse_stl(&b[..b.len() - 7], p), Err(Error3d::Format { .. })));
        // Wrong count.
        let mut c = b.clone();
        c[80] = 13;
        assert!(parse_stl(&c, p).is_err());
        let a = String::from_utf8(stl_ascii_bytes(&cube()).unwrap()).unwrap();
        let cut = a.rfind("endfacet").unwrap();
        assert!(parse_stl(&a.as_bytes()[..cut], p).is_err());
        assert!(parse_stl(a.replacen("vertex 0", "vertex q", 1).as_bytes(), p).is_err());
        assert!(parse_stl(b"hello", p).is_err());
    }
}
