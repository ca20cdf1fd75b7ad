//! Sliding-window inference over volumes larger than a network's input: MONAI's
//! `sliding_window_inference`, in memory ([`SlidingWindow::infer`]) or streamed slab by slab
//! from a [`VolumeSource`] to a [`VolumeSink`] in bounded memory
//! ([`SlidingWindow::infer_streaming`], e.g. NIfTI file to NIfTI file with [`NiftiSource`] and
//! [`NiftiSink`]).
//!
//! Windows are placed as MONAI's `_get_scan_interval` and `dense_patch_slices` place them: a
//! volume smaller than the window along an axis is padded with zeros (half before, the rest
//! after) to the window's size, the stride along an axis is `⌊roi·(1 − overlap)⌋` (at least 1;
//! the whole axis when the window spans it), and the last window of an axis is moved back to
//! end flush with the volume. Each prediction is weighted by an importance map (constant, or
//! MONAI's `compute_importance_map` Gaussian: a separable `exp(−d²/2σ²)` with
//! `σ = sigma_scale·roi` per axis, here normalised to a peak of 1, values clamped from below at
//! `max(min, 10⁻³)`), summed, and divided by the summed weights.
//!
//! Both entry points run one engine: windows are visited by their start along the last axis
//! (then x, then y), so after the windows that start at `z = s` are done, every slice before
//! the next start is final and is written out. Only one slab (the window depth of input, its
//! accumulators, one batch of patches) is held at a time; [`SlidingWindow::slab_bytes`] states
//! that bound. Because the engine is shared, the streamed and in-memory results are
//! bit-identical. The summation order differs from MONAI's (which visits windows x-major);
//! the windows and weights are the same.
//!
//! Run its tests: `cargo test -p unet-3d --test sliding`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::error::{Error3d, Result};
use crate::io::nifti::{nifti1_header, parse_nifti_header, NiftiHeader, NIFTI1_VOX_OFFSET};
use crate::volume::{decode_volume, voxel_count, AnyVolume};

/// How the predictions of overlapping windows are weighted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Blend {
    /// Every voxel of a window weighs 1 (MONAI's default `mode="constant"`).
    Constant,
    /// A Gaussian centred on the window, `σ = sigma_scale·roi` per axis (MONAI's
    /// `mode="gaussian"`; its default `sigma_scale` is 0.125, see [`Blend::gaussian`]).
    Gaussian {
        /// σ as a fraction of the window size.
        sigma_scale: f64,
    },
}

impl Blend {
    /// The Gaussian with MONAI's default `sigma_scale = 0.125`.
    pub fn gaussian() -> Blend {
        Blend::Gaussian { sigma_scale: 0.125 }
    }
}

/// Sliding-window inference settings (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow {
    /// Window size along x, y, z (the tensor's last three axes); every entry ≥ 1.
    pub roi: [usize; 3],
    /// Fraction of a window shared with its neighbour, in `[0, 1)` (MONAI's default 0.25).
    pub overlap: f64,
    /// Weighting of overlapping predictions.
    pub blend: Blend,
    /// Windows per predictor call (MONAI's `sw_batch_size`), ≥ 1.
    pub batch: usize,
}

/// Where the windows go for one volume: padding and window starts along each axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    /// The volume's size along x, y, z.
    pub dims: [usize; 3],
    /// The size after padding to at least the window (`max(dims, roi)`).
    pub padded: [usize; 3],
    /// Zeros added before the volume along each axis (`(padded − dims) / 2`).
    pub pad_before: [usize; 3],
    /// Stride between window starts along each axis.
    pub interval: [usize; 3],
    /// Window starts along each axis, increasing, in padded coordinates.
    pub starts: [Vec<usize>; 3],
}

impl WindowPlan {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.starts.iter().map(Vec::len).product()
    }

    /// Whether there is no window (never, for a valid plan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All window starts in MONAI's order (x slowest, z fastest), padded coordinates.
    pub fn windows(&self) -> Vec<[usize; 3]> {
        let mut out = Vec::with_capacity(self.len());
        for &x in &self.starts[0] {
            for &y in &self.starts[1] {
                for &z in &self.starts[2] {
                    out.push([x, y, z]);
                }
            }
        }
        out
    }
}

