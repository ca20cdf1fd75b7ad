//! Decoding: [`VideoReader`] (streaming), [`read_video`] (whole clip), [`probe`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tch::Tensor;
use video_rs::ffmpeg;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame::Video as AvFrame;

use super::{bytes_tensor, ensure_ffmpeg, hwc_to_chw, Clip, DecodePolicy};
use crate::{Result, VideoError};

/// Timestamps closer than this (seconds) count as equal when resampling.
const EPS: f64 = 1e-6;

/// What ffmpeg knows about a video before decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Frame width of the video stream.
    pub width: i64,
    /// Frame height of the video stream.
    pub height: i64,
    /// Frame rate (the stream's average rate, else its base rate).
    pub fps: f64,
    /// Number of frames the container declares, when it does (MP4 does).
    pub frame_count: Option<usize>,
    /// Stream duration in seconds, when known.
    pub duration: Option<f64>,
    /// The codec's short name (`h264`, `mpeg1video`, …).
    pub codec: String,
    /// The demuxer's name (`mov,mp4,m4a,3gp,3g2,mj2`, …).
    pub container: String,
}

/// Opens `path` and reports its video stream without decoding a frame.
pub fn probe(path: impl AsRef<Path>) -> Result<VideoInfo> {
    let reader = VideoReader::open(path, &DecodePolicy::default())?;
    Ok(reader.info.clone())
}

/// Decodes the whole clip at `path` into memory following `policy`.
///
/// Fails with [`VideoError::Format`] when the file holds no decodable frame, and with
/// [`VideoError::Invalid`] when `policy.start_frame` skips every frame.
pub fn read_video(path: impl AsRef<Path>, policy: &DecodePolicy) -> Result<Clip> {
    let path = path.as_ref();
    let mut reader = VideoReader::open(path, policy)?;
    let frame_len = reader.frame_len();
    let hint = reader.frame_count_hint().unwrap_or(0).min(1 << 16);
    // reserve for the expected frames, at most 256 MiB up front
    let mut bytes = Vec::with_capacity(hint.saturating_mul(frame_len).min(256 << 20));
    let mut t = 0i64;
    while let Some(f) = reader.next_frame_bytes()? {
        bytes.extend_from_slice(&f);
        t += 1;
    }
    if t == 0 {
        return Err(if reader.decoded == 0 {
            VideoError::format(path, "the video stream holds no decodable frame")
        } else {
            VideoError::invalid(format!(
                "{}: start_frame {} skips all {} frames",
                path.display(),
                policy.start_frame,
                reader.decoded
            ))
        });
    }
    let (h, w) = reader.size();
    let frames = bytes_tensor(&bytes, &[t, reader.channels(), h, w])?;
    Ok(Clip { frames, fps: reader.fps() })
}

/// A source frame (planar `[C, H, W]` bytes) with its presentation time in seconds.
struct Timed {
    t: f64,
    frame: Vec<u8>,
}

/// Streams the frames of a video file in bounded memory.
///
/// ```no_run
/// # fn main() -> unet_video::Result<()> {
/// use unet_video::io::{DecodePolicy, VideoReader};
/// let policy = DecodePolicy { grey: true, ..Default::default() };
/// let mut reader = VideoReader::open("long.mp4", &policy)?;
/// for window in reader.windows(16, 16)? {
///     let window = window?; // Uint8 [16, 1, H, W]
/// #   let _ = window;
/// }
/// # Ok(()) }
/// ```
pub struct VideoReader {
    path: PathBuf,
    policy: DecodePolicy,
    info: VideoInfo,
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Video,
    /// Seconds per tick of the stream's time base.
    time_base: f64,
    /// The RGB24 / GRAY8 converter, keyed by the input format and size it was built for.
    scaler: Option<((Pixel, u32, u32), scaling::Context)>,
    /// Output size (h, w).
    out: (i64, i64),
    draining: bool,
    finished: bool,
    /// Source frames decoded so far (skipped ones included).
    decoded: usize,
    /// Output frames returned so far.
    emitted: usize,
    last_t: Option<f64>,
    // resampling state (policy.fps set)
    t0: Option<f64>,
    tick: u64,
    prev: Option<Timed>,
    look: Option<Timed>,
    source_done: bool,
}

fn av_err(path: &Path, what: &str, e: ffmpeg::Error) -> VideoError {
    VideoError::format(path, format!("{what}: {e}"))
}

