//! INRIMAGE-4 volumes (`.inr`, `.inr.gz`), as used by CGAL (`liver.inr.gz`, `skull_2.9.inr`).
//!
//! The header starts with `#INRIMAGE-4#{`, holds `KEY=VALUE` lines (`XDIM`, `YDIM`, `ZDIM`,
//! `VDIM`, `TYPE`, `PIXSIZE`, `SCALE`, `CPU`, `VX`, `VY`, `VZ`), is padded with newlines and
//! ends with `##}\n`; it is normally a multiple of 256 bytes long, but the reader locates the
//! terminator instead of assuming so (CGAL's `small-scalar.inr` has a 240-byte header).

use std::path::Path;

use crate::error::{gzip, read_maybe_gz, write_atomic, Error3d, Result};
use crate::volume::{decode_volume, encode_le, voxel_count, AnyVolume, Scalar};

const MAGIC: &[u8] = b"#INRIMAGE-4#{";
const END: &[u8] = b"##}\n";

/// Reads an INRIMAGE-4 file, gzipped or not. Only scalar images (`VDIM=1`) are supported.
pub fn read_inr(path: impl AsRef<Path>) -> Result<AnyVolume> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_inr(&bytes, path)
}

/// Parses INRIMAGE-4 bytes (already gunzipped); `path` is only used in error messages.
pub fn parse_inr(bytes: &[u8], path: &Path) -> Result<AnyVolume> {
    if !bytes.starts_with(MAGIC) {
        return Err(Error3d::format(path, "bad magic (expected `#INRIMAGE-4#{`)"));
    }
    let end = bytes
        .windows(END.len())
        .position(|w| w == END)
        .ok_or_else(|| Error3d::format(path, "header terminator `##}` not found"))?;
    let header = std::str::from_utf8(&bytes[MAGIC.len()..end])
        .map_err(|_| Error3d::format(path, "header is not text"))?;
    let data = &bytes[end + END.len()..];
    let (mut dims, mut vdim) = ([None::<usize>; 3], 1usize);
    let (mut ty, mut bits, mut big) = (None::<String>, None::<usize>, false);
    let mut spacing = [1.0f64; 3];
    for line in header.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error3d::format(path, format!("bad header line `{line}`")));
        };
        let (k, v) = (k.trim(), v.trim());
        let int = |v: &str| {
            v.parse::<usize>().map_err(|_| Error3d::format(path, format!("bad {k} value `{v}`")))
        };
        let float = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| Error3d::format(path, format!("bad {k} value `{v}`")))
        };
        match k {
            "XDIM" => dims[0] = Some(int(v)?),
            "YDIM" => dims[1] = Some(int(v)?),
            "ZDIM" => dims[2] = Some(int(v)?),
            "VDIM" => vdim = int(v)?,
            "TYPE" => ty = Some(v.to_string()),
            "PIXSIZE" => {
                let n = v.split_whitespace().next().unwrap_or("");
                bits = Some(int(n)?);
            }
            "CPU" => {
                big = match v {
                    "decm" | "alpha" | "pc" => false,
                    "sun" | "sgi" => true,
                    _ => return Err(Error3d::format(path, format!("unknown CPU `{v}`"))),
                }
            }
            "VX" => spacing[0] = float(v)?,
            "VY" => spacing[1] = float(v)?,
            "VZ" => spacing[2] = float(v)?,
            _ => {} // SCALE, TX/TY/TZ, RX/RY/RZ, …: ignored
        }
    }
    let dims = match dims {
        [Some(x), Some(y), Some(z)] => [x, y, z],
        _ => return Err(Error3d::format(path, "missing XDIM/YDIM/ZDIM")),
    };
    if vdim != 1 {
        return Err(Error3d::format(path, format!("VDIM={vdim} (only scalar images)")));
    }
    let ty = ty.ok_or_else(|| Error3d::format(path, "missing TYPE"))?;
    let bits = match (bits, ty.as_str()) {
        (Some(b), _) => b,
        (None, "float") => 32,
        (None, _) => return Err(Error3d::format(path, "missing PIXSIZE")),
    };
    let scalar = match (ty.as_str(), bits) {
        ("unsigned fixed", 8) => Scalar::U8,
        ("unsigned fixed", 16) => Scalar::U16,
        ("unsigned fixed", 32) => Scalar::U32,
        ("unsigned fixed", 64) => Scalar::U64,
        ("signed fixed", 8) => Scalar::I8,
        ("signed fixed", 16) => Scalar::I16,
        ("signed fixed", 32) => Scalar::I32,
        ("signed fixed", 64) => Scalar::I64,
        ("float", 32) => Scalar::F32,
        ("float", 64) => Scalar::F64,
        _ => {
            return Err(Error3d::format(
                path,
                format!("unsupported TYPE `{ty}` with PIXSIZE {bits} bits"),
            ))
        }
    };
    let need = voxel_count(dims)
        .and_then(|n| n.checked_mul(scalar.size()))
        .ok_or_else(|| Error3d::format(path, "dims overflow"))?;
    if data.len() != need {
        return Err(Error3d::format(
            path,
            format!("{} data bytes, {need} expected for {dims:?} × {bits} bits", data.len()),
        ));
    }
    decode_volume(scalar, data, big, dims, spacing)
        .map_err(|e| Error3d::format(path, e.to_string()))
}