/// A volume read slab by slab along its last axis.
pub trait VolumeSource {
    /// Number of channels.
    fn channels(&self) -> usize;
    /// Size along x, y, z.
    fn dims(&self) -> [usize; 3];
    /// Slices `z0..z1` of every channel as a `Float` tensor `[C, X, Y, z1 − z0]`.
    fn read_slab(&mut self, z0: usize, z1: usize) -> Result<Tensor>;
}

/// A volume written slab by slab along its last axis, in order.
pub trait VolumeSink {
    /// Writes `slab` (`[K, X, Y, n]`) as slices `z0..z0 + n`; calls come with increasing,
    /// contiguous `z0` starting at 0.
    fn write_slab(&mut self, z0: usize, slab: &Tensor) -> Result<()>;
    /// Called once after the last slab.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

fn i(v: usize) -> i64 {
    v as i64
}

impl SlidingWindow {
    /// Windows of `roi` with MONAI's defaults: overlap 0.25, constant blending, batch 1.
    pub fn new(roi: [usize; 3]) -> Self {
        SlidingWindow { roi, overlap: 0.25, blend: Blend::Constant, batch: 1 }
    }

    /// Checks the settings: every `roi` entry ≥ 1, `overlap` in `[0, 1)`, `batch` ≥ 1, a
    /// positive finite `sigma_scale`.
    pub fn validate(&self) -> Result<()> {
        if self.roi.contains(&0) {
            return Err(Error3d::invalid(format!(
                "sliding window: roi {:?} has a zero size",
                self.roi
            )));
        }
        if !(0.0..1.0).contains(&self.overlap) {
            return Err(Error3d::invalid(format!(
                "sliding window: overlap {} is outside [0, 1)",
                self.overlap
            )));
        }
        if self.batch == 0 {
            return Err(Error3d::invalid("sliding window: batch must be at least 1"));
        }
        if let Blend::Gaussian { sigma_scale } = self.blend {
            if !(sigma_scale > 0.0 && sigma_scale.is_finite()) {
                return Err(Error3d::invalid(format!(
                    "sliding window: Gaussian sigma_scale {sigma_scale} must be positive"
                )));
            }
        }
        Ok(())
    }

    /// Where the windows go on a volume of `dims` (MONAI's `_get_scan_interval` and
    /// `dense_patch_slices`).
    pub fn plan(&self, dims: [usize; 3]) -> Result<WindowPlan> {
        self.validate()?;
        if dims.contains(&0) {
            return Err(Error3d::invalid(format!(
                "sliding window: volume dims {dims:?} are empty"
            )));
        }
        let padded = [0, 1, 2].map(|a| dims[a].max(self.roi[a]));
        let pad_before = [0, 1, 2].map(|a| (padded[a] - dims[a]) / 2);
        let interval = [0, 1, 2].map(|a| {
            if self.roi[a] == padded[a] {
                self.roi[a]
            } else {
                ((self.roi[a] as f64 * (1.0 - self.overlap)) as usize).max(1)
            }
        });
        let starts = [0, 1, 2].map(|a| {
            let (size, roi, step) = (padded[a], self.roi[a], interval[a]);
            let num = size.div_ceil(step);
            let scan = (0..num).find(|d| d * step + roi >= size).map_or(1, |d| d + 1);
            (0..scan).map(|k| k * step - (k * step + roi).saturating_sub(size)).collect()
        });
        Ok(WindowPlan { dims, padded, pad_before, interval, starts })
    }

