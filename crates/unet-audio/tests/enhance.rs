//! Training pairs, chunked and streamed enhancement, checkpoint loading.
//! Run: `cargo test -p unet-audio --test enhance`.

use std::collections::HashMap;
use std::f64::consts::TAU;

use tch::{nn, Device};
use unet_audio::arch::{WaveUNet, WaveUNetConfig};
use unet_audio::chunk::process_file_with_context;
use unet_audio::data::pairs::{eval_set, Noise, PairSampler};
use unet_audio::enhance::{enhance_file, enhance_signal, load_enhancer, Enhancer};
use unet_audio::wav::{read_wav, write_wav, Audio, WavFormat};
use unet_audio::AudioError;

fn speechy(n: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let env = (t * 3.0 + seed as f64).sin().abs();
            (env * ((t * 220.0 * TAU).sin() + 0.5 * (t * 440.0 * TAU).sin()) * 0.3) as f32
        })
        .collect()
}

fn snr_db(clean: &[f32], noisy: &[f32]) -> f64 {
    let ps: f64 = clean.iter().map(|&x| (x as f64).powi(2)).sum();
    let pn: f64 = clean.iter().zip(noisy).map(|(&c, &y)| (y as f64 - c as f64).powi(2)).sum();
    10.0 * (ps / pn).log10()
}

#[test]
fn pairs_hit_their_snr_stay_in_range_and_are_reproducible() {
    let clean = vec![speechy(20_000, 1), speechy(9_000, 2)];
    let mut s =
        PairSampler::new(clean.clone(), clean.clone(), 8000, (-5.0, 10.0), &Noise::ALL, 3).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let (noisy, c, kind, snr) = s.pair(4096).unwrap();
        seen.insert(kind.name());
        assert!((snr_db(&c, &noisy) - snr).abs() < 0.01, "{kind:?} at {snr}");
        assert!((-5.0..=10.0).contains(&snr));
        assert!(noisy.iter().all(|v| v.abs() <= 0.99 + 1e-6));
    }
    assert_eq!(seen.len(), 5, "every noise type drawn: {seen:?}");
    s.reseed(9);
    let a = s.batch(3, 1000).unwrap();
    s.reseed(9);
    let b = s.batch(3, 1000).unwrap();
    assert_eq!(a.0.size(), vec![3, 1, 1000]);
    assert!(a.0.equal(&b.0) && a.1.equal(&b.1), "reseeded batches repeat");
    // Impossible requests are typed errors.
    assert!(PairSampler::new(vec![vec![]], vec![], 8000, (0.0, 1.0), &Noise::ALL, 0).is_err());
    assert!(PairSampler::new(clean.clone(), vec![], 8000, (0.0, 1.0), &[Noise::Babble], 0).is_err());
    assert!(PairSampler::new(clean, vec![], 8000, (5.0, 1.0), &[Noise::White], 0).is_err());
}

#[test]
fn eval_set_is_deterministic_and_complete() {
    let utts = vec![("a".to_string(), speechy(5000, 1)), ("b".to_string(), speechy(7000, 2))];
    let voices = [speechy(3000, 5)];
    let v: Vec<&[f32]> = voices.iter().map(|x| x.as_slice()).collect();
    let a = eval_set(&utts, &v, 8000, &Noise::ALL, &[0.0, 5.0], 1).unwrap();
    let b = eval_set(&utts, &v, 8000, &Noise::ALL, &[0.0, 5.0], 1).unwrap();
    assert_eq!(a.len(), 2 * 5 * 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.noisy, y.noisy);
        assert!((snr_db(&x.clean, &x.noisy) - x.snr_db).abs() < 0.01);
    }
}

fn tiny() -> (nn::VarStore, WaveUNet) {
    tch::manual_seed(4);
    let cfg = WaveUNetConfig { levels: 4, filters_per_level: 4, ..WaveUNetConfig::stoller2018() };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = WaveUNet::new(&vs.root(), &cfg).unwrap();
    (vs, net)
}

#[test]
fn chunking_with_real_context_is_exact() {
    let (_vs, net) = tiny();
    let x = speechy(4096, 3);
    // Chunks that are multiples of 2^L keep the decimation phase: identical outputs.
    let whole = enhance_signal(&net, &x, 4096, 1, Device::Cpu).unwrap();
    let chunked = enhance_signal(&net, &x, 256, 3, Device::Cpu).unwrap();
    assert_eq!(whole.len(), x.len());
    let err = whole.iter().zip(&chunked).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(err < 1e-5, "max difference {err}");
    // Any length, including a ragged last chunk.
    assert_eq!(enhance_signal(&net, &x[..1001], 256, 2, Device::Cpu).unwrap().len(), 1001);
}

