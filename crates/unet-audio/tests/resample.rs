//! Resampling against scipy.signal.resample_poly (fixtures from `fixtures/make_fixtures.py`) and
//! against pure tones: the frequency is preserved and content above the new Nyquist is removed.
//! Run: `cargo test -p unet-audio --test resample -- --nocapture`.

use ndarray::Array1;
use unet_audio::resample::{resample, Resampler};
use unet_audio::wav::{read_wav, Audio};

fn fixture(name: &str) -> Audio {
    read_wav(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn matches_scipy_resample_poly() {
    for (from, to) in [(8000, 16000), (16000, 8000), (22050, 16000), (44100, 48000)] {
        let x = fixture(&format!("resample_in_{from}.wav"));
        let want = fixture(&format!("resample_{from}_{to}.wav"));
        let got = resample(&x, to).unwrap();
        assert_eq!(got.rate, to);
        assert_eq!(got.frames(), want.frames(), "{from}->{to} length");
        let err = (&got.samples - &want.samples).mapv(f32::abs).fold(0f32, |a, &b| a.max(b));
        println!("resample {from} -> {to}: max |rust - scipy| = {err:.2e}");
        assert!(err < 1e-5, "{from}->{to}: max error {err}");
    }
}

/// Amplitude of the component at `f` Hz (single-bin DFT, Hann-weighted).
fn amplitude(x: &[f32], rate: u32, f: f64) -> f64 {
    let n = x.len() as f64;
    let (mut re, mut im, mut wsum) = (0.0, 0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
        let ph = std::f64::consts::TAU * f * i as f64 / rate as f64;
        re += w * v as f64 * ph.cos();
        im -= w * v as f64 * ph.sin();
        wsum += w;
    }
    2.0 * (re * re + im * im).sqrt() / wsum
}

fn tone(rate: u32, f: f64, secs: f64) -> Array1<f32> {
    let n = (rate as f64 * secs) as usize;
    Array1::from_shape_fn(n, |i| (std::f64::consts::TAU * f * i as f64 / rate as f64).sin() as f32)
}

#[test]
fn pure_tones_keep_frequency_and_alias_is_attenuated() {
    // 1 kHz survives every conversion with its amplitude; a neighbour frequency is absent.
    for (from, to) in [(8000, 16000), (16000, 8000), (22050, 16000), (16000, 22050), (44100, 8000)]
    {
        let x = tone(from, 1000.0, 0.5);
        let y = Resampler::new(from, to).unwrap().process(x.view());
        let core = &y[y.len() / 8..y.len() * 7 / 8];
        let a = amplitude(core, to, 1000.0);
        let off = amplitude(core, to, 1300.0);
        println!("{from} -> {to}: 1 kHz amplitude {a:.4}, at 1.3 kHz {off:.2e}");
        assert!((a - 1.0).abs() < 0.01, "{from}->{to}: amplitude {a}");
        assert!(off < 1e-3, "{from}->{to}: leakage {off}");
    }
    // A 6 kHz tone at 16 kHz has no place at 8 kHz (Nyquist 4 kHz): it would alias to 2 kHz.
    let x = tone(16000, 6000.0, 0.5);
    let y = Resampler::new(16000, 8000).unwrap().process(x.view());
    let core = &y[y.len() / 8..y.len() * 7 / 8];
    let rms = (core.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / core.len() as f64).sqrt();
    let atten = -20.0 * (rms * 2f64.sqrt()).log10();
    println!(
        "6 kHz tone 16k -> 8k: attenuated by {atten:.1} dB, alias at 2 kHz {:.2e}",
        amplitude(core, 8000, 2000.0)
    );
    assert!(atten > 60.0, "alias only {atten} dB down");
}

#[test]
fn invalid_rates_are_errors() {
    assert!(Resampler::new(0, 8000).is_err());
    let r = Resampler::new(48000, 16000).unwrap();
    assert_eq!((r.up, r.down, r.output_len(48_001)), (1, 3, 16_001));
    assert_eq!(r.taps().len(), 61);
}
