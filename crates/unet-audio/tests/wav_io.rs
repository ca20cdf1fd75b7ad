//! WAV reading and writing: every supported encoding round-trips, channels and rates are kept,
//! blocks stream, and broken files (empty, truncated, not a WAV, unsupported encodings) give
//! typed errors that name the file.
//! Run: `cargo test -p unet-audio --test wav_io`.

use std::path::Path;

use ndarray::{array, Array2};
use unet_audio::wav::{read_wav, read_wav_bytes, wav_info, write_wav, Audio, WavChunks, WavFormat};
use unet_audio::AudioError;

/// A RIFF/WAVE header with a 16-byte fmt chunk and a data chunk declaring `data_len` bytes.
fn header(tag: u16, channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut h = Vec::new();
    h.extend(b"RIFF");
    h.extend((36 + data_len).to_le_bytes());
    h.extend(b"WAVEfmt ");
    h.extend(16u32.to_le_bytes());
    h.extend(tag.to_le_bytes());
    h.extend(channels.to_le_bytes());
    h.extend(rate.to_le_bytes());
    h.extend((rate * align as u32).to_le_bytes());
    h.extend(align.to_le_bytes());
    h.extend(bits.to_le_bytes());
    h.extend(b"data");
    h.extend(data_len.to_le_bytes());
    h
}

fn write_int(path: &Path, bits: u16, channels: u16, rate: u32, samples: &[i32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        match bits {
            8 => w.write_sample(s as i8).unwrap(),
            16 => w.write_sample(s as i16).unwrap(),
            _ => w.write_sample(s).unwrap(),
        }
    }
    w.finalize().unwrap();
}

#[test]
fn integer_widths_scale_to_unit_range() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [8u16, 16, 24, 32] {
        let full = 1i64 << (bits - 1);
        // Interleaved stereo: (min, max), (0, half).
        let s = [-full, full - 1, 0, full / 2].map(|v| v as i32);
        let p = dir.path().join(format!("int{bits}.wav"));
        write_int(&p, bits, 2, 11_025, &s);
        let a = read_wav(&p).unwrap();
        assert_eq!((a.channels(), a.frames(), a.rate), (2, 2, 11_025));
        let want = array![[-1.0, 0.0], [(full - 1) as f32 / full as f32, 0.5]];
        assert!((&a.samples - &want).iter().all(|d| d.abs() < 1e-7), "{bits}-bit: {:?}", a.samples);
        let info = wav_info(&p).unwrap();
        assert_eq!((info.bits, info.float, info.frames), (bits, false, 2));
    }
}

#[test]
fn write_read_round_trip_16_bit_and_float() {
    let dir = tempfile::tempdir().unwrap();
    // Three channels, values on the 16-bit grid so that Int16 is exact.
    let samples = Array2::from_shape_fn((3, 1000), |(c, i)| {
        ((i as i32 * 37 + c as i32 * 1000) % 65536 - 32768) as f32 / 32768.0
    });
    let audio = Audio::new(samples, 44_100).unwrap();
    for (fmt, name) in [(WavFormat::Int16, "i16.wav"), (WavFormat::Float32, "f32.wav")] {
        let p = dir.path().join(name);
        write_wav(&p, &audio, fmt).unwrap();
        assert_eq!(read_wav(&p).unwrap(), audio, "{name}");
    }
    // Float keeps values outside [-1, 1]; Int16 clips them.
    let loud = Audio::new(array![[1.5f32, -2.0, 0.25]], 8000).unwrap();
    let p = dir.path().join("loud.wav");
    write_wav(&p, &loud, WavFormat::Float32).unwrap();
    assert_eq!(read_wav(&p).unwrap(), loud);
    write_wav(&p, &loud, WavFormat::Int16).unwrap();
    assert_eq!(read_wav(&p).unwrap().samples, array![[32767.0 / 32768.0, -1.0, 0.25]]);
}

#[test]
fn mono_mixdown_and_embedded_bytes() {
    let a = Audio::new(array![[1.0f32, 0.0], [0.0, -0.5]], 16_000).unwrap();
    assert_eq!(a.to_mono().samples, array![[0.5f32, -0.25]]);
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/speech/sample/hts1a.wav"
    ))
    .unwrap();
    let b = read_wav_bytes(&bytes, "hts1a.wav").unwrap();
    assert_eq!((b.channels(), b.rate, b.frames()), (1, 8000, 24_000));
}