#[test]
fn process_file_with_context_gives_each_chunk_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let x = speechy(10_001, 4);
    write_wav(&inp, &Audio::from_mono(x.clone(), 8000).unwrap(), WavFormat::Float32).unwrap();
    let ctx = 37;
    let mut calls = 0;
    let stats = process_file_with_context(&inp, &out, 1000, ctx, |w| {
        calls += 1;
        assert_eq!(w.ncols(), 1000 + 2 * ctx);
        Ok(w.slice(ndarray::s![.., ctx..ctx + 1000]).to_owned())
    })
    .unwrap();
    assert_eq!((stats.frames, stats.chunks, calls), (10_001, 11, 11));
    assert_eq!(read_wav(&out).unwrap().mono_samples(), x, "identity through the centre is exact");
}

#[test]
fn streamed_file_enhancement_matches_the_whole_signal() {
    let (vs, net) = tiny();
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let x = speechy(12_288, 5);
    write_wav(&inp, &Audio::from_mono(x.clone(), 8000).unwrap(), WavFormat::Float32).unwrap();
    let stats = enhance_file(&net, 8000, &inp, &out, 2048, Device::Cpu).unwrap();
    assert_eq!(stats.frames, x.len());
    let streamed = read_wav(&out).unwrap().mono_samples();
    let whole = enhance_signal(&net, &x, 2048, 4, Device::Cpu).unwrap();
    let err = whole.iter().zip(&streamed).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(err < 1e-5, "max difference {err}");

    // A 16 kHz stereo file through the 8 kHz model: same rate, channels and length back.
    let stereo = ndarray::Array2::from_shape_fn((2, 20_000), |(c, i)| {
        (i as f32 * 0.01 * (c + 1) as f32).sin() * 0.3
    });
    let inp16 = dir.path().join("in16.wav");
    write_wav(&inp16, &Audio::new(stereo, 16_000).unwrap(), WavFormat::Int16).unwrap();
    let out16 = dir.path().join("out16.wav");
    let stats = enhance_file(&net, 8000, &inp16, &out16, 4096, Device::Cpu).unwrap();
    let back = read_wav(&out16).unwrap();
    assert_eq!((back.rate, back.channels(), back.frames()), (16_000, 2, 20_000));
    assert_eq!(stats.channels, 2);

    // The checkpoint round trip the CLI uses.
    let ck = dir.path().join("model.safetensors");
    let meta = HashMap::from([
        ("model".to_string(), "wave-unet".to_string()),
        ("config".to_string(), serde_json::to_string(net.config()).unwrap()),
        ("rate".to_string(), "8000".to_string()),
    ]);
    unet_audio::checkpoint::save(&vs, &ck, Some(meta)).unwrap();
    let loaded = load_enhancer(&ck, Device::Cpu).unwrap();
    assert_eq!((loaded.name.as_str(), loaded.rate), ("wave-unet", 8000));
    let again = enhance_signal(loaded.model.as_ref(), &x, 2048, 4, Device::Cpu).unwrap();
    assert_eq!(again, whole);
    assert_eq!(loaded.model.input_len(100), net.input_len(100));
}

#[test]
fn bad_checkpoints_are_typed_errors_naming_the_file() {
    let (vs, _net) = tiny();
    let dir = tempfile::tempdir().unwrap();
    // No metadata: not an audio checkpoint.
    let plain = dir.path().join("plain.safetensors");
    unet_audio::checkpoint::save(&vs, &plain, None).unwrap();
    match load_enhancer(&plain, Device::Cpu) {
        Err(AudioError::Format { path, reason }) => {
            assert_eq!(path, plain);
            assert!(reason.contains("model"), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    // Unknown model name.
    let odd = dir.path().join("odd.safetensors");
    let meta = HashMap::from([
        ("model".to_string(), "vocoder".to_string()),
        ("config".to_string(), "{}".to_string()),
        ("rate".to_string(), "8000".to_string()),
    ]);
    unet_audio::checkpoint::save(&vs, &odd, Some(meta)).unwrap();
    let err = load_enhancer(&odd, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("odd.safetensors") && err.contains("vocoder"), "{err}");
    // Truncated file.
    let bytes = std::fs::read(&plain).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_enhancer(&cut, Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("cut.safetensors"), "{err}");
    // Missing file.
    let err = load_enhancer(&dir.path().join("none.safetensors"), Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("none.safetensors"), "{err}");
}