fn rational(r: ffmpeg::Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

impl VideoReader {
    /// Opens `path` for decoding with `policy`. Reads the container header only.
    pub fn open(path: impl AsRef<Path>, policy: &DecodePolicy) -> Result<VideoReader> {
        let path = path.as_ref().to_path_buf();
        policy.validate()?;
        let meta = std::fs::metadata(&path).map_err(|e| VideoError::io(&path, e))?;
        if meta.is_dir() {
            return Err(VideoError::format(&path, "is a directory, not a video file"));
        }
        if meta.len() == 0 {
            return Err(VideoError::format(&path, "empty file, not a video"));
        }
        let url = path.to_str().ok_or_else(|| {
            VideoError::invalid(format!("{}: ffmpeg needs a UTF-8 path", path.display()))
        })?;
        ensure_ffmpeg()?;
        // `file:` keeps a name with a colon from being taken for a protocol.
        let input = ffmpeg::format::input(&format!("file:{url}"))
            .map_err(|e| av_err(&path, "ffmpeg cannot open it as a video", e))?;
        let container = input.format().name().to_string();
        // ffmpeg also opens still images (png_pipe, image2 …) as one-frame "videos".
        if container.ends_with("_pipe") || container.starts_with("image2") {
            return Err(VideoError::format(
                &path,
                format!("a still image ({container}), not a video container"),
            ));
        }
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| VideoError::format(&path, "no video stream"))?;
        if stream.disposition().contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC) {
            return Err(VideoError::format(&path, "its only picture is attached cover art"));
        }
        let stream_index = stream.index();
        let time_base = rational(stream.time_base())
            .ok_or_else(|| VideoError::format(&path, "the video stream has no time base"))?;
        let fps = rational(stream.avg_frame_rate()).or_else(|| rational(stream.rate()));
        let frames = stream.frames();
        let duration = (stream.duration() > 0).then(|| stream.duration() as f64 * time_base);
        let mut ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| av_err(&path, "bad codec parameters", e))?;
        ctx.set_threading(ffmpeg::codec::threading::Config {
            kind: ffmpeg::codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let mut decoder = ctx.decoder();
        decoder.set_packet_time_base(stream.time_base());
        let decoder = decoder.video().map_err(|e| av_err(&path, "cannot open the decoder", e))?;
        let codec = decoder.codec().map(|c| c.name().to_string()).unwrap_or_default();
        let (w, h) = (decoder.width(), decoder.height());
        if w == 0 || h == 0 || decoder.format() == Pixel::None {
            return Err(VideoError::format(&path, "the video stream has no frame size or format"));
        }
        let fps = fps.ok_or_else(|| VideoError::format(&path, "the video stream has no rate"))?;
        let info = VideoInfo {
            width: w as i64,
            height: h as i64,
            fps,
            frame_count: (frames > 0).then_some(frames as usize),
            duration,
            codec,
            container,
        };
        let out = policy.size.unwrap_or((h as i64, w as i64));
        Ok(VideoReader {
            path,
            policy: policy.clone(),
            info,
            input,
            stream_index,
            decoder,
            time_base,
            scaler: None,
            out,
            draining: false,
            finished: false,
            decoded: 0,
            emitted: 0,
            last_t: None,
            t0: None,
            tick: 0,
            prev: None,
            look: None,
            source_done: false,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the container declares (source size, rate, frame count).
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Output frame rate: the policy's, else the source's.
    pub fn fps(&self) -> f64 {
        self.policy.fps.unwrap_or(self.info.fps)
    }

    /// Output frame size `(h, w)`.
    pub fn size(&self) -> (i64, i64) {
        self.out
    }

    /// Output channels: 1 for grey, 3 for RGB.
    pub fn channels(&self) -> i64 {
        if self.policy.grey {
            1
        } else {
            3
        }
    }

    /// The number of frames this reader should yield, from the container's frame count (or
    /// duration × rate) after `start_frame`, resampling and `max_frames`; `None` when the
    /// container declares neither. A hint: the decoded count is what counts.
    pub fn frame_count_hint(&self) -> Option<usize> {
        let src = self
            .info
            .frame_count
            .or_else(|| self.info.duration.map(|d| (d * self.info.fps).round() as usize))?;
        let src = src.saturating_sub(self.policy.start_frame);
        let n = match self.policy.fps {
            Some(fps) => (src as f64 * fps / self.info.fps - EPS).ceil().max(0.0) as usize,
            None => src,
        };
        Some(self.policy.max_frames.map_or(n, |m| n.min(m)))
    }

    /// The next output frame, `Uint8 [C, H, W]`, or `None` at the end of the stream. After an
    /// error (corrupt or truncated data) the reader is finished: later calls return `None`.
    pub fn next_frame(&mut self) -> Result<Option<Tensor>> {
        let (c, (h, w)) = (self.channels(), self.size());
        match self.next_frame_bytes()? {
            Some(f) => Ok(Some(bytes_tensor(&f, &[c, h, w])?)),
            None => Ok(None),
        }
    }

    /// Bytes of one output frame, `C × H × W`.
    fn frame_len(&self) -> usize {
        (self.channels() * self.out.0 * self.out.1) as usize
    }

    /// The next output frame as planar bytes.
    fn next_frame_bytes(&mut self) -> Result<Option<Vec<u8>>> {
        if self.finished || self.policy.max_frames.is_some_and(|m| self.emitted >= m) {
            return Ok(None);
        }
        let next = match self.policy.fps {
            None => self.next_source().map(|s| s.map(|s| s.frame)),
            Some(fps) => self.next_resampled(fps),
        };
        match next {
            Ok(Some(f)) => {
                self.emitted += 1;
                Ok(Some(f))
            }
            // the end, or an error: either way the stream is over (an error is not repeated)
            other => {
                self.finished = true;
                other
            }
        }
    }

    /// Fixed-length windows `Uint8 [len, C, H, W]` of consecutive output frames, starting every
    /// `stride` frames (`stride < len` overlaps, `stride > len` skips frames). A last window
    /// shorter than `len` is dropped. At most `len` frames are buffered; the iterator stops
    /// after the first error it yields.
    pub fn windows(&mut self, len: usize, stride: usize) -> Result<Windows<'_>> {
        if len == 0 || stride == 0 {
            return Err(VideoError::invalid(format!(
                "windows: len and stride must be at least 1, got len {len}, stride {stride}"
            )));
        }
        Ok(Windows {
            reader: self,
            len,
            stride,
            buf: VecDeque::with_capacity(len),
            skip: 0,
            done: false,
        })
    }

    /// Frame-rate resampling: the source frame nearest each output tick.
    fn next_resampled(&mut self, fps: f64) -> Result<Option<Vec<u8>>> {
        if self.prev.is_none() {
            match self.next_source()? {
                Some(first) => {
                    self.t0 = Some(first.t);
                    self.prev = Some(first);
                }
                None => return Ok(None),
            }
        }
        let tick = self.t0.unwrap_or(0.0) + self.tick as f64 / fps;
        // `look`: the first source frame at or after the tick; earlier ones become `prev`.
        while !self.source_done && self.look.as_ref().is_none_or(|l| l.t < tick - EPS) {
            if let Some(l) = self.look.take() {
                self.prev = Some(l);
            }
            match self.next_source()? {
                Some(s) => self.look = Some(s),
                None => self.source_done = true,
            }
        }
        let Some(prev) = self.prev.as_ref() else { return Ok(None) };
        let chosen = match self.look.as_ref() {
            Some(l) if (prev.t - tick).abs() > (l.t - tick).abs() + EPS => l,
            Some(_) => prev,
            // past the last frame (`prev`): the tick must fall inside its duration
            None if tick < prev.t + 1.0 / self.info.fps - EPS => prev,
            None => return Ok(None),
        };
        self.tick += 1;
        Ok(Some(chosen.frame.clone()))
    }

    /// The next source frame after `start_frame`, converted, with its time.
    fn next_source(&mut self) -> Result<Option<Timed>> {
        loop {
            let Some(raw) = self.decode_raw()? else { return Ok(None) };
            let index = self.decoded;
            self.decoded += 1;
            let t = match raw.timestamp() {
                Some(ts) => ts as f64 * self.time_base,
                None => index as f64 / self.info.fps,
            };
            // keep times non-decreasing for the resampler
            let t = self.last_t.map_or(t, |l| t.max(l));
            self.last_t = Some(t);
            if index < self.policy.start_frame {
                continue;
            }
            let frame = self.convert(&raw, index)?;
            return Ok(Some(Timed { t, frame }));
        }
    }

    /// Pulls the next decoded frame out of ffmpeg, feeding packets as needed.
    fn decode_raw(&mut self) -> Result<Option<AvFrame>> {
        let mut frame = AvFrame::empty();
        loop {
            match self.decoder.receive_frame(&mut frame) {
                Ok(()) => {
                    if frame.is_corrupt() || frame.has_decode_errors() {
                        return Err(VideoError::format(
                            &self.path,
                            format!(
                                "frame {} decoded with errors (corrupt or truncated data)",
                                self.decoded
                            ),
                        ));
                    }
                    return Ok(Some(frame));
                }
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    if self.draining {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    let what = format!("cannot decode frame {}", self.decoded);
                    return Err(av_err(&self.path, &what, e));
                }
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    if packet.is_corrupt() {
                        return Err(VideoError::format(
                            &self.path,
                            format!(
                                "truncated or corrupt packet after frame {} (partial file?)",
                                self.decoded
                            ),
                        ));
                    }
                    if let Err(e) = self.decoder.send_packet(&packet) {
                        let what = format!("cannot decode the packet after frame {}", self.decoded);
                        return Err(av_err(&self.path, &what, e));
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    self.draining = true;
                    self.decoder
                        .send_eof()
                        .map_err(|e| av_err(&self.path, "cannot flush the decoder", e))?;
                }
                Err(e) => {
                    let what = format!("cannot read past frame {} (truncated?)", self.decoded);
                    return Err(av_err(&self.path, &what, e));
                }
            }
        }
    }

    /// RGB24 (or GRAY8 when grey) at the output size, as `[C, H, W]`.
    fn convert(&mut self, raw: &AvFrame, index: usize) -> Result<Vec<u8>> {
        let key = (raw.format(), raw.width(), raw.height());
        let (h, w) = self.out;
        let (dst, c) = if self.policy.grey { (Pixel::GRAY8, 1) } else { (Pixel::RGB24, 3) };
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                dst,
                w as u32,
                h as u32,
                scaling::Flags::AREA
                    | scaling::Flags::ACCURATE_RND
                    | scaling::Flags::FULL_CHR_H_INT
                    | scaling::Flags::BITEXACT,
            )
            .map_err(|e| {
                av_err(&self.path, &format!("cannot convert frame {index} ({key:?})"), e)
            })?;
            self.scaler = Some((key, ctx));
        }
        let mut out = AvFrame::empty();
        if let Some((_, scaler)) = self.scaler.as_mut() {
            scaler
                .run(raw, &mut out)
                .map_err(|e| av_err(&self.path, &format!("cannot convert frame {index}"), e))?;
        }
        if out.format() != dst
            || out.planes() < 1
            || (out.width() as i64, out.height() as i64) != (w, h)
        {
            return Err(VideoError::format(&self.path, format!("frame {index}: bad conversion")));
        }
        let (row, stride) = ((c * w) as usize, out.stride(0));
        let data = out.data(0);
        let mut bytes = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            bytes.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        hwc_to_chw(bytes, h as usize, w as usize, c as usize)
    }
}

