//! Dense 3D volumes (x fastest) and a type-erased wrapper for file readers.

use crate::error::{Error3d, Result};
use unet_core::rng::Rng;

/// Scalar voxel types that convert losslessly or nearly so to `f32`/`f64`.
pub trait Voxel: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The value as `f32`.
    fn to_f32(self) -> f32;
    /// The value as `f64`.
    fn to_f64(self) -> f64;
}

macro_rules! voxel_impl {
    ($($t:ty),*) => {$(
        impl Voxel for $t {
            fn to_f32(self) -> f32 { self as f32 }
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
voxel_impl!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// A dense volume; voxel `(x, y, z)` is at `data[x + dims[0]·(y + dims[1]·z)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    /// Number of voxels along x, y, z.
    pub dims: [usize; 3],
    /// Voxel size along x, y, z (physical units, e.g. mm).
    pub spacing: [f64; 3],
    /// Voxel values, x fastest.
    pub data: Vec<T>,
}

/// Number of voxels `dx·dy·dz`, or `None` on overflow.
pub fn voxel_count(dims: [usize; 3]) -> Option<usize> {
    dims[0].checked_mul(dims[1])?.checked_mul(dims[2])
}

impl<T: Voxel> Volume<T> {
    /// A volume filled with `T::default()` (zero).
    pub fn zeros(dims: [usize; 3], spacing: [f64; 3]) -> Result<Self> {
        let n =
            voxel_count(dims).ok_or_else(|| Error3d::Invalid(format!("dims {dims:?} overflow")))?;
        Ok(Volume { dims, spacing, data: vec![T::default(); n] })
    }

    /// Wraps `data`, checking that its length is `dims[0]·dims[1]·dims[2]`.
    pub fn from_vec(dims: [usize; 3], spacing: [f64; 3], data: Vec<T>) -> Result<Self> {
        if voxel_count(dims) != Some(data.len()) {
            return Err(Error3d::Invalid(format!(
                "{} values do not fill dims {dims:?}",
                data.len()
            )));
        }
        Ok(Volume { dims, spacing, data })
    }

    /// Linear index of `(x, y, z)`, `None` when out of bounds.
    pub fn index(&self, x: usize, y: usize, z: usize) -> Option<usize> {
        (x < self.dims[0] && y < self.dims[1] && z < self.dims[2])
            .then(|| x + self.dims[0] * (y + self.dims[1] * z))
    }

    /// Voxel value at `(x, y, z)`, `None` when out of bounds.
    pub fn get(&self, x: usize, y: usize, z: usize) -> Option<T> {
        self.index(x, y, z).and_then(|i| self.data.get(i).copied())
    }

    /// Sets voxel `(x, y, z)`; returns `false` (and does nothing) when out of bounds.
    pub fn set(&mut self, x: usize, y: usize, z: usize, v: T) -> bool {
        match self.index(x, y, z) {
            Some(i) if i < self.data.len() => {
                self.data[i] = v;
                true
            }
            _ => false,
        }
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the volume has no voxel.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Converts every voxel to `f32` (same dims and spacing).
    pub fn to_f32(&self) -> Volume<f32> {
        Volume {
            dims: self.dims,
            spacing: self.spacing,
            data: self.data.iter().map(|v| v.to_f32()).collect(),
        }
    }

    /// Applies `f` to every voxel.
    pub fn map<U: Voxel>(&self, f: impl Fn(T) -> U) -> Volume<U> {
        Volume {
            dims: self.dims,
            spacing: self.spacing,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// The sub-volume at `offset` of size `size`.
    pub fn crop(&self, offset: [usize; 3], size: [usize; 3]) -> Result<Volume<T>> {
        for a in 0..3 {
            if offset[a].checked_add(size[a]).is_none_or(|end| end > self.dims[a]) {
                return Err(Error3d::Invalid(format!(
                    "crop {offset:?}+{size:?} exceeds dims {:?}",
                    self.dims
                )));
            }
        }
        let mut data = Vec::with_capacity(size[0] * size[1] * size[2]);
        for z in 0..size[2] {
            for y in 0..size[1] {
                let start =
                    offset[0] + self.dims[0] * (offset[1] + y + self.dims[1] * (offset[2] + z));
                data.extend_from_slice(&self.data[start..start + size[0]]);
            }
        }
        Ok(Volume { dims: size, spacing: self.spacing, data })
    }

    /// A copy with `n` voxels of `value` added on every side (e.g. before
    /// [`marching_cubes`](crate::marching_cubes::marching_cubes), so surfaces touching the
    /// border are closed).
    pub fn pad(&self, n: usize, value: T) -> Volume<T> {
        let [dx, dy, dz] = self.dims;
        let d = [dx + 2 * n, dy + 2 * n, dz + 2 * n];
        let mut data = vec![value; d[0] * d[1] * d[2]];
        for z in 0..dz {
            for y in 0..dy {
                let src = dx * (y + dy * z);
                let dst = n + d[0] * (y + n + d[1] * (z + n));
                data[dst..dst + dx].copy_from_slice(&self.data[src..src + dx]);
            }
        }
        Volume { dims: d, spacing: self.spacing, data }
    }

    /// Offset of a random crop of `size` drawn from `seed`; the same seed gives the same
    /// offset for any volume of the same dims, so image and label crops stay aligned.
    pub fn random_crop_offset(&self, size: [usize; 3], seed: u64) -> Result<[usize; 3]> {
        let mut rng = Rng::new(seed);
        let mut off = [0; 3];
        for a in 0..3 {
            if size[a] > self.dims[a] {
                return Err(Error3d::Invalid(format!(
                    "crop size {size:?} larger than dims {:?}",
                    self.dims
                )));
            }
            off[a] = rng.below((self.dims[a] - size[a] + 1) as u64) as usize;
        }
        Ok(off)
    }

    /// A random crop of `size` (deterministic for a given `seed`, see [`Self::random_crop_offset`]).
    pub fn random_crop(&self, size: [usize; 3], seed: u64) -> Result<Volume<T>> {
        let off = self.random_crop_offset(size, seed)?;
        self.crop(off, size)
    }

    /// Mirrors the volume along `axis` (0 = x, 1 = y, 2 = z); other axes are ignored.
    pub fn flip(&self, axis: usize) -> Volume<T> {
        let mut out = self.clone();
        if axis > 2 {
            return out;
        }
        let [dx, dy, dz] = self.dims;
        for z in 0..dz {
            for y in 0..dy {
                for x in 0..dx {
                    let (sx, sy, sz) = match axis {
                        0 => (dx - 1 - x, y, z),
                        1 => (x, dy - 1 - y, z),
                        _ => (x, y, dz - 1 - z),
                    };
                    out.data[x + dx * (y + dy * z)] = self.data[sx + dx * (sy + dy * sz)];
                }
            }
        }
        out
    }

    /// Which axes a seeded random flip mirrors (each with probability ½).
    pub fn random_flip_axes(seed: u64) -> [bool; 3] {
        let mut rng = Rng::new(seed);
        [0, 1, 2].map(|_| rng.uniform() < 0.5)
    }

    /// Mirrors along the axes chosen by [`Self::random_flip_axes`] for `seed`.
    pub fn random_flip(&self, seed: u64) -> (Volume<T>, [bool; 3]) {
        let axes = Self::random_flip_axes(seed);
        let mut v = self.clone();
        for (a, &f) in axes.iter().enumerate() {
            if f {
                v = v.flip(a);
            }
        }
        (v, axes)
    }

    /// Minimum and maximum as `f64` (ignoring NaN); `None` when empty.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        let mut it = self.data.iter().map(|v| v.to_f64()).filter(|v| !v.is_nan());
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}

impl<T: Voxel + Eq + Ord> Volume<T> {
    /// The distinct values present, sorted.
    pub fn unique_labels(&self) -> Vec<T> {
        let mut v = self.data.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A binary mask (1 where the voxel equals `label`, else 0).
    pub fn to_binary(&self, label: T) -> Volume<u8> {
        Volume {
            dims: self.dims,
            spacing: self.spacing,
            data: self.data.iter().map(|&v| u8::from(v == label)).collect(),
        }
    }

    /// Number of voxels equal to `label`.
    pub fn count(&self, label: T) -> usize {
        self.data.iter().filter(|&&v| v == label).count()
    }
}

/// A volume of any voxel type, as returned by the readers.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyVolume {
    /// Unsigned 8-bit.
    U8(Volume<u8>),
    /// Signed 8-bit.
    I8(Volume<i8>),
    /// Unsigned 16-bit.
    U16(Volume<u16>),
    /// Signed 16-bit.
    I16(Volume<i16>),
    /// Unsigned 32-bit.
    U32(Volume<u32>),
    /// Signed 32-bit.
    I32(Volume<i32>),
    /// Unsigned 64-bit.
    U64(Volume<u64>),
    /// Signed 64-bit.
    I64(Volume<i64>),
    /// 32-bit float.
    F32(Volume<f32>),
    /// 64-bit float.
    F64(Volume<f64>),
}

macro_rules! any_dispatch {
    ($s:expr, $v:ident => $e:expr) => {
        match $s {
            AnyVolume::U8($v) => $e,
            AnyVolume::I8($v) => $e,
            AnyVolume::U16($v) => $e,
            AnyVolume::I16($v) => $e,
            AnyVolume::U32($v) => $e,
            AnyVolume::I32($v) => $e,
            AnyVolume::U64($v) => $e,
            AnyVolume::I64($v) => $e,
            AnyVolume::F32($v) => $e,
            AnyVolume::F64($v) => $e,
        }
    };
}

impl AnyVolume {
    /// Dims of the wrapped volume.
    pub fn dims(&self) -> [usize; 3] {
        any_dispatch!(self, v => v.dims)
    }

    /// Spacing of the wrapped volume.
    pub fn spacing(&self) -> [f64; 3] {
        any_dispatch!(self, v => v.spacing)
    }

    /// Short type name (`"u8"`, `"f32"`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            AnyVolume::U8(_) => "u8",
            AnyVolume::I8(_) => "i8",
            AnyVolume::U16(_) => "u16",
            AnyVolume::I16(_) => "i16",
            AnyVolume::U32(_) => "u32",
            AnyVolume::I32(_) => "i32",
            AnyVolume::U64(_) => "u64",
            AnyVolume::I64(_) => "i64",
            AnyVolume::F32(_) => "f32",
            AnyVolume::F64(_) => "f64",
        }
    }

    /// Converts to `f32`.
    pub fn to_f32(&self) -> Volume<f32> {
        any_dispatch!(self, v => v.to_f32())
    }

    /// Converts to `f64`.
    pub fn to_f64(&self) -> Volume<f64> {
        any_dispatch!(self, v => v.map(|x| x.to_f64()))
    }

    /// Label volume as `u8`: fails when a value is not an integer in `0..=255`.
    pub fn to_labels_u8(&self) -> Result<Volume<u8>> {
        let f = self.to_f64();
        let mut data = Vec::with_capacity(f.data.len());
        for &x in &f.data {
            if !(0.0..=255.0).contains(&x) || x.fract() != 0.0 {
                return Err(Error3d::Invalid(format!("value {x} is not a u8 label")));
            }
            data.push(x as u8);
        }
        Ok(Volume { dims: f.dims, spacing: f.spacing, data })
    }

    /// The `u8` volume when that is the stored type.
    pub fn as_u8(&self) -> Option<&Volume<u8>> {
        match self {
            AnyVolume::U8(v) => Some(v),
            _ => None,
        }
    }
}

/// Scalar element types found in volume files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Scalar {
    pub(crate) fn size(self) -> usize {
        match self {
            Scalar::U8 | Scalar::I8 => 1,
            Scalar::U16 | Scalar::I16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::F32 => 4,
            Scalar::U64 | Scalar::I64 | Scalar::F64 => 8,
        }
    }
}

/// Decodes `n` values of `ty` from `bytes` into a volume (`big`: big-endian).
/// The caller has checked that `bytes.len() >= n · size`.
pub(crate) fn decode_volume(
    ty: Scalar,
    bytes: &[u8],
    big: bool,
    dims: [usize; 3],
    spacing: [f64; 3],
) -> Result<AnyVolume> {
    let n = voxel_count(dims).ok_or_else(|| Error3d::Invalid("dims overflow".into()))?;
    let need = n.checked_mul(ty.size()).ok_or_else(|| Error3d::Invalid("size overflow".into()))?;
    if bytes.len() < need {
        return Err(Error3d::Invalid(format!("{} data bytes, {} needed", bytes.len(), need)));
    }
    let bytes = &bytes[..need];
    macro_rules! dec {
        ($t:ty, $var:ident, $w:expr) => {{
            let data: Vec<$t> = bytes
                .chunks_exact($w)
                .map(|c| {
                    let mut a = [0u8; $w];
                    a.copy_from_slice(c);
                    if big {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }
                })
                .collect();
            AnyVolume::$var(Volume { dims, spacing, data })
        }};
    }
    Ok(match ty {
        Scalar::U8 => dec!(u8, U8, 1),
        Scalar::I8 => dec!(i8, I8, 1),
        Scalar::U16 => dec!(u16, U16, 2),
        Scalar::I16 => dec!(i16, I16, 2),
        Scalar::U32 => dec!(u32, U32, 4),
        Scalar::I32 => dec!(i32, I32, 4),
        Scalar::U64 => dec!(u64, U64, 8),
        Scalar::I64 => dec!(i64, I64, 8),
        Scalar::F32 => dec!(f32, F32, 4),
        Scalar::F64 => dec!(f64, F64, 8),
    })
}

/// Encodes the voxels of `v` as little-endian bytes and reports their scalar type.
pub(crate) fn encode_le(v: &AnyVolume) -> (Scalar, Vec<u8>) {
    macro_rules! enc {
        ($vol:expr, $s:expr) => {
            ($s, $vol.data.iter().flat_map(|x| x.to_le_bytes()).collect())
        };
    }
    match v {
        AnyVolume::U8(x) => enc!(x, Scalar::U8),
        AnyVolume::I8(x) => enc!(x, Scalar::I8),
        AnyVolume::U16(x) => enc!(x, Scalar::U16),
        AnyVolume::I16(x) => enc!(x, Scalar::I16),
        AnyVolume::U32(x) => enc!(x, Scalar::U32),
        AnyVolume::I32(x) => enc!(x, Scalar::I32),
        AnyVolume::U64(x) => enc!(x, Scalar::U64),
        AnyVolume::I64(x) => enc!(x, Scalar::I64),
        AnyVolume::F32(x) => enc!(x, Scalar::F32),
        AnyVolume::F64(x) => enc!(x, Scalar::F64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Volume<u8> {
        let data = (0..24u8).collect();
        Volume::from_vec([4, 3, 2], [1.0, 2.0, 3.0], data).unwrap()
    }

    #[test]
    fn indexing_x_fastest() {
        let mut v = ramp();
        assert_eq!(v.get(1, 0, 0), Some(1));
        assert_eq!(v.get(0, 1, 0), Some(4));
        assert_eq!(v.get(0, 0, 1), Some(12));
        assert_eq!(v.get(4, 0, 0), None);
        assert!(v.set(3, 2, 1, 99));
        assert_eq!(v.data[23], 99);
        assert!(!v.set(0, 3, 0, 1));
        assert!(Volume::from_vec([2, 2, 2], [1.0; 3], vec![0u8; 7]).is_err());
    }

    #[test]
    fn labels_and_binary() {
        let v = Volume::from_vec([2, 2, 1], [1.0; 3], vec![0u8, 3, 3, 1]).unwrap();
        assert_eq!(v.unique_labels(), vec![0, 1, 3]);
        assert_eq!(v.to_binary(3).data, vec![0, 1, 1, 0]);
        assert_eq!(v.to_f32().data, vec![0.0, 3.0, 3.0, 1.0]);
    }

    #[test]
    fn crop_and_flip() {
        let v = ramp();
        let c = v.crop([1, 1, 1], [2, 2, 1]).unwrap();
        assert_eq!(c.data, vec![17, 18, 21, 22]);
        assert!(v.crop([3, 0, 0], [2, 1, 1]).is_err());
        let a = v.random_crop([2, 2, 2], 5).unwrap();
        let b = v.random_crop([2, 2, 2], 5).unwrap();
        assert_eq!(a, b);
        assert_eq!(v.flip(0).get(0, 0, 0), Some(3));
        assert_eq!(v.flip(1).get(0, 0, 0), Some(8));
        assert_eq!(v.flip(2).get(0, 0, 0), Some(12));
        assert_eq!(v.flip(2).flip(2), v);
        let p = v.pad(1, 200);
        assert_eq!(p.dims, [6, 5, 4]);
        assert_eq!(p.get(0, 0, 0), Some(200));
        assert_eq!(p.get(1, 1, 1), Some(0));
        assert_eq!(p.get(4, 3, 2), Some(23));
        assert_eq!(p.crop([1, 1, 1], [4, 3, 2]).unwrap(), v);
        let (f1, ax1) = v.random_flip(11);
        let (f2, ax2) = v.random_flip(11);
        assert_eq!((f1, ax1), (f2, ax2));
    }
}