    /// The importance map `[rx, ry, rz]` (`Float`, CPU): ones, or the Gaussian of the module
    /// documentation.
    pub fn importance_map(&self) -> Result<Tensor> {
        self.validate()?;
        let [rx, ry, rz] = self.roi;
        let sigma_scale = match self.blend {
            Blend::Constant => {
                return Ok(Tensor::f_ones([i(rx), i(ry), i(rz)], (Kind::Float, Device::Cpu))?)
            }
            Blend::Gaussian { sigma_scale } => sigma_scale,
        };
        let axis = |n: usize| -> Vec<f64> {
            let sigma = sigma_scale * n as f64;
            (0..n)
                .map(|k| {
                    let x = k as f64 - (n as f64 - 1.0) / 2.0;
                    (-(x * x) / (2.0 * sigma * sigma)).exp()
                })
                .collect()
        };
        let (gx, gy, gz) = (axis(rx), axis(ry), axis(rz));
        let mut map = Vec::with_capacity(rx * ry * rz);
        for &a in &gx {
            for &b in &gy {
                for &c in &gz {
                    map.push(a * b * c);
                }
            }
        }
        let max = map.iter().cloned().fold(f64::MIN, f64::max);
        let min = map.iter().cloned().fold(f64::MAX, f64::min) / max;
        let floor = min.max(1e-3);
        let map: Vec<f32> = map.iter().map(|v| (v / max).max(floor) as f32).collect();
        Ok(Tensor::from_slice(&map).f_view([i(rx), i(ry), i(rz)])?)
    }

    /// Upper bound (bytes) on the tensors the engine holds at once for a volume of `dims`
    /// with `in_channels` inputs and `out_channels` outputs: the padded input slab (and its
    /// unpadded read), the output and weight accumulators (twice, while they shift), and one
    /// batch of patches, predictions and weighted predictions. It does not grow with the
    /// volume's depth. A file source or sink adds its decoding buffers (about three copies of
    /// one channel's slab for [`NiftiSource`], two of one channel's output for [`NiftiSink`]).
    pub fn slab_bytes(
        &self,
        dims: [usize; 3],
        in_channels: usize,
        out_channels: usize,
    ) -> Result<usize> {
        let plan = self.plan(dims)?;
        let [rx, ry, rz] = self.roi;
        let slice = plan.padded[0] * plan.padded[1] * rz * 4;
        let window = rx * ry * rz * 4;
        Ok(slice * (2 * in_channels + 2 * (out_channels + 1))
            + self.batch * window * (in_channels + 2 * out_channels))
    }

    /// Sliding-window inference of `predictor` over `input` (`[C, X, Y, Z]` or
    /// `[1, C, X, Y, Z]`): `predictor` maps a batch of windows `[N, C, rx, ry, rz]` to
    /// `[N, out_channels, rx, ry, rz]`; the result is `[out_channels, X, Y, Z]` (`Float`, on
    /// `input`'s device). Runs without gradient tracking.
    ///
    /// # Errors
    /// Invalid settings, an input of another rank, or a prediction of the wrong shape
    /// ([`Error3d::Invalid`]); errors of `predictor` are passed on.
    pub fn infer(
        &self,
        input: &Tensor,
        out_channels: usize,
        mut predictor: impl FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let input = match input.size().as_slice() {
            [_, _, _, _] => input.shallow_clone(),
            [1, _, _, _, _] => input.f_squeeze_dim(0)?,
            s => {
                return Err(Error3d::invalid(format!(
                    "sliding window: input shape {s:?} is neither [C, X, Y, Z] nor [1, C, X, Y, Z]"
                )))
            }
        };
        let mut source = TensorSource::new(input)?;
        let dims = source.dims();
        let mut sink = TensorSink::new(out_channels, dims, source.tensor.device())?;
        self.run(&mut source, &mut sink, out_channels, &mut predictor)?;
        Ok(sink.into_tensor())
    }

    /// Sliding-window inference from `source` to `sink` in bounded memory (see
    /// [`SlidingWindow::slab_bytes`]): the same windows, weights and result as
    /// [`SlidingWindow::infer`], written slab by slab in order, then [`VolumeSink::finish`].
    pub fn infer_streaming(
        &self,
        source: &mut dyn VolumeSource,
        sink: &mut dyn VolumeSink,
        out_channels: usize,
        mut predictor: impl FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        self.run(source, sink, out_channels, &mut predictor)
    }