#[test]
fn streaming_blocks_equal_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("stereo.wav");
    let s: Vec<i32> = (0..2 * 1001).map(|i| (i * 13 % 2000) - 1000).collect();
    write_int(&p, 16, 2, 8000, &s);
    let whole = read_wav(&p).unwrap();
    let blocks: Vec<Array2<f32>> = WavChunks::open(&p, 100).unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(blocks.len(), 11);
    assert!(blocks[..10].iter().all(|b| b.dim() == (2, 100)));
    assert_eq!(blocks[10].dim(), (2, 1));
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    assert_eq!(ndarray::concatenate(ndarray::Axis(1), &views).unwrap(), whole.samples);
}

fn expect_format_error(path: &Path, needle: &str) {
    let err = read_wav(path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AudioError::Format { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "error does not name the file: {msg}");
    assert!(msg.contains(needle), "expected `{needle}` in: {msg}");
    // The header-only reader and the streaming reader report the same.
    assert!(wav_info(path).unwrap_err().to_string().contains(needle));
    assert!(WavChunks::open(path, 16).err().unwrap().to_string().contains(needle));
}

#[test]
fn broken_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);

    std::fs::write(p("empty.wav"), b"").unwrap();
    expect_format_error(&p("empty.wav"), "empty file");

    std::fs::write(p("text.wav"), b"hello, this is not audio").unwrap();
    expect_format_error(&p("text.wav"), "not a WAV file");
    std::fs::write(p("png.wav"), b"\x89PNG\r\n\x1a\n").unwrap();
    expect_format_error(&p("png.wav"), "not a WAV file");
    std::fs::write(p("avi.wav"), b"RIFF\x04\0\0\0AVI ").unwrap();
    expect_format_error(&p("avi.wav"), "not a WAV file");

    // A valid file cut short: inside the data, then inside the header.
    write_int(&p("full.wav"), 16, 1, 8000, &[1; 1000]);
    let bytes = std::fs::read(p("full.wav")).unwrap();
    std::fs::write(p("cut.wav"), &bytes[..bytes.len() - 501]).unwrap();
    expect_format_error(&p("cut.wav"), "truncated WAV: the data chunk declares 1000 frames");
    std::fs::write(p("cut_header.wav"), &bytes[..30]).unwrap();
    expect_format_error(&p("cut_header.wav"), "truncated WAV");
    std::fs::write(p("riff_only.wav"), b"RIFF").unwrap();
    expect_format_error(&p("riff_only.wav"), "truncated WAV header");

    // Encodings hound cannot decode.
    let mut f64wav = header(3, 1, 8000, 64, 16);
    f64wav.extend([0u8; 16]);
    std::fs::write(p("f64.wav"), f64wav).unwrap();
    expect_format_error(&p("f64.wav"), "64-bit float");
    let mut alaw = header(6, 1, 8000, 8, 4);
    alaw.extend([0xd5u8; 4]);
    std::fs::write(p("alaw.wav"), alaw).unwrap();
    expect_format_error(&p("alaw.wav"), "A-law");
    let mut mulaw = header(7, 1, 8000, 8, 4);
    mulaw.extend([0xffu8; 4]);
    std::fs::write(p("mulaw.wav"), mulaw).unwrap();
    expect_format_error(&p("mulaw.wav"), "µ-law");
    let mut odd = header(1, 1, 8000, 12, 4);
    odd.extend([0u8; 4]);
    std::fs::write(p("pcm12.wav"), odd).unwrap();
    expect_format_error(&p("pcm12.wav"), "12-bit integer PCM");

    // A missing file is an I/O error naming it; an embedded sample names its label.
    let err = read_wav(p("missing.wav")).unwrap_err();
    assert!(matches!(err, AudioError::Io { .. }) && err.to_string().contains("missing.wav"));
    let err = read_wav_bytes(b"", "embedded/x.wav").unwrap_err();
    assert!(err.to_string().contains("embedded/x.wav: empty file"), "{err}");
}
