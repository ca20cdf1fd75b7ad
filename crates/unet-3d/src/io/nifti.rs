//! NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/`.img` pairs) and NIfTI-2 single files.
//!
//! Endianness is detected from `sizeof_hdr` (348 for NIfTI-1, 540 for NIfTI-2); the magic
//! must be `n+1`/`n+2` (single file) or `ni1`/`ni2` (pair: data in the sibling `.img`).
//! Supported datatypes: u8, i8, i16, u16, i32, u32, i64, u64, f32, f64; `bitpix` must
//! agree. When `scl_slope` is non-zero (and not the identity 1/0) values are scaled to
//! `f32` (`f64` for `f64` data) as `v·slope + inter`, like nibabel's `get_fdata()` (which
//! uses `f64`). Spacing is `|pixdim[1..=3]|` (0 read as 1). Dimensions past the third are
//! flattened into a list of 3D frames. Orientation (qform/sform) is not interpreted.

use std::path::{Path, PathBuf};

use crate::error::{gzip, read_maybe_gz, write_atomic, Error3d, Result};
use crate::volume::{decode_volume, encode_le, voxel_count, AnyVolume, Scalar, Volume};

/// A decoded NIfTI image.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiImage {
    /// 1 or 2.
    pub version: u8,
    /// `dim[1..=dim[0]]`.
    pub dims: Vec<usize>,
    /// `pixdim[1..=dim[0]]`.
    pub pixdim: Vec<f64>,
    /// The NIfTI datatype code.
    pub datatype: i16,
    /// `scl_slope` as stored.
    pub scl_slope: f64,
    /// `scl_inter` as stored.
    pub scl_inter: f64,
    /// One 3D volume per combination of the 4th and higher indices, scaling applied.
    pub frames: Vec<AnyVolume>,
}

/// Reads a NIfTI file (see the module documentation).
pub fn read_nifti(path: impl AsRef<Path>) -> Result<NiftiImage> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_nifti(&bytes, path, None)
}

/// Reads the first 3D frame of a NIfTI file, scaling applied.
pub fn read_nifti_volume(path: impl AsRef<Path>) -> Result<AnyVolume> {
    let path = path.as_ref();
    read_nifti(path)?
        .frames
        .into_iter()
        .next()
        .ok_or_else(|| Error3d::format(path, "image has no voxel"))
}

fn img_path(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    for (from, to) in [(".hdr.gz", ".img.gz"), (".hdr", ".img")] {
        if let Some(stem) = s.strip_suffix(from) {
            return PathBuf::from(format!("{stem}{to}"));
        }
    }
    path.with_extension("img")
}

struct Rd<'a> {
    b: &'a [u8],
    big: bool,
}

impl Rd<'_> {
    fn arr<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.b[off..off + N]);
        if self.big {
            a.reverse();
        }
        a
    }
    fn i16(&self, o: usize) -> i16 {
        i16::from_le_bytes(self.arr(o))
    }
    fn i64(&self, o: usize) -> i64 {
        i64::from_le_bytes(self.arr(o))
    }
    fn f32(&self, o: usize) -> f64 {
        f32::from_le_bytes(self.arr(o)) as f64
    }
    fn f64(&self, o: usize) -> f64 {
        f64::from_le_bytes(self.arr(o))
    }
}

/// The header fields of a NIfTI file that locate and decode its voxels (the data are not
/// read): what [`parse_nifti`] and the streaming NIfTI source/sink of [`crate::sliding`] use.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiHeader {
    /// 1 or 2.
    pub version: u8,
    /// Whether the file is big-endian.
    pub big_endian: bool,
    /// Single file (`n+1`/`n+2`) rather than a `.hdr`/`.img` pair.
    pub single_file: bool,
    /// `dim[1..=dim[0]]`.
    pub dims: Vec<usize>,
    /// `pixdim[1..=dim[0]]`.
    pub pixdim: Vec<f64>,
    /// The NIfTI datatype code.
    pub datatype: i16,
    /// Byte offset of the first voxel.
    pub vox_offset: u64,
    /// `scl_slope` as stored.
    pub scl_slope: f64,
    /// `scl_inter` as stored.
    pub scl_inter: f64,
    pub(crate) scalar: Scalar,
}