    fn run(
        &self,
        source: &mut dyn VolumeSource,
        sink: &mut dyn VolumeSink,
        out_channels: usize,
        predictor: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let (dims, channels) = (source.dims(), source.channels());
        if channels == 0 || out_channels == 0 {
            return Err(Error3d::invalid(format!(
                "sliding window: {channels} input and {out_channels} output channels"
            )));
        }
        let plan = self.plan(dims)?;
        let [rx, ry, rz] = self.roi;
        let [px, py, pz] = plan.padded;
        let [bx, by, bz] = plan.pad_before;
        let k = out_channels;
        let xy: Vec<(usize, usize)> = plan.starts[0]
            .iter()
            .flat_map(|&x| plan.starts[1].iter().map(move |&y| (x, y)))
            .collect();
        let cpu_map = self.importance_map()?;
        let mut weights: Option<Tensor> = None;
        // Accumulators of padded slices lo..lo + depth: outputs [K, px, py, d], weights
        // [1, px, py, d].
        let mut lo = 0usize;
        let mut acc: Option<(Tensor, Tensor)> = None;
        let zs = &plan.starts[2];
        for (g, &s) in zs.iter().enumerate() {
            let slab = self.read_padded(source, &plan, s)?; // [C, px, py, rz]
            let dev = slab.device();
            let map = match &weights {
                Some(m) => m.shallow_clone(),
                None => {
                    let m = cpu_map.f_to_device(dev)?;
                    weights = Some(m.shallow_clone());
                    m
                }
            };
            // 1. accumulators cover lo..s + rz
            let need = s + rz - lo;
            let (out_acc, w_acc) = match acc.take() {
                Some((o, w)) if o.size()[3] as usize >= need => (o, w),
                prev => {
                    let o = Tensor::f_zeros([i(k), i(px), i(py), i(need)], (Kind::Float, dev))?;
                    let w = Tensor::f_zeros([1, i(px), i(py), i(need)], (Kind::Float, dev))?;
                    if let Some((po, pw)) = prev {
                        let d = po.size()[3];
                        o.f_narrow(3, 0, d)?.f_copy_(&po)?;
                        w.f_narrow(3, 0, d)?.f_copy_(&pw)?;
                    }
                    (o, w)
                }
            };
            // 2. the windows starting at z = s, in batches
            let zoff = i(s - lo);
            for chunk in xy.chunks(self.batch) {
                let patches = chunk
                    .iter()
                    .map(|&(x, y)| slab.f_narrow(1, i(x), i(rx))?.f_narrow(2, i(y), i(ry)))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let batch = Tensor::f_stack(&patches, 0)?; // [N, C, rx, ry, rz]
                drop(patches);
                let pred = predictor(&batch)?;
                drop(batch);
                let want = [i(chunk.len()), i(k), i(rx), i(ry), i(rz)];
                if pred.size() != want {
                    return Err(Error3d::invalid(format!(
                        "sliding window: the predictor returned {:?} for a batch of {} windows, \
                         expected {want:?}",
                        pred.size(),
                        chunk.len()
                    )));
                }
                let weighted = pred.f_to_device(dev)?.f_to_kind(Kind::Float)?.f_mul(&map)?;
                drop(pred);
                for (n, &(x, y)) in chunk.iter().enumerate() {
                    let mut o = out_acc.f_narrow(1, i(x), i(rx))?.f_narrow(2, i(y), i(ry))?;
                    o = o.f_narrow(3, zoff, i(rz))?;
                    let _ = o.f_add_(&weighted.f_get(i(n))?)?;
                    let mut w = w_acc.f_narrow(1, i(x), i(rx))?.f_narrow(2, i(y), i(ry))?;
                    w = w.f_narrow(3, zoff, i(rz))?;
                    let _ = w.f_add_(&map)?;
                }
            }
            // 3. slices before the next start are final: divide, crop, write
            let next = zs.get(g + 1).copied().unwrap_or(pz);
            let depth = out_acc.size()[3] as usize;
            if next > lo {
                let n = next - lo;
                let (z_from, z_to) = (lo.max(bz), next.min(bz + dims[2]));
                if z_to > z_from {
                    let o = out_acc.f_narrow(3, i(z_from - lo), i(z_to - z_from))?;
                    let w = w_acc.f_narrow(3, i(z_from - lo), i(z_to - z_from))?;
                    let done = o.f_div(&w)?; // [K, px, py, n]
                    let done =
                        done.f_narrow(1, i(bx), i(dims[0]))?.f_narrow(2, i(by), i(dims[1]))?;
                    sink.write_slab(z_from - bz, &done)?;
                }
                let keep = depth.saturating_sub(n);
                if keep > 0 {
                    let o = out_acc.f_narrow(3, i(n), i(keep))?.f_contiguous()?;
                    let w = w_acc.f_narrow(3, i(n), i(keep))?.f_contiguous()?;
                    drop((out_acc, w_acc));
                    acc = Some((o, w));
                }
                lo = next;
            } else {
                acc = Some((out_acc, w_acc));
            }
        }
        sink.finish()
    }

