//! Plain-text point clouds (`.xyz`, `.pwn`): one point per line, `x y z [nx ny nz]`.

use std::path::Path;

use crate::error::{read_maybe_gz, Error3d, Result};
use crate::mesh::PointCloud;

/// Reads an XYZ/PWN point cloud. Normals are kept when every line has at least six numbers.
/// Empty lines and `#` comments are skipped.
pub fn read_xyz(path: impl AsRef<Path>) -> Result<PointCloud> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_xyz(&bytes, path)
}

/// Parses XYZ bytes; `path` is only used in error messages.
pub fn parse_xyz(bytes: &[u8], path: &Path) -> Result<PointCloud> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error3d::format(path, "not UTF-8 text"))?;
    let mut points = Vec::new();
    let mut normals = Vec::new();
    let mut all_normals = true;
    for (ln, l) in text.lines().enumerate() {
        let l = l.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let vals: Vec<f32> = l
            .split_whitespace()
            .map(|t| {
                t.parse::<f32>().map_err(|_| {
                    Error3d::format(path, format!("line {}: bad number `{t}`", ln + 1))
                })
            })
            .collect::<Result<_>>()?;
        // Some files start with a point count line.
        if vals.len() == 1 && points.is_empty() {
            continue;
        }
        if vals.len() < 3 {
            return Err(Error3d::format(path, format!("line {}: < 3 coordinates", ln + 1)));
        }
        points.push([vals[0], vals[1], vals[2]]);
        if vals.len() >= 6 {
            normals.push([vals[3], vals[4], vals[5]]);
        } else {
            all_normals = false;
        }
    }
    if points.is_empty() {
        return Err(Error3d::format(path, "no points"));
    }
    Ok(PointCloud { points, normals: all_normals.then_some(normals), colours: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_corrupt() {
        let p = Path::new("p.xyz");
        let c = parse_xyz(b"0 0 0 0 0 1\n1 2 3 0 1 0\n", p).unwrap();
        assert_eq!(c.points.len(), 2);
        assert_eq!(c.normals.unwrap()[1], [0.0, 1.0, 0.0]);
        assert!(parse_xyz(b"0 0 0\n1 2\n", p).is_err());
        assert!(parse_xyz(b"0 0 x\n", p).is_err());
        assert!(parse_xyz(b"\n", p).is_err());
    }
}