impl NiftiHeader {
    /// Bytes per voxel of the stored datatype.
    pub fn bytes_per_voxel(&self) -> usize {
        self.scalar.size()
    }

    /// The first three dimensions (1 where the image has fewer).
    pub fn dims3(&self) -> [usize; 3] {
        [0, 1, 2].map(|i| self.dims.get(i).copied().unwrap_or(1))
    }

    /// Voxel spacing `|pixdim[1..=3]|` (1 where absent, zero or not finite).
    pub fn spacing3(&self) -> [f64; 3] {
        let ndim = self.dims.len();
        [0, 1, 2].map(|i| {
            let p = self.pixdim.get(i).copied().unwrap_or(1.0).abs();
            if p > 0.0 && p.is_finite() && i < ndim {
                p
            } else {
                1.0
            }
        })
    }

    /// Number of 3D frames (the product of the dimensions past the third).
    pub fn frames(&self) -> Option<usize> {
        self.dims.iter().skip(3).try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Whether `scl_slope`/`scl_inter` change the stored values.
    pub fn scaled(&self) -> bool {
        let (slope, inter) = (self.scl_slope, self.scl_inter);
        slope != 0.0 && slope.is_finite() && inter.is_finite() && !(slope == 1.0 && inter == 0.0)
    }

    /// Whether the stored voxels are little-endian `f32` without scaling, the layout the
    /// streaming source and sink read and write in place.
    pub fn is_plain_f32(&self) -> bool {
        self.scalar == Scalar::F32 && !self.big_endian && !self.scaled()
    }
}

/// Parses the header at the start of `bytes` (at least 348 bytes for NIfTI-1, 540 for
/// NIfTI-2; the voxels need not follow). `path` is used in error messages.
pub fn parse_nifti_header(bytes: &[u8], path: &Path) -> Result<NiftiHeader> {
    let err = |r: String| Error3d::format(path, r);
    if bytes.len() < 348 {
        return Err(err(format!("{} bytes: shorter than a NIfTI header", bytes.len())));
    }
    let le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (version, big) = match (le, be) {
        (348, _) => (1u8, false),
        (_, 348) => (1, true),
        (540, _) => (2, false),
        (_, 540) => (2, true),
        _ => return Err(err(format!("bad sizeof_hdr {le} (expected 348 or 540)"))),
    };
    if version == 2 && bytes.len() < 540 {
        return Err(err("truncated NIfTI-2 header".into()));
    }
    let r = Rd { b: bytes, big };
    let single = if version == 1 {
        let m = &bytes[344..348];
        match m {
            b"n+1\0" => true,
            b"ni1\0" => false,
            _ => return Err(err(format!("bad magic {m:?} (expected n+1 or ni1)"))),
        }
    } else {
        let m = &bytes[4..8];
        match m {
            b"n+2\0" => true,
            b"ni2\0" => false,
            _ => return Err(err(format!("bad magic {m:?} (expected n+2 or ni2)"))),
        }
    };
    let (datatype, bitpix, dim, pixdim, vox_offset, slope, inter) = if version == 1 {
        (
            r.i16(70),
            r.i16(72),
            (0..8).map(|i| r.i16(40 + 2 * i) as i64).collect::<Vec<_>>(),
            (0..8).map(|i| r.f32(76 + 4 * i)).collect::<Vec<_>>(),
            r.f32(108),
            r.f32(112),
            r.f32(116),
        )
    } else {
        (
            r.i16(12),
            r.i16(14),
            (0..8).map(|i| r.i64(16 + 8 * i)).collect::<Vec<_>>(),
            (0..8).map(|i| r.f64(104 + 8 * i)).collect::<Vec<_>>(),
            r.i64(168) as f64,
            r.f64(176),
            r.f64(184),
        )
    };
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(err(format!("bad dim[0] = {ndim}")));
    }
    let ndim = ndim as usize;
    let mut dims = Vec::with_capacity(ndim);
    for (i, &d) in dim[1..=ndim].iter().enumerate() {
        if d < 1 {
            return Err(err(format!("bad dim[{}] = {d}", i + 1)));
        }
        dims.push(usize::try_from(d).map_err(|_| err("dim too large".into()))?);
    }
    let scalar = match datatype {
        2 => Scalar::U8,
        4 => Scalar::I16,
        8 => Scalar::I32,
        16 => Scalar::F32,
        64 => Scalar::F64,
        256 => Scalar::I8,
        512 => Scalar::U16,
        768 => Scalar::U32,
        1024 => Scalar::I64,
        1280 => Scalar::U64,
        t => return Err(err(format!("unsupported datatype {t}"))),
    };
    if bitpix as usize != 8 * scalar.size() {
        return Err(err(format!("bitpix {bitpix} does not match datatype {datatype}")));
    }
    let vox_offset = if single {
        if !(vox_offset >= 0.0 && vox_offset.is_finite()) {
            return Err(err(format!("bad vox_offset {vox_offset}")));
        }
        let off = vox_offset as u64;
        let min_hdr = if version == 1 { 348 } else { 540 };
        if off < min_hdr {
            return Err(err(format!("vox_offset {off} inside the header")));
        }
        off
    } else {
        vox_offset.max(0.0) as u64
    };
    Ok(NiftiHeader {
        version,
        big_endian: big,
        single_file: single,
        pixdim: pixdim[1..=ndim].to_vec(),
        dims,
        datatype,
        vox_offset,
        scl_slope: slope,
        scl_inter: inter,
        scalar,
    })
}

