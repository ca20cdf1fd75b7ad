//! Encoding: [`VideoWriter`] (streaming) and [`write_mp4`] (whole clip), H.264 yuv420p MP4,
//! written atomically.

use std::path::{Path, PathBuf};

use tch::Tensor;
use video_rs::ffmpeg;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::util::frame::Video as AvFrame;

use super::{check_clip_shape, chw_to_rgb, ensure_ffmpeg, tensor_bytes, to_u8};
use crate::{Result, VideoError};

/// The x264 speed presets, fastest first.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// libx264 settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    /// Constant rate factor, 0 (lossless luma) ..= 51; 18 is visually lossless.
    pub crf: u8,
    /// x264 speed preset, one of [`X264_PRESETS`].
    pub preset: String,
    /// Encoder threads; 0 lets x264 choose. Use 1 for byte-identical files across machines.
    pub threads: usize,
}

impl Default for EncodeOptions {
    /// CRF 18, preset `medium`, automatic threads.
    fn default() -> Self {
        EncodeOptions { crf: 18, preset: "medium".into(), threads: 0 }
    }
}

/// `std::io::Error` of an ffmpeg error: the OS error where ffmpeg reports one (ENOSPC, EACCES…).
fn io_of(e: ffmpeg::Error) -> std::io::Error {
    match e {
        ffmpeg::Error::Other { errno } => std::io::Error::from_raw_os_error(errno),
        other => std::io::Error::other(format!("ffmpeg: {other}")),
    }
}

/// Streams frames into an H.264 yuv420p MP4.
///
/// The file is encoded into a hidden temporary file in the target's folder
/// (`.<name>.XXXXXX.mp4`) and renamed over `path` by [`VideoWriter::finish`]; dropping the
/// writer without `finish`, or any error, removes the temporary file and leaves an existing
/// file at `path` untouched. The parent folder must exist.
pub struct VideoWriter {
    path: PathBuf,
    width: i64,
    height: i64,
    octx: Option<ffmpeg::format::context::Output>,
    encoder: ffmpeg::encoder::Video,
    scaler: scaling::Context,
    stream_index: usize,
    enc_tb: ffmpeg::Rational,
    ost_tb: ffmpeg::Rational,
    frames: i64,
    // declared last: removed (when not persisted) after ffmpeg has closed it
    tmp: Option<tempfile::NamedTempFile>,
}

impl VideoWriter {
    /// A writer of `width × height` frames at `fps`, with [`EncodeOptions::default`].
    pub fn create(path: impl AsRef<Path>, width: i64, height: i64, fps: f64) -> Result<Self> {
        Self::create_with(path, width, height, fps, &EncodeOptions::default())
    }

