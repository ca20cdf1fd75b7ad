//! Object File Format (OFF) meshes, including the `C`, `N` and `ST` header prefixes
//! (`COFF`, `NOFF`, `CNOFF`, `STOFF`, …), `#` comments and counts on the header line.

use std::path::Path;

use crate::error::{read_maybe_gz, write_atomic, Error3d, Result};
use crate::mesh::{fan, TriMesh};

/// Reads an OFF file (optionally gzipped). Polygons are fan-triangulated.
pub fn read_off(path: impl AsRef<Path>) -> Result<TriMesh> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_off(&bytes, path)
}

fn parse_num<T: std::str::FromStr>(tok: &str, path: &Path, what: &str) -> Result<T> {
    tok.parse::<T>().map_err(|_| Error3d::format(path, format!("bad {what} `{tok}`")))
}

/// Parses OFF bytes; `path` is only used in error messages.
pub fn parse_off(bytes: &[u8], path: &Path) -> Result<TriMesh> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error3d::format(path, "not UTF-8 text (binary OFF is not supported)"))?;
    // Non-empty lines with comments stripped.
    let mut lines =
        text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty());
    let first = lines.next().ok_or_else(|| Error3d::format(path, "empty file"))?;
    let mut toks: Vec<&str> = first.split_whitespace().collect();
    let (mut colour, mut normal, mut texture) = (false, false, false);
    if let Some(kw) = toks.first().copied().filter(|t| t.ends_with("OFF")) {
        let mut prefix = &kw[..kw.len() - 3];
        if let Some(rest) = prefix.strip_prefix("ST") {
            texture = true;
            prefix = rest;
        }
        if let Some(rest) = prefix.strip_prefix('C') {
            colour = true;
            prefix = rest;
        }
        if let Some(rest) = prefix.strip_prefix('N') {
            normal = true;
            prefix = rest;
        }
        if !prefix.is_empty() {
            return Err(Error3d::format(path, format!("unsupported OFF variant `{kw}`")));
        }
        toks.remove(0);
        if toks.first() == Some(&"BINARY") {
            return Err(Error3d::format(path, "binary OFF is not supported"));
        }
    } else if toks.first().is_none_or(|t| t.parse::<usize>().is_err()) {
        return Err(Error3d::format(path, "bad magic (expected OFF header)"));
    }
    let counts_line;
    if toks.is_empty() {
        counts_line = lines.next().ok_or_else(|| Error3d::format(path, "missing counts line"))?;
        toks = counts_line.split_whitespace().collect();
    }
    if toks.len() < 2 {
        return Err(Error3d::format(path, "counts line needs `nv nf [ne]`"));
    }
    let nv: usize = parse_num(toks[0], path, "vertex count")?;
    let nf: usize = parse_num(toks[1], path, "face count")?;
    // Guard against absurd counts before allocating.
    if nv > bytes.len() || nf > bytes.len() {
        return Err(Error3d::format(path, "counts exceed file size"));
    }
    let mut vertices = Vec::with_capacity(nv);
    let mut normals = Vec::new();
    let mut colours = Vec::new();
    for i in 0..nv {
        let l = lines
            .next()
            .ok_or_else(|| Error3d::format(path, format!("truncated: {i} of {nv} vertices")))?;
        let vals: Vec<f64> = l
            .split_whitespace()
            .map(|t| parse_num::<f64>(t, path, "vertex coordinate"))
            .collect::<Result<_>>()?;
        if vals.len() < 3 {
            return Err(Error3d::format(path, format!("vertex {i} has < 3 coordinates")));
        }
        vertices.push([vals[0] as f32, vals[1] as f32, vals[2] as f32]);
        let mut k = 3;
        if normal {
            if vals.len() < 6 {
                return Err(Error3d::format(path, format!("vertex {i} lacks a normal")));
            }
            normals.push([vals[3] as f32, vals[4] as f32, vals[5] as f32]);
            k = 6;
        }
        if colour {
            let rest = &vals[k..];
            let rest = if texture && rest.len() >= 2 { &rest[..rest.len() - 2] } else { rest };
            if rest.len() < 3 {
                return Err(Error3d::format(path, format!("vertex {i} lacks a colour")));
            }
            let bytes_scale = rest.iter().take(3).any(|&c| c > 1.0);
            colours.push([0, 1, 2].map(|c| {
                let v = if bytes_scale { rest[c] } else { rest[c] * 255.0 };
                v.round().clamp(0.0, 255.0) as u8
            }));
        }
    }
    let mut faces = Vec::with_capacity(nf);
    let mut poly = Vec::new();
    for fi in 0..nf {
        let l = lines
            .next()
            .ok_or_else(|| Error3d::format(path, format!("truncated: {fi} of {nf} faces")))?;
        let mut it = l.split_whitespace();
        let k: usize = parse_num(it.next().unwrap_or(""), path, "face size")?;
        if k < 3 {
            return Err(Error3d::format(path, format!("face {fi} has {k} vertices (< 3)")));
        }
        poly.clear();
        for _ in 0..k {
            let t = it
                .next()
                .ok_or_else(|| Error3d::format(path, format!("face {fi} has too few indices")))?;
            let idx: i64 = parse_num(t, path, "vertex index")?;
            if idx < 0 || idx as usize >= nv {
                return Err(Error3d::format(
                    path,
                    format!("face {fi}: vertex index {idx} out of range 0..{nv}"),
                ));
            }
            poly.push(idx as u32);
        }
        fan(&poly, &mut faces);
    }
    Ok(TriMesh {
        vertices,
        faces,
        normals: normal.then_some(normals),
        colours: colour.then_some(colours),
    })
}

