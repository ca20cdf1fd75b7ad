//! PLY meshes and point clouds: reading through `ply-rs` (ASCII, binary little and big
//! endian), writing by hand (binary little endian by default, or ASCII), atomically.

use std::path::Path;

use ply_rs::parser::Parser;
use ply_rs::ply::{Property, PropertyAccess};

use crate::error::{read_maybe_gz, write_atomic, Error3d, Result};
use crate::mesh::{fan, PointCloud, TriMesh};

/// Encoding of a written PLY file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlyFormat {
    /// `binary_little_endian 1.0` (the default).
    #[default]
    BinaryLittleEndian,
    /// `ascii 1.0`.
    Ascii,
}

/// One element as collected by the parser: only the properties we use.
#[derive(Debug, Default)]
struct Elem {
    xyz: [f64; 3],
    normal: [f64; 3],
    rgb: [f64; 3],
    /// Colour channels were stored as floats in `[0, 1]`.
    rgb_float: bool,
    indices: Option<Vec<i64>>,
}

fn scalar(p: &Property) -> Option<(f64, bool)> {
    Some(match *p {
        Property::Char(v) => (v as f64, false),
        Property::UChar(v) => (v as f64, false),
        Property::Short(v) => (v as f64, false),
        Property::UShort(v) => (v as f64, false),
        Property::Int(v) => (v as f64, false),
        Property::UInt(v) => (v as f64, false),
        Property::Float(v) => (v as f64, true),
        Property::Double(v) => (v, true),
        _ => return None,
    })
}

fn list(p: Property) -> Option<Vec<i64>> {
    Some(match p {
        Property::ListChar(v) => v.into_iter().map(i64::from).collect(),
        Property::ListUChar(v) => v.into_iter().map(i64::from).collect(),
        Property::ListShort(v) => v.into_iter().map(i64::from).collect(),
        Property::ListUShort(v) => v.into_iter().map(i64::from).collect(),
        Property::ListInt(v) => v.into_iter().map(i64::from).collect(),
        Property::ListUInt(v) => v.into_iter().map(i64::from).collect(),
        // Float index lists are invalid: mark with an impossible index.
        Property::ListFloat(v) => v.into_iter().map(|x| x as i64).collect(),
        Property::ListDouble(v) => v.into_iter().map(|x| x as i64).collect(),
        _ => return None,
    })
}

impl PropertyAccess for Elem {
    fn new() -> Self {
        Elem::default()
    }

    fn set_property(&mut self, key: String, property: Property) {
        let slot = match key.as_str() {
            "x" => Some((0, 0)),
            "y" => Some((0, 1)),
            "z" => Some((0, 2)),
            "nx" => Some((1, 0)),
            "ny" => Some((1, 1)),
            "nz" => Some((1, 2)),
            "red" | "diffuse_red" => Some((2, 0)),
            "green" | "diffuse_green" => Some((2, 1)),
            "blue" | "diffuse_blue" => Some((2, 2)),
            "vertex_indices" | "vertex_index" => {
                self.indices = list(property);
                return;
            }
            _ => None,
        };
        if let (Some((which, k)), Some((v, is_float))) = (slot, scalar(&property)) {
            match which {
                0 => self.xyz[k] = v,
                1 => self.normal[k] = v,
                _ => {
                    self.rgb[k] = v;
                    self.rgb_float = is_float;
                }
            }
        }
    }
}

fn colour_byte(v: f64, is_float: bool) -> u8 {
    let v = if is_float { v * 255.0 } else { v };
    v.round().clamp(0.0, 255.0) as u8
}

/// Reads a PLY file (optionally gzipped) as a mesh; a file without a face element gives a
/// mesh with no faces. Polygons are fan-triangulated; indices are validated.
pub fn read_ply(path: impl AsRef<Path>) -> Result<TriMesh> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_ply(&bytes, path)
}

/// Reads the vertices (with normals and colours when present) of a PLY file as a point cloud.
pub fn read_ply_points(path: impl AsRef<Path>) -> Result<PointCloud> {
    Ok(read_ply(path)?.to_point_cloud())
}