/// Iterator of fixed-length windows from [`VideoReader::windows`].
pub struct Windows<'a> {
    reader: &'a mut VideoReader,
    len: usize,
    stride: usize,
    buf: VecDeque<Vec<u8>>,
    skip: usize,
    done: bool,
}

impl Iterator for Windows<'_> {
    type Item = Result<Tensor>;

    fn next(&mut self) -> Option<Result<Tensor>> {
        if self.done {
            return None;
        }
        while self.skip > 0 || self.buf.len() < self.len {
            match self.reader.next_frame_bytes() {
                Ok(Some(_)) if self.skip > 0 => self.skip -= 1,
                Ok(Some(f)) => self.buf.push_back(f),
                Ok(None) => {
                    self.done = true;
                    self.buf.clear();
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(e));
                }
            }
        }
        let (c, (h, w)) = (self.reader.channels(), self.reader.size());
        let mut bytes = Vec::with_capacity(self.len * self.reader.frame_len());
        for f in &self.buf {
            bytes.extend_from_slice(f);
        }
        let window = bytes_tensor(&bytes, &[self.len as i64, c, h, w]);
        if self.stride >= self.len {
            self.buf.clear();
            self.skip = self.stride - self.len;
        } else {
            self.buf.drain(..self.stride);
        }
        if window.is_err() {
            self.done = true;
        }
        Some(window)
    }
}