/// Serialises a mesh as ASCII OFF (`OFF`, positions and triangles only).
pub fn off_bytes(mesh: &TriMesh) -> Vec<u8> {
    let mut s = format!("OFF\n{} {} 0\n", mesh.vertices.len(), mesh.faces.len());
    for v in &mesh.vertices {
        s.push_str(&format!("{} {} {}\n", v[0], v[1], v[2]));
    }
    for f in &mesh.faces {
        s.push_str(&format!("3 {} {} {}\n", f[0], f[1], f[2]));
    }
    s.into_bytes()
}

/// Writes a mesh as ASCII OFF atomically.
pub fn write_off(path: impl AsRef<Path>, mesh: &TriMesh) -> Result<()> {
    mesh.validate()?;
    write_atomic(path.as_ref(), &off_bytes(mesh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::tests::cube;

    #[test]
    fn roundtrip_and_variants() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.off");
        write_off(&p, &cube()).unwrap();
        assert_eq!(read_off(&p).unwrap(), cube());
        let t = "# comment\nCOFF 4 2 0 # counts on header line\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n1 1 0 0 0 255 255\n0 1 0 1 1 1 255\n\n4 0 1 2 3 0.5 0.5 0.5\n3 0 1 2\n";
        let m = parse_off(t.as_bytes(), Path::new("c.off")).unwrap();
        assert_eq!(m.faces.len(), 3);
        assert_eq!(m.colours.as_ref().unwrap()[1], [0, 255, 0]);
        let n = "NOFF\n3 1 0\n0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n3 0 1 2\n";
        let m = parse_off(n.as_bytes(), Path::new("n.off")).unwrap();
        assert_eq!(m.normals.unwrap()[2], [0.0, 0.0, 1.0]);
    }

    #[test]
    fn corrupt() {
        let good = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n";
        assert!(parse_off(good.as_bytes(), Path::new("g.off")).is_ok());
        for bad in [
            good.replace("3 0 1 2", "3 0 1 3"),
            good.replace("OFF\n", "OFX\n"),
            good.replace("3 1 0", "4 1 0"),
            good.replace("3 1 0", "3 2 0"),
            good.replace("1 0 0\n", "1 zero 0\n"),
            good.replace("3 0 1 2", "3 0 1"),
        ] {
            let e = parse_off(bad.as_bytes(), Path::new("b.off")).unwrap_err();
            assert!(matches!(e, Error3d::Format { .. }) && e.to_string().starts_with("b.off: "));
        }
    }
}