/// Parses PLY bytes; `path` is only used in error messages.
pub fn parse_ply(bytes: &[u8], path: &Path) -> Result<TriMesh> {
    if !bytes.starts_with(b"ply") {
        return Err(Error3d::format(path, "bad magic (expected `ply`)"));
    }
    check_header(bytes, path)?;
    let parser = Parser::<Elem>::new();
    let mut src = bytes;
    let ply = parser
        .read_ply(&mut src)
        .map_err(|e| Error3d::format(path, format!("PLY parse error: {e}")))?;
    let vdef = ply
        .header
        .elements
        .get("vertex")
        .ok_or_else(|| Error3d::format(path, "no `vertex` element"))?;
    let has = |n: &str| vdef.properties.contains_key(n);
    if !(has("x") && has("y") && has("z")) {
        return Err(Error3d::format(path, "vertex element lacks x/y/z"));
    }
    let has_normals = has("nx") && has("ny") && has("nz");
    let has_colours = (has("red") && has("green") && has("blue"))
        || (has("diffuse_red") && has("diffuse_green") && has("diffuse_blue"));
    let empty = Vec::new();
    let verts = ply.payload.get("vertex").unwrap_or(&empty);
    if verts.len() != vdef.count {
        return Err(Error3d::format(
            path,
            format!("{} vertices read, {} declared", verts.len(), vdef.count),
        ));
    }
    let vertices: Vec<[f32; 3]> = verts.iter().map(|e| e.xyz.map(|c| c as f32)).collect();
    let normals = has_normals.then(|| verts.iter().map(|e| e.normal.map(|c| c as f32)).collect());
    let colours = has_colours
        .then(|| verts.iter().map(|e| e.rgb.map(|c| colour_byte(c, e.rgb_float))).collect());
    let mut faces = Vec::new();
    if let Some(fdef) = ply.header.elements.get("face") {
        let fl = ply.payload.get("face").unwrap_or(&empty);
        if fl.len() != fdef.count {
            return Err(Error3d::format(
                path,
                format!("{} faces read, {} declared", fl.len(), fdef.count),
            ));
        }
        if fdef.count > 0
            && !(fdef.properties.contains_key("vertex_indices")
                || fdef.properties.contains_key("vertex_index"))
        {
            return Err(Error3d::format(path, "face element lacks vertex_indices/vertex_index"));
        }
        let n = vertices.len() as i64;
        let mut poly = Vec::new();
        for (fi, f) in fl.iter().enumerate() {
            let idx = f.indices.as_deref().unwrap_or(&[]);
            if idx.len() < 3 {
                return Err(Error3d::format(
                    path,
                    format!("face {fi} has {} vertices (< 3)", idx.len()),
                ));
            }
            poly.clear();
            for &i in idx {
                if i < 0 || i >= n {
                    return Err(Error3d::format(
                        path,
                        format!("face {fi}: vertex index {i} out of range 0..{n}"),
                    ));
                }
                poly.push(i as u32);
            }
            fan(&poly, &mut faces);
        }
    }
    Ok(TriMesh { vertices, faces, normals, colours })
}

