//! WAV files through `hound`: read PCM 8/16/24/32-bit integer and 32-bit float with any channel
//! count and rate into an [`Audio`] (`[channels, frames]` in `[-1, 1]`), write 16-bit integer or
//! 32-bit float, stream a long file in fixed-size blocks ([`WavChunks`], [`WavSink`]).
//!
//! Before `hound` decodes a file, its RIFF header is checked here so that the common failures
//! get a clear, typed error naming the file: an empty file, bytes that are not a WAV, a
//! truncated header or data chunk, and encodings `hound` cannot decode (64-bit float, A-law,
//! µ-law, ADPCM, MP3-in-WAV).
//!
//! Run its tests: `cargo test -p unet-audio --test wav_io`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::error::{AudioError, Result};

/// A multi-channel signal: `samples` is `[channels, frames]`, integer PCM scaled to `[-1, 1)`
/// (a `b`-bit sample `s` becomes `s / 2^(b-1)`), float PCM as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// `[channels, frames]`.
    pub samples: Array2<f32>,
    /// Sampling rate in Hz.
    pub rate: u32,
}

impl Audio {
    /// Wraps `[channels, frames]` samples; the rate must be positive and there must be at
    /// least one channel.
    pub fn new(samples: Array2<f32>, rate: u32) -> Result<Self> {
        if rate == 0 {
            return Err(AudioError::Invalid("Audio: the sampling rate must be positive".into()));
        }
        if samples.nrows() == 0 {
            return Err(AudioError::Invalid("Audio: at least one channel is needed".into()));
        }
        Ok(Self { samples, rate })
    }

    /// A mono signal from its samples.
    pub fn from_mono(samples: Vec<f32>, rate: u32) -> Result<Self> {
        Self::new(Array1::from(samples).insert_axis(Axis(0)), rate)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.samples.nrows()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.ncols()
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / self.rate as f64
    }

    /// The mean of the channels, as a one-channel signal.
    pub fn to_mono(&self) -> Audio {
        // `samples` is public, so a zero-channel value can exist: its mono mix is silence.
        let mean = self.samples.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(self.frames()));
        Audio { samples: mean.insert_axis(Axis(0)), rate: self.rate }
    }

    /// The first channel of a mono signal, or the channel mean otherwise, as a vector.
    pub fn mono_samples(&self) -> Vec<f32> {
        if self.channels() == 1 {
            self.samples.row(0).to_vec()
        } else {
            self.to_mono().samples.row(0).to_vec()
        }
    }
}

/// The layout of a WAV file, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Number of channels.
    pub channels: usize,
    /// Sampling rate in Hz.
    pub rate: u32,
    /// Bits per sample (8, 16, 24, 32).
    pub bits: u16,
    /// `true` for IEEE float samples, `false` for integer PCM.
    pub float: bool,
    /// Frames in the data chunk.
    pub frames: usize,
}

/// The sample encoding of a written WAV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// 16-bit signed integer PCM; samples are scaled by 32768, rounded and clipped.
    Int16,
    /// 32-bit IEEE float, stored as is.
    Float32,
}

/// Reads a WAV file.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
    let mut file = BufReader::new(file);
    let info = check_header(&mut file, path)?;
    file.seek(SeekFrom::Start(0)).map_err(|e| AudioError::io(path, e))?;
    decode_all(file, path, info)
}

/// Reads a WAV held in memory (an embedded sample); `name` stands for the file in errors.
pub fn read_wav_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<Audio> {
    let name = name.as_ref();
    let info = check_header(&mut Cursor::new(bytes), name)?;
    decode_all(Cursor::new(bytes), name, info)
}

/// Reads only the header of a WAV file (checked as [`read_wav`] does).
pub fn wav_info(path: impl AsRef<Path>) -> Result<WavInfo> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
    check_header(&mut BufReader::new(file), path)
}

/// Writes `audio` as a WAV file in `format`.
pub fn write_wav(path: impl AsRef<Path>, audio: &Audio, format: WavFormat) -> Result<()> {
    let mut sink = WavSink::create(path, audio.channels(), audio.rate, format)?;
    sink.write(audio.samples.view())?;
    sink.finish()
}

fn decode_all<R: Read>(r: R, path: &Path, info: WavInfo) -> Result<Audio> {
    let mut reader = hound::WavReader::new(r).map_err(|e| wav_err(path, e))?;
    let interleaved = decode(&mut reader, path, info, info.frames)?;
    let frames = interleaved.len() / info.channels;
    let samples = Array2::from_shape_vec((frames, info.channels), interleaved)
        .map_err(|e| AudioError::Invalid(format!("{}: {e}", path.display())))?
        .reversed_axes()
        .as_standard_layout()
        .into_owned();
    Audio::new(samples, info.rate)
}