    /// Padded slices `s..s + rz` of `source`: `[C, px, py, rz]`, zeros outside the volume.
    fn read_padded(
        &self,
        source: &mut dyn VolumeSource,
        plan: &WindowPlan,
        s: usize,
    ) -> Result<Tensor> {
        let rz = self.roi[2];
        let (dims, [bx, by, bz]) = (plan.dims, plan.pad_before);
        let z0 = s.saturating_sub(bz).min(dims[2]);
        let z1 = (s + rz).saturating_sub(bz).min(dims[2]);
        let slab = source.read_slab(z0, z1)?;
        let c = source.channels();
        let want = [i(c), i(dims[0]), i(dims[1]), i(z1 - z0)];
        if slab.size() != want {
            return Err(Error3d::invalid(format!(
                "sliding window: the source returned {:?} for slices {z0}..{z1}, expected {want:?}",
                slab.size()
            )));
        }
        let slab = slab.f_to_kind(Kind::Float)?;
        let before_z = z0 + bz - s;
        let after_z = rz - before_z - (z1 - z0);
        let [px, py, _] = plan.padded;
        let pads =
            [i(before_z), i(after_z), i(by), i(py - by - dims[1]), i(bx), i(px - bx - dims[0])];
        if pads.iter().all(|&p| p == 0) {
            Ok(slab)
        } else {
            Ok(slab.f_constant_pad_nd(pads)?)
        }
    }
}

/// An in-memory [`VolumeSource`] over a `[C, X, Y, Z]` tensor.
#[derive(Debug)]
pub struct TensorSource {
    tensor: Tensor,
}

impl TensorSource {
    /// Wraps `tensor` (`[C, X, Y, Z]`, any kind; read as `Float`).
    pub fn new(tensor: Tensor) -> Result<Self> {
        if tensor.dim() != 4 {
            return Err(Error3d::invalid(format!(
                "tensor source: shape {:?} is not [C, X, Y, Z]",
                tensor.size()
            )));
        }
        Ok(TensorSource { tensor })
    }
}

impl VolumeSource for TensorSource {
    fn channels(&self) -> usize {
        self.tensor.size()[0] as usize
    }

    fn dims(&self) -> [usize; 3] {
        let s = self.tensor.size();
        [s[1] as usize, s[2] as usize, s[3] as usize]
    }

    fn read_slab(&mut self, z0: usize, z1: usize) -> Result<Tensor> {
        Ok(self.tensor.f_narrow(3, i(z0), i(z1.saturating_sub(z0)))?.f_to_kind(Kind::Float)?)
    }
}

/// An in-memory [`VolumeSink`] that fills a preallocated `[K, X, Y, Z]` `Float` tensor.
#[derive(Debug)]
pub struct TensorSink {
    tensor: Tensor,
    next: usize,
}

impl TensorSink {
    /// A sink for `channels` channels of `dims` on `device`.
    pub fn new(channels: usize, dims: [usize; 3], device: Device) -> Result<Self> {
        let size = [i(channels), i(dims[0]), i(dims[1]), i(dims[2])];
        Ok(TensorSink { tensor: Tensor::f_zeros(size, (Kind::Float, device))?, next: 0 })
    }

    /// Slices written so far.
    pub fn written(&self) -> usize {
        self.next
    }