/// Parses NIfTI bytes; `img` supplies the data of a `.hdr`/`.img` pair (read from the
/// sibling file when `None`). `path` is used in error messages.
pub fn parse_nifti(bytes: &[u8], path: &Path, img: Option<&[u8]>) -> Result<NiftiImage> {
    let err = |r: String| Error3d::format(path, r);
    let h = parse_nifti_header(bytes, path)?;
    let (d3, sp) = (h.dims3(), h.spacing3());
    let nframes = h.frames().ok_or_else(|| err("dims overflow".into()))?;
    let frame_bytes = voxel_count(d3)
        .and_then(|n| n.checked_mul(h.scalar.size()))
        .ok_or_else(|| err("dims overflow".into()))?;
    let total = frame_bytes.checked_mul(nframes).ok_or_else(|| err("dims overflow".into()))?;
    let off = usize::try_from(h.vox_offset).map_err(|_| err("vox_offset too large".into()))?;
    let owned;
    let data: &[u8] = if h.single_file {
        bytes.get(off..).ok_or_else(|| err(format!("vox_offset {off} beyond the file")))?
    } else {
        match img {
            Some(d) => d,
            None => {
                let ip = img_path(path);
                owned = read_maybe_gz(&ip)?;
                &owned
            }
        }
        .get(off..)
        .ok_or_else(|| err("vox_offset beyond the .img file".into()))?
    };
    if data.len() < total {
        return Err(err(format!(
            "truncated: {} data bytes, {total} needed for dims {:?} datatype {}",
            data.len(),
            h.dims,
            h.datatype
        )));
    }
    let (slope, inter) = (h.scl_slope, h.scl_inter);
    let scale = h.scaled();
    let mut frames = Vec::with_capacity(nframes);
    for f in 0..nframes {
        let chunk = &data[f * frame_bytes..(f + 1) * frame_bytes];
        let v =
            decode_volume(h.scalar, chunk, h.big_endian, d3, sp).map_err(|e| err(e.to_string()))?;
        frames.push(if scale {
            match &v {
                AnyVolume::F64(x) => AnyVolume::F64(x.map(|a| a * slope + inter)),
                _ => {
                    let x: Volume<f64> = v.to_f64();
                    AnyVolume::F32(x.map(|a| (a * slope + inter) as f32))
                }
            }
        } else {
            v
        });
    }
    Ok(NiftiImage {
        version: h.version,
        pixdim: h.pixdim,
        dims: h.dims,
        datatype: h.datatype,
        scl_slope: slope,
        scl_inter: inter,
        frames,
    })
}