/// Decodes up to `max_frames` interleaved frames from the current position.
fn decode<R: Read>(
    reader: &mut hound::WavReader<R>,
    path: &Path,
    info: WavInfo,
    max_frames: usize,
) -> Result<Vec<f32>> {
    let n = max_frames.saturating_mul(info.channels);
    let out: std::result::Result<Vec<f32>, hound::Error> = if info.float {
        reader.samples::<f32>().take(n).collect()
    } else {
        let scale = 1.0 / (1u64 << (info.bits - 1)) as f64;
        reader.samples::<i32>().take(n).map(|s| s.map(|v| (v as f64 * scale) as f32)).collect()
    };
    out.map_err(|e| wav_err(path, e))
}

fn wav_err(path: &Path, e: hound::Error) -> AudioError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::format(path, "truncated WAV: the file ends inside its data")
        }
        hound::Error::IoError(io) => AudioError::io(path, io),
        other => AudioError::Wav { path: path.to_path_buf(), source: other },
    }
}

fn encoding_name(tag: u16) -> String {
    match tag {
        2 => "Microsoft ADPCM".into(),
        6 => "A-law".into(),
        7 => "µ-law".into(),
        0x11 => "IMA ADPCM".into(),
        0x31 => "GSM 6.10".into(),
        0x55 => "MP3".into(),
        other => format!("format tag 0x{other:04x}"),
    }
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], path: &Path, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            AudioError::format(path, format!("truncated WAV header: the file ends inside {what}"))
        } else {
            AudioError::io(path, e)
        }
    })
}

/// Walks the RIFF chunks up to `data`, checking everything `hound` would trip over later.
fn check_header<R: Read + Seek>(r: &mut R, path: &Path) -> Result<WavInfo> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| AudioError::io(path, e))?;
    r.seek(SeekFrom::Start(0)).map_err(|e| AudioError::io(path, e))?;
    if len == 0 {
        return Err(AudioError::format(path, "empty file (0 bytes), expected a WAV"));
    }
    let mut head = [0u8; 12];
    let got = r.read(&mut head).map_err(|e| AudioError::io(path, e))?;
    if got < 4 || &head[..4] != b"RIFF" {
        let shown: String = head[..got.min(4)].escape_ascii().to_string();
        let hint = match &head[..got.min(4)] {
            b"RF64" => " (RF64 is not supported)",
            b"RIFX" => " (big-endian RIFX is not supported)",
            _ => "",
        };
        return Err(AudioError::format(
            path,
            format!("not a WAV file: it starts with \"{shown}\" instead of \"RIFF\"{hint}"),
        ));
    }
    if got < 12 {
        read_exact_or(r, &mut head[got..], path, "the RIFF header")?;
    }
    if &head[8..12] != b"WAVE" {
        return Err(AudioError::format(
            path,
            format!("not a WAV file: a RIFF of type \"{}\"", head[8..12].escape_ascii()),
        ));
    }
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None;
    loop {
        let mut ch = [0u8; 8];
        read_exact_or(r, &mut ch, path, "a chunk header (no data chunk found)")?;
        let size = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]) as u64;
        let pos = r.stream_position().map_err(|e| AudioError::io(path, e))?;
        match &ch[..4] {
            b"fmt " => {
                if size < 16 {
                    return Err(AudioError::format(path, format!("fmt chunk of {size} bytes")));
                }
                let mut f = vec![0u8; size.min(40) as usize];
                read_exact_or(r, &mut f, path, "the fmt chunk")?;
                let u16_at = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
                let mut tag = u16_at(0);
                if tag == 0xFFFE && f.len() >= 26 {
                    tag = u16_at(24); // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID's first word
                }
                let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                fmt = Some((tag, u16_at(2), rate, u16_at(12), u16_at(14)));
            }
            b"data" => {
                let Some((tag, channels, rate, block_align, bits)) = fmt else {
                    return Err(AudioError::format(path, "no fmt chunk before the data chunk"));
                };
                let float = match (tag, bits) {
                    (1, 8 | 16 | 24 | 32) => false,
                    (3, 32) => true,
                    (3, b) => {
                        return Err(AudioError::format(
                            path,
                            format!("unsupported WAV encoding: {b}-bit float (32-bit float is supported)"),
                        ))
                    }
                    (1, b) => {
                        return Err(AudioError::format(
                            path,
                            format!("unsupported WAV encoding: {b}-bit integer PCM (8/16/24/32 are supported)"),
                        ))
                    }
                    (t, _) => {
                        return Err(AudioError::format(
                            path,
                            format!(
                                "unsupported WAV encoding: {} (integer PCM and 32-bit float are supported)",
                                encoding_name(t)
                            ),
                        ))
                    }
                };
                if channels == 0 || rate == 0 {
                    return Err(AudioError::format(
                        path,
                        format!("invalid fmt chunk: {channels} channels at {rate} Hz"),
                    ));
                }
                let frame = channels as u64 * (bits as u64 / 8);
                if block_align as u64 != frame {
                    return Err(AudioError::format(
                        path,
                        format!("invalid fmt chunk: block align {block_align}, expected {frame}"),
                    ));
                }
                let held = len.saturating_sub(pos);
                if size > held {
                    return Err(AudioError::format(
                        path,
                        format!(
                            "truncated WAV: the data chunk declares {} frames ({size} bytes) but the file holds {} ({held} bytes)",
                            size / frame,
                            held / frame
                        ),
                    ));
                }
                if size % frame != 0 {
                    return Err(AudioError::format(
                        path,
                        format!("data chunk of {size} bytes is not a whole number of {frame}-byte frames"),
                    ));
                }
                return Ok(WavInfo {
                    channels: channels as usize,
                    rate,
                    bits,
                    float,
                    frames: (size / frame) as usize,
                });
            }
            _ => {}
        }
        let next = pos + size + (size & 1);
        if next > len {
            return Err(AudioError::format(
                path,
                format!(
                    "truncated WAV: chunk \"{}\" runs past the end of the file",
                    ch[..4].escape_ascii()
                ),
            ));
        }
        r.seek(SeekFrom::Start(next)).map_err(|e| AudioError::io(path, e))?;
    }
}