    /// The filled tensor.
    pub fn into_tensor(self) -> Tensor {
        self.tensor
    }
}

impl VolumeSink for TensorSink {
    fn write_slab(&mut self, z0: usize, slab: &Tensor) -> Result<()> {
        let s = self.tensor.size();
        let n = slab.size().get(3).copied().unwrap_or(0) as usize;
        if z0 != self.next || slab.size() != [s[0], s[1], s[2], i(n)] || z0 + n > s[3] as usize {
            return Err(Error3d::invalid(format!(
                "tensor sink: slab {:?} at z {z0} does not continue {:?} at z {}",
                slab.size(),
                s,
                self.next
            )));
        }
        self.tensor.f_narrow(3, i(z0), i(n))?.f_copy_(slab)?;
        self.next += n;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let z = self.tensor.size()[3] as usize;
        if self.next != z {
            return Err(Error3d::invalid(format!(
                "tensor sink: {} of {z} slices written",
                self.next
            )));
        }
        Ok(())
    }
}

/// A [`VolumeSource`] reading slices of an uncompressed single-file NIfTI-1/-2 image by
/// seeking: x, y, z are its first three axes, its frames (the 4th and higher axes) the
/// channels. Any stored datatype and endianness; `scl_slope`/`scl_inter` are applied.
#[derive(Debug)]
pub struct NiftiSource {
    path: PathBuf,
    file: File,
    header: NiftiHeader,
    dims: [usize; 3],
    channels: usize,
}

impl NiftiSource {
    /// Opens `path` and checks its header and length.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = File::open(&path).map_err(|e| Error3d::io(&path, e))?;
        let mut head = Vec::with_capacity(540);
        (&mut file).take(540).read_to_end(&mut head).map_err(|e| Error3d::io(&path, e))?;
        if head.starts_with(&[0x1f, 0x8b]) {
            return Err(Error3d::format(
                &path,
                "gzip-compressed NIfTI cannot be read by seeking; decompress it first",
            ));
        }
        let header = parse_nifti_header(&head, &path)?;
        if !header.single_file {
            return Err(Error3d::format(&path, "a .hdr/.img pair; streaming needs a single .nii"));
        }
        let dims = header.dims3();
        let channels = header.frames().ok_or_else(|| Error3d::format(&path, "dims overflow"))?;
        let need = voxel_count(dims)
            .and_then(|n| n.checked_mul(channels))
            .and_then(|n| n.checked_mul(header.bytes_per_voxel()))
            .and_then(|n| (n as u64).checked_add(header.vox_offset))
            .ok_or_else(|| Error3d::format(&path, "dims overflow"))?;
        let len = file.metadata().map_err(|e| Error3d::io(&path, e))?.len();
        if len < need {
            return Err(Error3d::format(
                &path,
                format!("truncated: {len} bytes, {need} needed for dims {:?}", header.dims),
            ));
        }
        Ok(NiftiSource { path, file, header, dims, channels })
    }

    /// The parsed header.
    pub fn header(&self) -> &NiftiHeader {
        &self.header
    }
}

impl VolumeSource for NiftiSource {
    fn channels(&self) -> usize {
        self.channels
    }

    fn dims(&self) -> [usize; 3] {
        self.dims
    }

    fn read_slab(&mut self, z0: usize, z1: usize) -> Result<Tensor> {
        let [dx, dy, dz] = self.dims;
        if z0 > z1 || z1 > dz {
            return Err(Error3d::invalid(format!(
                "{}: slices {z0}..{z1} outside 0..{dz}",
                self.path.display()
            )));
        }
        let n = z1 - z0;
        let bpv = self.header.bytes_per_voxel();
        let (slope, inter, scaled) =
            (self.header.scl_slope, self.header.scl_inter, self.header.scaled());
        let mut chans = Vec::with_capacity(self.channels);
        let mut buf = vec![0u8; dx * dy * n * bpv];
        for c in 0..self.channels {
            let offset = self.header.vox_offset + ((c * dz + z0) * dx * dy * bpv) as u64;
            self.file.seek(SeekFrom::Start(offset)).map_err(|e| Error3d::io(&self.path, e))?;
            self.file.read_exact(&mut buf).map_err(|e| Error3d::io(&self.path, e))?;
            let vol = decode_volume(
                self.header.scalar,
                &buf,
                self.header.big_endian,
                [dx, dy, n],
                [1.0; 3],
            )
            .map_err(|e| Error3d::format(&self.path, e.to_string()))?;
            let data: Vec<f32> = match (vol, scaled) {
                (AnyVolume::F32(v), false) => v.data,
                (vol, false) => vol.to_f32().data,
                (vol, true) => {
                    vol.to_f64().data.iter().map(|&a| (a * slope + inter) as f32).collect()
                }
            };
            // File order is x fastest: [n, dy, dx] row-major, permuted to [dx, dy, n].
            let t = Tensor::from_slice(&data).f_view([i(n), i(dy), i(dx)])?.f_permute([2, 1, 0])?;
            chans.push(t);
        }
        Ok(Tensor::f_stack(&chans, 0)?)
    }
}