/// Serialises a volume as INRIMAGE-4 (little endian, `CPU=decm`, 256-byte header).
pub fn inr_bytes(vol: &AnyVolume) -> Vec<u8> {
    let (scalar, data) = encode_le(vol);
    let (ty, bits) = match scalar {
        Scalar::U8 => ("unsigned fixed", 8),
        Scalar::U16 => ("unsigned fixed", 16),
        Scalar::U32 => ("unsigned fixed", 32),
        Scalar::U64 => ("unsigned fixed", 64),
        Scalar::I8 => ("signed fixed", 8),
        Scalar::I16 => ("signed fixed", 16),
        Scalar::I32 => ("signed fixed", 32),
        Scalar::I64 => ("signed fixed", 64),
        Scalar::F32 => ("float", 32),
        Scalar::F64 => ("float", 64),
    };
    let [x, y, z] = vol.dims();
    let [vx, vy, vz] = vol.spacing();
    let mut h = format!(
        "#INRIMAGE-4#{{\nXDIM={x}\nYDIM={y}\nZDIM={z}\nVDIM=1\nTYPE={ty}\nPIXSIZE={bits} bits\nSCALE=2**0\nCPU=decm\nVX={vx}\nVY={vy}\nVZ={vz}\n"
    );
    let total = (h.len() + END.len()).div_ceil(256) * 256;
    while h.len() + END.len() < total {
        h.push('\n');
    }
    let mut out = h.into_bytes();
    out.extend_from_slice(END);
    out.extend_from_slice(&data);
    out
}

/// Writes a volume as INRIMAGE-4 atomically; gzipped when the path ends in `.gz`.
pub fn write_inr(path: impl AsRef<Path>, vol: &AnyVolume) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = inr_bytes(vol);
    if path.extension().is_some_and(|e| e == "gz") {
        bytes = gzip(&bytes);
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Volume;

    #[test]
    fn roundtrip_types_and_gz() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volume::from_vec([3, 2, 2], [0.5, 0.6, 1.5], (0..12u8).collect()).unwrap();
        let vols = [
            AnyVolume::U8(v.clone()),
            AnyVolume::I16(v.map(|x| x as i16 - 6)),
            AnyVolume::F32(v.map(|x| x as f32 * 0.25)),
            AnyVolume::F64(v.map(|x| x as f64 - 0.5)),
        ];
        for (i, a) in vols.iter().enumerate() {
            for name in [format!("{i}.inr"), format!("{i}.inr.gz")] {
                let p = dir.path().join(name);
                write_inr(&p, a).unwrap();
                assert_eq!(&read_inr(&p).unwrap(), a);
            }
        }
        assert_eq!(inr_bytes(&vols[0]).len(), 256 + 12);
    }

    #[test]
    fn big_endian_and_short_header() {
        let mut h = b"#INRIMAGE-4#{\nXDIM=2\nYDIM=1\nZDIM=1\nTYPE=signed fixed\nPIXSIZE=16 bits\nCPU=sun\n##}\n".to_vec();
        h.extend_from_slice(&(-2i16).to_be_bytes());
        h.extend_from_slice(&300i16.to_be_bytes());
        match parse_inr(&h, Path::new("b.inr")).unwrap() {
            AnyVolume::I16(v) => assert_eq!(v.data, vec![-2, 300]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt() {
        let v = AnyVolume::U8(Volume::from_vec([2, 2, 2], [1.0; 3], vec![1u8; 8]).unwrap());
        let good = inr_bytes(&v);
        let p = Path::new("c.inr");
        assert!(parse_inr(&good, p).is_ok());
        let s = |from: &str, to: &str| {
            String::from_utf8(good.clone()).unwrap().replacen(from, to, 1).into_bytes()
        };
        let cases = vec![
            good[..good.len() - 1].to_vec(),          // truncated data
            s("#INRIMAGE-4", "#INRIMAGE-5"),          // bad magic
            s("TYPE=unsigned fixed", "TYPE=complex"), // unknown type
            s("PIXSIZE=8", "PIXSIZE=16"),             // size mismatch
            s("XDIM=2", "XDIM=x"),                    // bad number
            s("##}", "#}}"),                          // no terminator
            s("CPU=decm", "CPU=vax"),                 // unknown CPU
        ];
        for c in cases {
            let e = parse_inr(&c, p).unwrap_err();
            assert!(
                matches!(e, Error3d::Format { .. }) && e.to_string().starts_with("c.inr: "),
                "{e}"
            );
        }
    }
}