/// Size of the header [`nifti_bytes`] and [`nifti1_header`] write (`vox_offset`).
pub const NIFTI1_VOX_OFFSET: usize = 352;

/// The 352-byte little-endian NIfTI-1 header (`n+1`, `vox_offset` 352, no scaling, no
/// orientation: qform/sform codes 0) of an image of `dims` (1 to 7 of them: x, y, z, then
/// frames), voxel `spacing` and `datatype` code; an error when a dimension does not fit
/// NIfTI-1's `i16` or the code is unknown.
pub fn nifti1_header(dims: &[usize], spacing: [f64; 3], datatype: i16) -> Result<Vec<u8>> {
    let bits: i16 = match datatype {
        2 | 256 => 8,
        4 | 512 => 16,
        8 | 16 | 768 => 32,
        64 | 1024 | 1280 => 64,
        t => return Err(Error3d::Invalid(format!("unsupported NIfTI datatype {t}"))),
    };
    if !(1..=7).contains(&dims.len()) {
        return Err(Error3d::Invalid(format!("dims {dims:?}: NIfTI holds 1 to 7 dimensions")));
    }
    let mut dim = [1i16; 8];
    dim[0] = dims.len() as i16;
    for (o, &d) in dim[1..].iter_mut().zip(dims) {
        *o = i16::try_from(d).ok().filter(|&v| v >= 1).ok_or_else(|| {
            Error3d::Invalid(format!("dims {dims:?}: NIfTI-1 holds 1..=32767 per axis"))
        })?;
    }
    let mut h = vec![0u8; NIFTI1_VOX_OFFSET];
    let put = |h: &mut Vec<u8>, o: usize, b: &[u8]| h[o..o + b.len()].copy_from_slice(b);
    put(&mut h, 0, &348i32.to_le_bytes());
    for (i, v) in dim.iter().enumerate() {
        put(&mut h, 40 + 2 * i, &v.to_le_bytes());
    }
    put(&mut h, 70, &datatype.to_le_bytes());
    put(&mut h, 72, &bits.to_le_bytes());
    let s = spacing;
    let pix = [1.0f32, s[0] as f32, s[1] as f32, s[2] as f32, 1.0, 1.0, 1.0, 1.0];
    for (i, v) in pix.iter().enumerate() {
        put(&mut h, 76 + 4 * i, &v.to_le_bytes());
    }
    put(&mut h, 108, &(NIFTI1_VOX_OFFSET as f32).to_le_bytes());
    put(&mut h, 112, &1f32.to_le_bytes());
    put(&mut h, 123, &[2]); // xyzt_units: mm
    put(&mut h, 148, b"unet-3d");
    put(&mut h, 344, b"n+1\0");
    Ok(h)
}

/// Serialises `vol` as a single-file little-endian NIfTI-1 (see [`nifti1_header`]).
pub fn nifti_bytes(vol: &AnyVolume) -> Result<Vec<u8>> {
    let (scalar, data) = encode_le(vol);
    let dt: i16 = match scalar {
        Scalar::U8 => 2,
        Scalar::I16 => 4,
        Scalar::I32 => 8,
        Scalar::F32 => 16,
        Scalar::F64 => 64,
        Scalar::I8 => 256,
        Scalar::U16 => 512,
        Scalar::U32 => 768,
        Scalar::I64 => 1024,
        Scalar::U64 => 1280,
    };
    let mut h = nifti1_header(&vol.dims(), vol.spacing(), dt)?;
    h.extend_from_slice(&data);
    Ok(h)
}