/// A WAV file read in blocks of a fixed number of frames, so that a long file is processed in
/// bounded memory. Each item is `[channels, n]` with `n == block` except possibly the last.
pub struct WavChunks {
    reader: hound::WavReader<BufReader<File>>,
    path: PathBuf,
    info: WavInfo,
    block: usize,
    done: usize,
}

impl WavChunks {
    /// Opens `path` (header checked as [`read_wav`] does) to read `block` frames at a time.
    pub fn open(path: impl AsRef<Path>, block: usize) -> Result<Self> {
        let path = path.as_ref();
        if block == 0 {
            return Err(AudioError::Invalid("WavChunks: block must be positive".into()));
        }
        let info = wav_info(path)?;
        let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| wav_err(path, e))?;
        Ok(Self { reader, path: path.to_path_buf(), info, block, done: 0 })
    }

    /// The file's layout.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// Frames not read yet.
    pub fn remaining(&self) -> usize {
        self.info.frames - self.done
    }
}

impl Iterator for WavChunks {
    type Item = Result<Array2<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.block.min(self.remaining());
        if n == 0 {
            return None;
        }
        let ch = self.info.channels;
        let block = decode(&mut self.reader, &self.path, self.info, n).and_then(|v| {
            if v.len() != n * ch {
                return Err(AudioError::format(&self.path, "truncated WAV: short data chunk"));
            }
            Ok(Array2::from_shape_vec((n, ch), v)
                .map_err(|e| AudioError::format(&self.path, format!("WAV block: {e}")))?
                .reversed_axes()
                .as_standard_layout()
                .into_owned())
        });
        self.done += n;
        if block.is_err() {
            self.done = self.info.frames; // stop after the first error
        }
        Some(block)
    }
}

/// A WAV file written block by block (`[channels, n]` each); call [`WavSink::finish`] to
/// complete the header.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    channels: usize,
    format: WavFormat,
}

impl WavSink {
    /// Creates (or truncates) `path` for `channels` channels at `rate` Hz.
    pub fn create(
        path: impl AsRef<Path>,
        channels: usize,
        rate: u32,
        format: WavFormat,
    ) -> Result<Self> {
        let path = path.as_ref();
        if channels == 0 || channels > u16::MAX as usize || rate == 0 {
            return Err(AudioError::Invalid(format!(
                "{}: cannot write {channels} channels at {rate} Hz",
                path.display()
            )));
        }
        let (bits_per_sample, sample_format) = match format {
            WavFormat::Int16 => (16, hound::SampleFormat::Int),
            WavFormat::Float32 => (32, hound::SampleFormat::Float),
        };
        let spec = hound::WavSpec {
            channels: channels as u16,
            sample_rate: rate,
            bits_per_sample,
            sample_format,
        };
        let file = File::create(path).map_err(|e| AudioError::io(path, e))?;
        let writer =
            hound::WavWriter::new(BufWriter::new(file), spec).map_err(|e| wav_err(path, e))?;
        Ok(Self { writer, path: path.to_path_buf(), channels, format })
    }

    /// Appends `[channels, n]` frames.
    pub fn write(&mut self, block: ArrayView2<f32>) -> Result<()> {
        if block.nrows() != self.channels {
            return Err(AudioError::Invalid(format!(
                "{}: block has {} channels, the file {}",
                self.path.display(),
                block.nrows(),
                self.channels
            )));
        }
        let path = &self.path;
        // `t()` iterates frame by frame, channels interleaved.
        for &v in block.t().iter() {
            let r = match self.format {
                WavFormat::Int16 => self
                    .writer
                    .write_sample((v as f64 * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
                WavFormat::Float32 => self.writer.write_sample(v),
            };
            r.map_err(|e| wav_err(path, e))?;
        }
        Ok(())
    }

    /// Writes the final header.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.writer.finalize().map_err(|e| wav_err(&path, e))
    }
}