/// A [`VolumeSink`] writing a little-endian `f32` NIfTI-1 file (`.nii`, uncompressed) slice
/// by slice: x, y, z are its first three axes, channels its 4th (omitted for one channel).
/// It writes into a temporary file beside `path` and renames it on
/// [`VolumeSink::finish`], so an interrupted run leaves no half-written `path`.
#[derive(Debug)]
pub struct NiftiSink {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    dims: [usize; 3],
    channels: usize,
    next: usize,
}

impl NiftiSink {
    /// Creates the temporary file for an image of `channels` × `dims` voxels of `spacing`.
    pub fn create(
        path: impl AsRef<Path>,
        dims: [usize; 3],
        channels: usize,
        spacing: [f64; 3],
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if channels == 0 || dims.contains(&0) {
            return Err(Error3d::invalid(format!(
                "{}: cannot write {channels} channels of {dims:?}",
                path.display()
            )));
        }
        let mut shape = dims.to_vec();
        if channels > 1 {
            shape.push(channels);
        }
        let header = nifti1_header(&shape, spacing, 16)
            .map_err(|e| Error3d::format(&path, e.to_string()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let mut file = File::create(&tmp).map_err(|e| Error3d::io(&tmp, e))?;
        file.write_all(&header).map_err(|e| Error3d::io(&tmp, e))?;
        let total = voxel_count(dims)
            .and_then(|n| n.checked_mul(channels * 4))
            .ok_or_else(|| Error3d::invalid(format!("{}: dims overflow", path.display())))?;
        file.set_len((NIFTI1_VOX_OFFSET + total) as u64).map_err(|e| Error3d::io(&tmp, e))?;
        Ok(NiftiSink { path, tmp, file: Some(file), dims, channels, next: 0 })
    }

    /// Slices written so far.
    pub fn written(&self) -> usize {
        self.next
    }
}

impl VolumeSink for NiftiSink {
    fn write_slab(&mut self, z0: usize, slab: &Tensor) -> Result<()> {
        let [dx, dy, dz] = self.dims;
        let n = slab.size().get(3).copied().unwrap_or(0) as usize;
        let want = [i(self.channels), i(dx), i(dy), i(n)];
        if z0 != self.next || slab.size() != want || z0 + n > dz {
            return Err(Error3d::invalid(format!(
                "{}: slab {:?} at z {z0} does not continue {want:?} at z {} of {dz}",
                self.path.display(),
                slab.size(),
                self.next
            )));
        }
        let file = self.file.as_mut().ok_or_else(|| {
            Error3d::invalid(format!("{}: written after finish", self.path.display()))
        })?;
        let cpu = slab.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
        let count = dx * dy * n;
        let mut values = vec![0f32; count];
        let mut bytes = Vec::with_capacity(count * 4);
        for c in 0..self.channels {
            // [dx, dy, n] → file order (x fastest): [n, dy, dx] row-major.
            let t = cpu.f_get(i(c))?.f_permute([2, 1, 0])?.f_contiguous()?;
            t.f_copy_data(&mut values, count)?;
            bytes.clear();
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            let offset = NIFTI1_VOX_OFFSET + (c * dz + z0) * dx * dy * 4;
            file.seek(SeekFrom::Start(offset as u64)).map_err(|e| Error3d::io(&self.tmp, e))?;
            file.write_all(&bytes).map_err(|e| Error3d::io(&self.tmp, e))?;
        }
        self.next += n;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.next != self.dims[2] {
            return Err(Error3d::invalid(format!(
                "{}: {} of {} slices written",
                self.path.display(),
                self.next,
                self.dims[2]
            )));
        }
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|e| Error3d::io(&self.tmp, e))?;
            drop(file);
            std::fs::rename(&self.tmp, &self.path).map_err(|e| Error3d::io(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for NiftiSink {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