/// Writes `vol` as NIfTI-1 atomically; gzipped when the path ends in `.gz`.
pub fn write_nifti(path: impl AsRef<Path>, vol: &AnyVolume) -> Result<()> {
    let path = path.as_ref();
    let mut b = nifti_bytes(vol)?;
    if path.extension().is_some_and(|e| e == "gz") {
        b = gzip(&b);
    }
    write_atomic(path, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol() -> AnyVolume {
        AnyVolume::I16(
            Volume::from_vec([4, 3, 2], [0.5, 1.25, 2.5], (0..24).map(|x| x * 10 - 50).collect())
                .unwrap(),
        )
    }

    #[test]
    fn roundtrip_plain_and_gz() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.nii", "a.nii.gz"] {
            let p = dir.path().join(n);
            write_nifti(&p, &vol()).unwrap();
            let v = read_nifti_volume(&p).unwrap();
            assert_eq!(v.dims(), [4, 3, 2]);
            assert!((v.spacing()[2] - 2.5).abs() < 1e-6);
            assert_eq!(v, AnyVolume::I16(vol().to_f64().map(|x| x as i16)));
        }
    }

    #[test]
    fn scaling_big_endian_4d_and_pair() {
        let mut b = nifti_bytes(&vol()).unwrap();
        b[112..116].copy_from_slice(&2f32.to_le_bytes());
        b[116..120].copy_from_slice(&0.5f32.to_le_bytes());
        let v = parse_nifti(&b, Path::new("s.nii"), None).unwrap();
        assert_eq!(v.frames[0].to_f32().data[0], -99.5);
        // Big-endian: swap every header field we use and the data.
        let mut be = nifti_bytes(&vol()).unwrap();
        let swap = |b: &mut Vec<u8>, o: usize, n: usize| b[o..o + n].reverse();
        swap(&mut be, 0, 4);
        for i in 0..8 {
            swap(&mut be, 40 + 2 * i, 2);
            swap(&mut be, 76 + 4 * i, 4);
        }
        for o in [70, 72] {
            swap(&mut be, o, 2);
        }
        for o in [108, 112, 116] {
            swap(&mut be, o, 4);
        }
        for i in 0..24 {
            swap(&mut be, 352 + 2 * i, 2);
        }
        assert_eq!(parse_nifti(&be, Path::new("be.nii"), None).unwrap().frames[0], vol());
        // 4D: two frames of 4×3×1.
        let mut d4 = nifti_bytes(&vol()).unwrap();
        for (i, v) in [4i16, 4, 3, 1, 2].iter().enumerate() {
            d4[40 + 2 * i..42 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        let img = parse_nifti(&d4, Path::new("4d.nii"), None).unwrap();
        assert_eq!(img.frames.len(), 2);
        assert_eq!(img.frames[1].dims(), [4, 3, 1]);
        assert_eq!(img.frames[1].to_f32().data[0], 70.0);
        // .hdr/.img pair.
        let dir = tempfile::tempdir().unwrap();
        let mut hdr = nifti_bytes(&vol()).unwrap();
        let data = hdr.split_off(348);
        hdr[344..348].copy_from_slice(b"ni1\0");
        hdr[108..112].copy_from_slice(&0f32.to_le_bytes());
        std::fs::write(dir.path().join("p.hdr"), &hdr).unwrap();
        std::fs::write(dir.path().join("p.img"), &data[4..]).unwrap();
        assert_eq!(read_nifti_volume(dir.path().join("p.hdr")).unwrap(), vol());
    }

    #[test]
    fn corrupt() {
        let good = nifti_bytes(&vol()).unwrap();
        let p = Path::new("c.nii");
        assert!(parse_nifti(&good, p, None).is_ok());
        let with = |o: usize, b: &[u8]| {
            let mut g = good.clone();
            g[o..o + b.len()].copy_from_slice(b);
            g
        };
        let cases = vec![
            good[..good.len() - 3].to_vec(),  // truncated data
            good[..200].to_vec(),             // truncated header
            with(344, b"xx1\0"),              // bad magic
            with(0, &349i32.to_le_bytes()),   // bad sizeof_hdr
            with(70, &1234i16.to_le_bytes()), // unknown datatype
            with(72, &8i16.to_le_bytes()),    // bitpix mismatch
            with(42, &5i16.to_le_bytes()),    // dims larger than data
            with(108, &1e9f32.to_le_bytes()), // vox_offset beyond file
            with(40, &9i16.to_le_bytes()),    // bad dim[0]
        ];
        for c in cases {
            let e = parse_nifti(&c, p, None).unwrap_err();
            assert!(
                matches!(e, Error3d::Format { .. }) && e.to_string().starts_with("c.nii: "),
                "{e}"
            );
        }
    }
}