/// Rejects header numbers that `ply-rs` would panic on (integers beyond `u64`) and
/// element counts larger than the file (which would make it loop or allocate needlessly).
fn check_header(bytes: &[u8], path: &Path) -> Result<()> {
    let end = bytes
        .windows(10)
        .position(|w| w == b"end_header")
        .ok_or_else(|| Error3d::format(path, "no `end_header` line"))?;
    let header = String::from_utf8_lossy(&bytes[..end]);
    for line in header.lines() {
        let mut toks = line.split_whitespace();
        match toks.next() {
            Some("format") => {
                for run in line.split(|c: char| !c.is_ascii_digit()).filter(|r| !r.is_empty()) {
                    if run.parse::<u64>().is_err() {
                        return Err(Error3d::format(path, format!("bad number in `{line}`")));
                    }
                }
            }
            Some("element") => {
                let count = toks.nth(1).unwrap_or("");
                match count.parse::<u64>() {
                    Ok(n) if n <= bytes.len() as u64 => {}
                    _ => {
                        return Err(Error3d::format(path, format!("bad element count in `{line}`")))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Serialises a mesh (faces may be empty) to PLY bytes.
pub fn ply_bytes(mesh: &TriMesh, format: PlyFormat) -> Result<Vec<u8>> {
    mesh.validate()?;
    let mut out = Vec::new();
    let fmt = match format {
        PlyFormat::Ascii => "ascii",
        PlyFormat::BinaryLittleEndian => "binary_little_endian",
    };
    let mut h = format!(
        "ply\nformat {fmt} 1.0\ncomment written by unet-3d\nelement vertex {}\nproperty float x\nproperty float y\nproperty float z\n",
        mesh.vertices.len()
    );
    if mesh.normals.is_some() {
        h.push_str("property float nx\nproperty float ny\nproperty float nz\n");
    }
    if mesh.colours.is_some() {
        h.push_str("property uchar red\nproperty uchar green\nproperty uchar blue\n");
    }
    if !mesh.faces.is_empty() {
        h.push_str(&format!(
            "element face {}\nproperty list uchar int vertex_indices\n",
            mesh.faces.len()
        ));
    }
    h.push_str("end_header\n");
    out.extend_from_slice(h.as_bytes());
    for (i, v) in mesh.vertices.iter().enumerate() {
        let n = mesh.normals.as_ref().and_then(|n| n.get(i));
        let c = mesh.colours.as_ref().and_then(|c| c.get(i));
        match format {
            PlyFormat::Ascii => {
                let mut line = format!("{} {} {}", v[0], v[1], v[2]);
                if let Some(n) = n {
                    line.push_str(&format!(" {} {} {}", n[0], n[1], n[2]));
                }
                if let Some(c) = c {
                    line.push_str(&format!(" {} {} {}", c[0], c[1], c[2]));
                }
                line.push('\n');
                out.extend_from_slice(line.as_bytes());
            }
            PlyFormat::BinaryLittleEndian => {
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                if let Some(n) = n {
                    for x in n {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
                if let Some(c) = c {
                    out.extend_from_slice(c);
                }
            }
        }
    }
    for f in &mesh.faces {
        match format {
            PlyFormat::Ascii => {
                out.extend_from_slice(format!("3 {} {} {}\n", f[0], f[1], f[2]).as_bytes())
            }
            PlyFormat::BinaryLittleEndian => {
                out.push(3);
                for i in f {
                    out.extend_from_slice(&(*i as i32).to_le_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// Writes a mesh as PLY atomically (temporary file in the same folder, then rename).
pub fn write_ply(path: impl AsRef<Path>, mesh: &TriMesh, format: PlyFormat) -> Result<()> {
    write_atomic(path.as_ref(), &ply_bytes(mesh, format)?)
}

/// Writes a point cloud as PLY atomically.
pub fn write_ply_points(
    path: impl AsRef<Path>,
    cloud: &PointCloud,
    format: PlyFormat,
) -> Result<()> {
    let mesh = TriMesh {
        vertices: cloud.points.clone(),
        faces: Vec::new(),
        normals: cloud.normals.clone(),
        colours: cloud.colours.clone(),
    };
    write_ply(path, &mesh, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::tests::cube;

    #[test]
    fn roundtrip_binary_and_ascii() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = cube();
        m.normals = Some(m.compute_vertex_normals());
        m.colours = Some((0..8).map(|i| [i as u8 * 30, 7, 255]).collect());
        for fmt in [PlyFormat::BinaryLittleEndian, PlyFormat::Ascii] {
            let p = dir.path().join(format!("c{fmt:?}.ply"));
            write_ply(&p, &m, fmt).unwrap();
            let r = read_ply(&p).unwrap();
            assert_eq!(r, m);
        }
        let pc = PointCloud::new(vec![[1.5, -2.0, 3.25]; 3]);
        let p = dir.path().join("pc.ply");
        write_ply_points(&p, &pc, PlyFormat::default()).unwrap();
        assert_eq!(read_ply_points(&p).unwrap(), pc);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn big_endian_quads_and_float_colours() {
        let mut b = b"ply\nformat binary_big_endian 1.0\nelement vertex 4\nproperty double x\nproperty double y\nproperty double z\nproperty float red\nproperty float green\nproperty float blue\nelement face 1\nproperty list uchar uint vertex_index\nend_header\n".to_vec();
        let pts = [[0., 0., 0.], [1., 0., 0.], [1., 1., 0.], [0., 1., 0.]];
        for p in pts {
            for c in p {
                b.extend_from_slice(&f64::to_be_bytes(c));
            }
            for c in [1.0f32, 0.5, 0.0] {
                b.extend_from_slice(&c.to_be_bytes());
            }
        }
        b.push(4);
        for i in [0u32, 1, 2, 3] {
            b.extend_from_slice(&i.to_be_bytes());
        }
        let m = parse_ply(&b, Path::new("q.ply")).unwrap();
        assert_eq!(m.faces, vec![[0, 1, 2], [0, 2, 3]]);
        assert_eq!(m.colours.unwrap()[0], [255, 128, 0]);
        assert!(m.normals.is_none());
    }

    #[test]
    fn corrupt_files() {
        let p = Path::new("bad.ply");
        let good = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n";
        assert!(parse_ply(good.as_bytes(), p).is_ok());
        for bad in [
            good.replace("3 0 1 2", "3 0 1 7"),         // index out of range
            good.replace("ply\n", "plx\n"),             // bad magic
            good.replace("\n0 1 0\n3 0 1 2\n", "\n"),   // truncated
            good.replace("property float z\n", ""),     // no z
            good.replace("format ascii", "format foo"), // unknown format
            good.replace("vertex 3", "vertex 99999999999999999999999"), // ply-rs would panic
            good.replace("1.0", "1.99999999999999999999999"),
            good.replace("face 1", "face 100000"), // count larger than the file
        ] {
            let e = parse_ply(bad.as_bytes(), p).unwrap_err();
            assert!(matches!(e, Error3d::Format { .. }), "{e}");
            assert!(e.to_string().starts_with("bad.ply: "));
        }
        // Truncated binary payload.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.ply");
        write_ply(&f, &cube(), PlyFormat::BinaryLittleEndian).unwrap();
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 5]).unwrap();
        assert!(matches!(read_ply(&f), Err(Error3d::Format { .. })));
    }
}
