//! Framing a long signal into overlapping chunks and putting processed chunks back together by
//! overlap-add with a cross-fade, in memory ([`Chunker::split`], [`Chunker::overlap_add`]) or
//! streamed from one WAV file to another ([`process_file`]).
//!
//! Chunk `k` covers frames `[k·H, k·H + C)` with hop `H = C − O` (chunk `C`, overlap `O ≤ C/2`);
//! the last chunk is zero-padded. Where two chunks overlap, the earlier one fades out with
//! `1 − w(i)` and the later one fades in with `w(i)`, `i = 0..O`:
//!
//! * [`Fade::Linear`]: `w(i) = (i + ½) / O`;
//! * [`Fade::Hann`]: `w(i) = sin²(π (i + ½) / (2O))` (half a Hann window; `1 − w = cos²`).
//!
//! The weights sum to one at every frame, so identity processing reproduces the input exactly
//! (the blend is done in f64 and rounded once to f32). The first chunk's head and the last
//! chunk's tail are taken with weight one.
//!
//! Run its tests: `cargo test -p unet-audio --test chunk`.

use std::path::Path;

use ndarray::{s, Array2, ArrayView2, Axis};

use crate::error::{AudioError, Result};
use crate::wav::{WavChunks, WavFormat, WavSink};

/// The cross-fade used in the overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fade {
    /// Linear ramp.
    Linear,
    /// Half a Hann window (raised cosine), smooth at both ends.
    #[default]
    Hann,
}

/// Chunk geometry: `chunk` frames per chunk, `overlap` frames shared by neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunker {
    /// Frames per chunk (`C`).
    pub chunk: usize,
    /// Frames shared by consecutive chunks (`O ≤ C/2`).
    pub overlap: usize,
    /// Cross-fade shape.
    pub fade: Fade,
    fade_in: Vec<f64>,
}

impl Chunker {
    /// Validates `0 < chunk` and `overlap ≤ chunk / 2`.
    pub fn new(chunk: usize, overlap: usize, fade: Fade) -> Result<Self> {
        if chunk == 0 || 2 * overlap > chunk {
            return Err(AudioError::Invalid(format!(
                "Chunker: need chunk > 0 and overlap ≤ chunk/2, got chunk {chunk}, overlap {overlap}"
            )));
        }
        let o = overlap as f64;
        let fade_in = (0..overlap)
            .map(|i| {
                let u = (i as f64 + 0.5) / o;
                match fade {
                    Fade::Linear => u,
                    Fade::Hann => (std::f64::consts::FRAC_PI_2 * u).sin().powi(2),
                }
            })
            .collect();
        Ok(Self { chunk, overlap, fade, fade_in })
    }

    /// Hop between chunk starts, `chunk − overlap`.
    pub fn hop(&self) -> usize {
        self.chunk - self.overlap
    }

    /// The fade-in weights `w(i)`, `i = 0..overlap`.
    pub fn fade_in(&self) -> &[f64] {
        &self.fade_in
    }

    /// Number of chunks for a signal of `frames` frames: one at least, then as many as needed
    /// for `(K − 1)·H + C ≥ frames`.
    pub fn count(&self, frames: usize) -> usize {
        if frames <= self.chunk {
            1
        } else {
            1 + (frames - self.chunk).div_ceil(self.hop())
        }
    }

    /// Splits `[channels, frames]` into `count(frames)` chunks of `[channels, chunk]`
    /// (the last zero-padded).
    pub fn split(&self, x: ArrayView2<f32>) -> Vec<Array2<f32>> {
        let (ch, n) = x.dim();
        (0..self.count(n))
            .map(|k| {
                let start = k * self.hop();
                let end = (start + self.chunk).min(n);
                let mut c = Array2::zeros((ch, self.chunk));
                c.slice_mut(s![.., ..end - start]).assign(&x.slice(s![.., start..end]));
                c
            })
            .collect()
    }

