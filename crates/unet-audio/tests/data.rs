//! The speech data (embedded sample), noise generators and `mix_at_snr`.
//! Run: `cargo test -p unet-audio --test data -- --nocapture`.

use ndarray::ArrayView1;
use tch::Tensor;
use unet_audio::data::noise::{babble, brown, generate, mix_at_snr, pink, white, NoiseKind};
use unet_audio::data::speech::SpeechSet;
use unet_audio::metrics::snr;
use unet_audio::unet_core::rng::Rng;

#[test]
fn embedded_sample_loads_at_any_rate() {
    for rate in [8000, 16_000] {
        let set = SpeechSet::load(None, rate).unwrap();
        assert_eq!(set.utterances.len(), 3);
        assert!(set.source.contains("embedded"));
        let names: Vec<&str> = set.utterances.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["gen1_01-espeak-en-us", "gen1_01-flite-slt", "hts1a"]);
        for u in &set.utterances {
            assert_eq!((u.audio.rate, u.audio.channels()), (rate, 1));
            let peak = u.audio.samples.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.1 && peak <= 1.0, "{}: peak {peak}", u.name);
        }
        assert_eq!(set.utterances[0].verse, Some(1));
        assert_eq!(set.utterances[0].voice, "espeak-en-us");
        assert!(set.utterances[2].recorded && set.utterances[2].verse.is_none());
        assert!((set.utterances[2].audio.duration_s() - 3.0).abs() < 1e-3);
        println!("{rate} Hz: {:.2} s of speech from {}", set.duration_s(), set.source);
    }
    // A cache folder that does not hold the set falls back to the sample.
    let empty = tempfile::tempdir().unwrap();
    assert!(SpeechSet::load(Some(empty.path()), 16_000).unwrap().source.contains("embedded"));
}

#[test]
fn mix_at_snr_is_exact() {
    let set = SpeechSet::embedded(16_000).unwrap();
    let clean = set.utterances[1].audio.mono_samples();
    let mut rng = Rng::new(3);
    for kind in
        [NoiseKind::White, NoiseKind::Pink, NoiseKind::Brown, NoiseKind::Tones(vec![50.0, 3100.0])]
    {
        let noise = generate(&kind, clean.len() + 100, 16_000, &mut rng);
        for target in [-5.0, 0.0, 7.5, 20.0] {
            let mix = mix_at_snr(&clean, &noise, target).unwrap();
            let got = snr(ArrayView1::from(&clean), ArrayView1::from(&mix)).unwrap();
            assert!((got - target).abs() < 0.01, "{kind:?} {target} dB: got {got}");
        }
    }
    let voices: Vec<Vec<f32>> = set.utterances.iter().map(|u| u.audio.mono_samples()).collect();
    let refs: Vec<&[f32]> = voices.iter().map(|v| v.as_slice()).collect();
    let b = babble(&refs, clean.len(), &mut rng).unwrap();
    let mix = mix_at_snr(&clean, &b, 5.0).unwrap();
    assert!((snr(ArrayView1::from(&clean), ArrayView1::from(&mix)).unwrap() - 5.0).abs() < 0.01);
    assert!(mix_at_snr(&clean, &b[..10], 5.0).is_err());
    assert!(mix_at_snr(&clean, &vec![0.0; clean.len()], 5.0).is_err());
}

/// Power in the octave [f, 2f) (FFT through libtorch).
fn octave_power(x: &[f32], rate: f64, f: f64) -> f64 {
    let spec = Tensor::from_slice(x).fft_rfft(None::<i64>, -1, "backward").abs().square();
    let p: Vec<f32> = Vec::try_from(spec).unwrap();
    let df = rate / x.len() as f64;
    p.iter()
        .enumerate()
        .filter(|(k, _)| (*k as f64 * df) >= f && (*k as f64 * df) < 2.0 * f)
        .map(|(_, v)| *v as f64)
        .sum()
}

#[test]
fn noise_colours_have_their_slopes() {
    let n = 1 << 17;
    let mut rng = Rng::new(11);
    let ratio = |x: &[f32]| octave_power(x, 16_000.0, 2000.0) / octave_power(x, 16_000.0, 250.0);
    let (w, p, b) = (white(n, &mut rng), pink(n, &mut rng), brown(n, &mut rng));
    let (rw, rp, rb) = (ratio(&w), ratio(&p), ratio(&b));
    println!("octave power 2-4 kHz / 250-500 Hz: white {rw:.2} (8), pink {rp:.2} (1), brown {rb:.3} (1/8)");
    assert!((6.0..10.0).contains(&rw));
    assert!((0.5..2.0).contains(&rp));
    assert!(rb < 0.2);
    for v in [&w, &p, &b] {
        let rms = (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
    }
    // Deterministic from the seed.
    assert_eq!(pink(1000, &mut Rng::new(5)), pink(1000, &mut Rng::new(5)));
}
