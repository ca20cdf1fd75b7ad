//! Bounded memory for model inference: ten minutes of 8 kHz audio (4.8 M samples) enhanced by
//! a (small, untrained) Wave-U-Net through `enhance_file`, which streams the file with the
//! model's context; the peak resident set (VmHWM) grows by far less than the decoded file and
//! the model's activations over the whole file would take.
//! Run: `cargo test -p unet-audio --test long_enhance -- --nocapture`.

use tch::{nn, Device};
use unet_audio::arch::{WaveUNet, WaveUNetConfig};
use unet_audio::enhance::enhance_file;
use unet_audio::wav::wav_info;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn ten_minutes_enhance_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("long.wav"), dir.path().join("long_out.wav"));
    let (rate, frames) = (8_000u32, 8_000usize * 600);
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&inp, spec).unwrap();
        for i in 0..frames {
            w.write_sample(((i as f64 * 0.07).sin() * 6000.0 + (i % 97) as f64 * 20.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
    }
    tch::manual_seed(0);
    let cfg = WaveUNetConfig { levels: 6, filters_per_level: 8, ..WaveUNetConfig::stoller2018() };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = WaveUNet::new(&vs.root(), &cfg).unwrap();
    // Warm up libtorch's allocator and kernels, then measure the streaming alone.
    unet_audio::enhance::enhance_signal(&net, &vec![0.1f32; 40_000], 16_384, 1, Device::Cpu)
        .unwrap();
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:");
    let stats = enhance_file(&net, rate, &inp, &out, 16_384, Device::Cpu).unwrap();
    let hwm = status_kb("VmHWM:");
    let growth_mb = hwm.saturating_sub(before) as f64 / 1024.0;
    println!(
        "10 min at 8 kHz: {} chunks; VmRSS before {:.1} MB, VmHWM after {:.1} MB, growth {growth_mb:.1} MB (decoded file: {:.1} MB as f32)",
        stats.chunks,
        before as f64 / 1024.0,
        hwm as f64 / 1024.0,
        frames as f64 * 4.0 / 1_048_576.0
    );
    assert_eq!(stats.frames, frames);
    assert_eq!(stats.chunks, frames.div_ceil(16_384));
    assert_eq!(wav_info(&out).unwrap().frames, frames);
    assert!(growth_mb < 32.0, "peak RSS grew by {growth_mb:.1} MB while enhancing");
}