    /// Overlap-adds chunks (as produced by [`Chunker::split`], then processed) back into
    /// `[channels, frames]`.
    pub fn overlap_add(&self, chunks: &[Array2<f32>], frames: usize) -> Result<Array2<f32>> {
        let Some(first) = chunks.first() else {
            return Err(AudioError::Invalid("overlap_add: no chunks".into()));
        };
        if chunks.len() != self.count(frames) {
            return Err(AudioError::Invalid(format!(
                "overlap_add: {} chunks for {frames} frames, expected {}",
                chunks.len(),
                self.count(frames)
            )));
        }
        let mut out = Array2::zeros((first.nrows(), 0));
        let mut ola = OverlapAdd::new(self.clone());
        for c in chunks {
            let done = ola.push(c.view())?;
            out.append(Axis(1), done.view()).map_err(|e| AudioError::Invalid(e.to_string()))?;
        }
        out.append(Axis(1), ola.finish().view()).map_err(|e| AudioError::Invalid(e.to_string()))?;
        Ok(out.slice(s![.., ..frames]).to_owned())
    }
}

/// Streaming overlap-add: push processed chunks in order; each push returns the `hop` frames
/// that are final, [`OverlapAdd::finish`] the last `overlap`.
#[derive(Debug, Clone)]
pub struct OverlapAdd {
    geometry: Chunker,
    /// The previous chunk's last `overlap` frames, not yet faded out.
    pending: Option<Array2<f32>>,
}

impl OverlapAdd {
    /// An empty assembler.
    pub fn new(geometry: Chunker) -> Self {
        Self { geometry, pending: None }
    }

    /// Adds the next chunk (`[channels, chunk]`) and returns the frames now complete
    /// (`[channels, hop]`).
    pub fn push(&mut self, chunk: ArrayView2<f32>) -> Result<Array2<f32>> {
        let (c, o) = (self.geometry.chunk, self.geometry.overlap);
        if chunk.ncols() != c {
            return Err(AudioError::Invalid(format!(
                "overlap-add: a chunk of {} frames, expected {c}",
                chunk.ncols()
            )));
        }
        let mut done = chunk.slice(s![.., ..c - o]).to_owned();
        if let Some(prev) = self.pending.take() {
            if prev.nrows() != chunk.nrows() {
                return Err(AudioError::Invalid(format!(
                    "overlap-add: a chunk of {} channels after one of {}",
                    chunk.nrows(),
                    prev.nrows()
                )));
            }
            for (i, &w) in self.geometry.fade_in.iter().enumerate() {
                let mut col = done.column_mut(i);
                for (d, &p) in col.iter_mut().zip(prev.column(i)) {
                    *d = (*d as f64 * w + p as f64 * (1.0 - w)) as f32;
                }
            }
        }
        self.pending = Some(chunk.slice(s![.., c - o..]).to_owned());
        Ok(done)
    }

    /// The last chunk's tail (`[channels, overlap]`, weight one).
    pub fn finish(self) -> Array2<f32> {
        self.pending.unwrap_or_else(|| Array2::zeros((0, 0)))
    }
}

/// What [`process_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStats {
    /// Frames read (and written).
    pub frames: usize,
    /// Chunks passed through the closure.
    pub chunks: usize,
    /// Channels.
    pub channels: usize,
    /// Sampling rate in Hz.
    pub rate: u32,
}

/// Streams the WAV `input` through `f` chunk by chunk (`[channels, chunk]` in, the same shape
/// out) and writes the overlap-added result to `output`, holding only about two chunks in
/// memory. The output has the input's rate, channels and length; it is 16-bit when the input is
/// 16-bit and 32-bit float otherwise. Chunks are cross-faded with [`Fade::Hann`].
pub fn process_file<F>(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    chunk: usize,
    overlap: usize,
    mut f: F,
) -> Result<ProcessStats>
where
    F: FnMut(ArrayView2<f32>) -> Result<Array2<f32>>,
{
    let geometry = Chunker::new(chunk, overlap, Fade::Hann)?;
    let hop = geometry.hop();
    let mut reader = WavChunks::open(input.as_ref(), hop)?;
    let info = reader.info();
    let format = if !info.float && info.bits == 16 { WavFormat::Int16 } else { WavFormat::Float32 };
    let mut sink = WavSink::create(output.as_ref(), info.channels, info.rate, format)?;
    let ch = info.channels;
    let mut buf: Array2<f32> = Array2::zeros((ch, 0));
    let mut ola = OverlapAdd::new(geometry);
    let (mut chunks, mut written, total) = (0usize, 0usize, info.frames);
    let write = |sink: &mut WavSink, block: ArrayView2<f32>, written: &mut usize| {
        let n = block.ncols().min(total - *written);
        *written += n;
        sink.write(block.slice(s![.., ..n]))
    };
    loop {
        while buf.ncols() < chunk {
            match reader.next() {
                Some(block) => buf
                    .append(Axis(1), block?.view())
                    .map_err(|e| AudioError::Invalid(e.to_string()))?,
                None => break,
            }
        }
        // Chunk k is needed when it is the first or reaches past chunk k−1 (which ended
        // `overlap` frames into the buffer).
        if chunks > 0 && buf.ncols() <= overlap {
            break;
        }
        let mut c = Array2::zeros((ch, chunk));
        let have = buf.ncols().min(chunk);
        c.slice_mut(s![.., ..have]).assign(&buf.slice(s![.., ..have]));
        let y = f(c.view())?;
        if y.dim() != (ch, chunk) {
            return Err(AudioError::Invalid(format!(
                "process_file: the closure returned {:?} for a {:?} chunk",
                y.dim(),
                (ch, chunk)
            )));
        }
        chunks += 1;
        let done = ola.push(y.view())?;
        write(&mut sink, done.view(), &mut written)?;
        let drop = hop.min(buf.ncols());
        buf = buf.slice(s![.., drop..]).to_owned();
        if buf.ncols() == 0 && reader.remaining() == 0 {
            break;
        }
    }
    let tail = ola.finish();
    if written < total {
        write(&mut sink, tail.view(), &mut written)?;
    }
    sink.finish()?;
    Ok(ProcessStats { frames: written, chunks, channels: ch, rate: info.rate })
}