    /// A writer with explicit encoder options. yuv420p needs an even width and height: odd
    /// sizes are refused (crop or pad the frames first).
    pub fn create_with(
        path: impl AsRef<Path>,
        width: i64,
        height: i64,
        fps: f64,
        opts: &EncodeOptions,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if width < 2 || height < 2 || width % 2 != 0 || height % 2 != 0 || width > 16384 {
            return Err(VideoError::invalid(format!(
                "{}: H.264 yuv420p needs an even width and height >= 2, got {width}x{height}; \
                 crop or pad the frames",
                path.display()
            )));
        }
        if height > 16384 {
            return Err(VideoError::invalid(format!(
                "{}: height {height} too large",
                path.display()
            )));
        }
        if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
            return Err(VideoError::invalid(format!(
                "{}: fps must be in (0, 1000], got {fps}",
                path.display()
            )));
        }
        if opts.crf > 51 {
            return Err(VideoError::invalid(format!("crf must be 0..=51, got {}", opts.crf)));
        }
        if !X264_PRESETS.contains(&opts.preset.as_str()) {
            return Err(VideoError::invalid(format!(
                "x264 preset `{}` is not one of {X264_PRESETS:?}",
                opts.preset
            )));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| VideoError::invalid(format!("{}: not a file path", path.display())))?;
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".mp4");
        // a normal file's mode (0666 less the umask), not tempfile's private 0600
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(&dir).map_err(|e| VideoError::io(&path, e))?;
        let tmp_url = tmp.path().to_str().map(|s| format!("file:{s}")).ok_or_else(|| {
            VideoError::invalid(format!("{}: ffmpeg needs a UTF-8 path", path.display()))
        })?;
        ensure_ffmpeg()?;
        let fail = |e: ffmpeg::Error| VideoError::io(&path, io_of(e));
        let mut octx = ffmpeg::format::output_as(&tmp_url, "mp4").map_err(fail)?;
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .or_else(|| ffmpeg::encoder::find(ffmpeg::codec::Id::H264))
            .ok_or_else(|| {
                VideoError::io(&path, std::io::Error::other("this ffmpeg has no H.264 encoder"))
            })?;
        let global_header = octx.format().flags().contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let rate = ffmpeg::Rational::from(fps);
        let enc_tb = rate.invert();
        let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
        if opts.threads > 0 {
            ctx.set_threading(ffmpeg::codec::threading::Config {
                count: opts.threads,
                ..Default::default()
            });
        }
        let mut enc = ctx.encoder().video().map_err(fail)?;
        enc.set_width(width as u32);
        enc.set_height(height as u32);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(enc_tb);
        enc.set_frame_rate(Some(rate));
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut dict = ffmpeg::Dictionary::new();
        dict.set("preset", &opts.preset);
        dict.set("crf", &opts.crf.to_string());
        if opts.threads > 0 {
            dict.set("threads", &opts.threads.to_string());
        }
        let encoder = enc.open_as_with(codec, dict).map_err(fail)?;
        let stream_index = {
            let mut ost = octx.add_stream(codec).map_err(fail)?;
            ost.set_parameters(&encoder);
            ost.set_time_base(enc_tb);
            ost.set_avg_frame_rate(rate);
            ost.index()
        };
        octx.write_header().map_err(fail)?;
        let ost_tb = octx
            .stream(stream_index)
            .map(|s| s.time_base())
            .ok_or_else(|| VideoError::io(&path, std::io::Error::other("output stream lost")))?;
        let scaler = scaling::Context::get(
            Pixel::RGB24,
            width as u32,
            height as u32,
            Pixel::YUV420P,
            width as u32,
            height as u32,
            scaling::Flags::AREA | scaling::Flags::ACCURATE_RND | scaling::Flags::BITEXACT,
        )
        .map_err(fail)?;
        Ok(VideoWriter {
            path,
            width,
            height,
            octx: Some(octx),
            encoder,
            scaler,
            stream_index,
            enc_tb,
            ost_tb,
            frames: 0,
            tmp: Some(tmp),
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> usize {
        self.frames as usize
    }

    /// Appends one frame `[C, H, W]` (`C` = 1 is replicated to RGB), `Uint8` or float in
    /// `[0, 1]`.
    pub fn write(&mut self, frame: &Tensor) -> Result<()> {
        let (h, w) = (self.height, self.width);
        let c = match frame.size()[..] {
            [c, fh, fw] if (c == 1 || c == 3) && (fh, fw) == (h, w) => c,
            ref s => {
                return Err(VideoError::invalid(format!(
                    "{}: a frame must be [1 or 3, {h}, {w}], got {s:?}",
                    self.path.display()
                )))
            }
        };
        let frame = to_u8(frame, "VideoWriter::write")?;
        let bytes = chw_to_rgb(&tensor_bytes(&frame)?, c as usize, h as usize, w as usize)?;
        let mut rgb = AvFrame::new(Pixel::RGB24, w as u32, h as u32);
        let (row, stride) = (3 * w as usize, rgb.stride(0));
        let data = rgb.data_mut(0);
        for y in 0..h as usize {
            data[y * stride..y * stride + row].copy_from_slice(&bytes[y * row..(y + 1) * row]);
        }
        let mut yuv = AvFrame::empty();
        self.scaler.run(&rgb, &mut yuv).map_err(|e| VideoError::io(&self.path, io_of(e)))?;
        yuv.set_pts(Some(self.frames));
        self.encoder.send_frame(&yuv).map_err(|e| VideoError::io(&self.path, io_of(e)))?;
        self.frames += 1;
        self.drain_packets()
    }

    /// Writes every packet the encoder has ready.
    fn drain_packets(&mut self) -> Result<()> {
        let Some(octx) = self.octx.as_mut() else {
            return Err(VideoError::invalid(format!(
                "{}: writer already closed",
                self.path.display()
            )));
        };
        let mut packet = ffmpeg::Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    packet.set_stream(self.stream_index);
                    if packet.duration() <= 0 {
                        packet.set_duration(1);
                    }
                    packet.rescale_ts(self.enc_tb, self.ost_tb);
                    packet
                        .write_interleaved(octx)
                        .map_err(|e| VideoError::io(&self.path, io_of(e)))?;
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(VideoError::io(&self.path, io_of(e))),
            }
        }
    }

    /// Flushes the encoder, writes the MP4 index, syncs and renames the file into place.
    /// Fails (removing the temporary file) when no frame was written.
    pub fn finish(mut self) -> Result<()> {
        if self.frames == 0 {
            return Err(VideoError::invalid(format!(
                "{}: no frame written, refusing to create an empty video",
                self.path.display()
            )));
        }
        self.encoder.send_eof().map_err(|e| VideoError::io(&self.path, io_of(e)))?;
        self.drain_packets()?;
        if let Some(mut octx) = self.octx.take() {
            octx.write_trailer().map_err(|e| VideoError::io(&self.path, io_of(e)))?;
            // dropping the context closes ffmpeg's handle on the file
        }
        let tmp = self.tmp.take().ok_or_else(|| {
            VideoError::invalid(format!("{}: already finished", self.path.display()))
        })?;
        tmp.as_file().sync_all().map_err(|e| VideoError::io(&self.path, e))?;
        tmp.persist(&self.path).map_err(|e| VideoError::io(&self.path, e.error))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Encodes `frames` (`[T, C, H, W]`, `C` = 1 or 3, `Uint8` or float in `[0, 1]`; grey is
/// replicated to RGB) at `fps` into an H.264 yuv420p MP4 at `path`, atomically (see
/// [`VideoWriter`]). Odd widths or heights are refused with [`VideoError::Invalid`].
pub fn write_mp4(path: impl AsRef<Path>, frames: &Tensor, fps: f64) -> Result<()> {
    write_mp4_with(path, frames, fps, &EncodeOptions::default())
}

/// [`write_mp4`] with explicit encoder options.
pub fn write_mp4_with(
    path: impl AsRef<Path>,
    frames: &Tensor,
    fps: f64,
    opts: &EncodeOptions,
) -> Result<()> {
    let path = path.as_ref();
    let [t, _, h, w] = check_clip_shape(frames, &format!("write_mp4 {}", path.display()))?;
    let frames = to_u8(frames, "write_mp4")?;
    let mut writer = VideoWriter::create_with(path, w, h, fps, opts)?;
    for i in 0..t {
        writer.write(&frames.f_select(0, i)?)?;
    }
    writer.finish()
}
