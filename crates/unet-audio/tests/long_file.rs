//! Bounded memory: ten minutes of 16 kHz audio (9.6 M samples, 19 MB as 16-bit, 38 MB as f32)
//! streamed through `process_file`; the chunk count shows it went through in pieces and the
//! process's peak resident set (VmHWM) grows by far less than the decoded file would take.
//! Run: `cargo test -p unet-audio --test long_file -- --nocapture`.

use unet_audio::chunk::{process_file, Chunker, Fade};
use unet_audio::wav::{wav_info, WavChunks};

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn ten_minutes_stream_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("long.wav"), dir.path().join("long_out.wav"));
    let (rate, frames) = (16_000u32, 16_000usize * 600);
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&inp, spec).unwrap();
        for i in 0..frames {
            w.write_sample(((i as f64 * 0.05).sin() * 8000.0 + (i % 101) as f64) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    // Reset the peak (VmHWM) to the current RSS so that it measures the streaming alone.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:");
    let (chunk, overlap) = (16_384, 1_024);
    let mut peak_chunk = 0.0f32;
    let stats = process_file(&inp, &out, chunk, overlap, |c| {
        peak_chunk = c.iter().fold(peak_chunk, |m, v| m.max(v.abs()));
        Ok(c.mapv(|v| v * 0.5))
    })
    .unwrap();
    let hwm = status_kb("VmHWM:");
    let growth_mb = hwm.saturating_sub(before) as f64 / 1024.0;
    println!(
        "10 min at 16 kHz: {} chunks of {chunk} (overlap {overlap}); VmRSS before {:.1} MB, VmHWM after {:.1} MB, growth {growth_mb:.1} MB (decoded file would be {:.1} MB)",
        stats.chunks,
        before as f64 / 1024.0,
        hwm as f64 / 1024.0,
        frames as f64 * 4.0 / 1e6 / 1.048_576
    );
    assert_eq!(stats.chunks, Chunker::new(chunk, overlap, Fade::Hann).unwrap().count(frames));
    assert!(stats.chunks > 600, "{} chunks", stats.chunks);
    assert_eq!(stats.frames, frames);
    assert!(peak_chunk > 0.2);
    assert!(growth_mb < 16.0, "peak RSS grew by {growth_mb:.1} MB while streaming");
    // The output is the input at half gain, checked block by block (also streamed).
    assert_eq!(wav_info(&out).unwrap().frames, frames);
    let a = WavChunks::open(&inp, 65_536).unwrap();
    let b = WavChunks::open(&out, 65_536).unwrap();
    for (x, y) in a.zip(b) {
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.iter().zip(y.iter()).all(|(p, q)| (p * 0.5 - q).abs() <= 1.0 / 32768.0));
    }
}