/// Streams the WAV `input` through `f` in windows of `context + chunk + context` frames
/// (`[channels, chunk + 2·context]`, zeros before the start and after the end) and writes the
/// `[channels, chunk]` blocks it returns, back to back, to `output`: for models that produce
/// the centre of their input (valid convolutions, receptive fields) no overlap-add is needed
/// and each output frame sees its real neighbours. Holds about `2·chunk + 2·context` frames in
/// memory. The output has the input's rate, channels and length (16-bit when the input is,
/// else 32-bit float).
pub fn process_file_with_context<F>(
    input: impl AsRef<Path>,
    output: impl AsRef<Path>,
    chunk: usize,
    context: usize,
    mut f: F,
) -> Result<ProcessStats>
where
    F: FnMut(ArrayView2<f32>) -> Result<Array2<f32>>,
{
    if chunk == 0 {
        return Err(AudioError::Invalid(
            "process_file_with_context: chunk must be positive".into(),
        ));
    }
    let mut reader = WavChunks::open(input.as_ref(), chunk)?;
    let info = reader.info();
    let format = if !info.float && info.bits == 16 { WavFormat::Int16 } else { WavFormat::Float32 };
    let mut sink = WavSink::create(output.as_ref(), info.channels, info.rate, format)?;
    let (ch, total) = (info.channels, info.frames);
    // `buf` holds frames [start, start + buf.ncols()); `start` is negative at first (zeros).
    let mut buf: Array2<f32> = Array2::zeros((ch, context));
    let mut start = -(context as i64);
    let (mut s, mut chunks) = (0usize, 0usize);
    let append = |buf: &mut Array2<f32>, block: ArrayView2<f32>| {
        buf.append(Axis(1), block).map_err(|e| AudioError::Invalid(e.to_string()))
    };
    while s < total {
        let end = (s + chunk + context) as i64;
        while start + (buf.ncols() as i64) < end {
            match reader.next() {
                Some(block) => append(&mut buf, block?.view())?,
                None => {
                    let missing = (end - start - buf.ncols() as i64) as usize;
                    append(&mut buf, Array2::zeros((ch, missing)).view())?;
                }
            }
        }
        let off = (s as i64 - context as i64 - start) as usize;
        let y = f(buf.slice(s![.., off..off + chunk + 2 * context]))?;
        if y.dim() != (ch, chunk) {
            return Err(AudioError::Invalid(format!(
                "process_file_with_context: the closure returned {:?}, expected {:?}",
                y.dim(),
                (ch, chunk)
            )));
        }
        let n = chunk.min(total - s);
        sink.write(y.slice(s![.., ..n]))?;
        chunks += 1;
        s += chunk;
        let drop = ((s as i64 - context as i64 - start).max(0) as usize).min(buf.ncols());
        buf = buf.slice(s![.., drop..]).to_owned();
        start += drop as i64;
    }
    sink.finish()?;
    Ok(ProcessStats { frames: total, chunks, channels: ch, rate: info.rate })
}
