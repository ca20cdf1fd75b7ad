//! STFT/iSTFT round trip, one STFT frame against a direct DFT, and the mel filterbank against
//! librosa.filters.mel (fixture `fixtures/mel.json` from `fixtures/make_fixtures.py`).
//! Run: `cargo test -p unet-audio --test stft -- --nocapture`.

use tch::{Kind, Tensor};
use unet_audio::convert::{slice_to_tensor, tensor_to_array2};
use unet_audio::stft::{
    from_polar, magnitude, mel_filterbank, phase, LogMel, MelConfig, MelScale, Stft, StftConfig,
};

fn signal(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (i as f32 * 0.031).sin() * 0.5
                + (i as f32 * 0.27).cos() * 0.2
                + ((i * 7919) % 101) as f32 / 500.0
        })
        .collect()
}

#[test]
fn istft_of_stft_is_identity() {
    for cfg in [
        StftConfig::default(),
        StftConfig { n_fft: 256, hop: 64, win: 256, center: true },
        StftConfig { n_fft: 1024, hop: 256, win: 800, center: true },
    ] {
        let s = Stft::new(cfg).unwrap();
        let x = slice_to_tensor(&signal(16_000)).view([2, 8000]);
        let spec = s.forward(&x).unwrap();
        assert_eq!(spec.size(), vec![2, cfg.n_fft / 2 + 1, 8000 / cfg.hop + 1]);
        // Through magnitude and phase and back.
        let spec2 = from_polar(&magnitude(&spec).unwrap(), &phase(&spec).unwrap()).unwrap();
        let y = s.inverse(&spec2, 8000).unwrap();
        let err = (&y - &x).abs().max().double_value(&[]);
        println!("{cfg:?}: max |istft(stft(x)) - x| = {err:.2e}");
        assert!(err < 1e-5, "{cfg:?}: {err}");
    }
    assert!(Stft::new(StftConfig { n_fft: 256, hop: 300, win: 256, center: true }).is_err());
}

#[test]
fn a_frame_equals_the_windowed_dft() {
    let (n_fft, hop) = (64usize, 16usize);
    let s = Stft::new(StftConfig {
        n_fft: n_fft as i64,
        hop: hop as i64,
        win: n_fft as i64,
        center: true,
    })
    .unwrap();
    let x = signal(512);
    let spec = s.forward(&slice_to_tensor(&x)).unwrap();
    let t = 10usize; // frame 10 is centred at 160 and lies inside the signal (no padding involved)
    let frame = spec.select(1, t as i64);
    let re = tensor_to_array2(&frame.real().view([1, -1])).unwrap();
    let im = tensor_to_array2(&frame.imag().view([1, -1])).unwrap();
    for k in 0..=n_fft / 2 {
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for j in 0..n_fft {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * j as f64 / n_fft as f64).cos(); // periodic Hann
            let v = x[t * hop + j - n_fft / 2] as f64 * w;
            let ph = std::f64::consts::TAU * (k * j) as f64 / n_fft as f64;
            a += v * ph.cos();
            b -= v * ph.sin();
        }
        assert!(
            (re[[0, k]] as f64 - a).abs() < 1e-4 && (im[[0, k]] as f64 - b).abs() < 1e-4,
            "bin {k}"
        );
    }
}

#[test]
fn mel_filterbank_matches_librosa() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mel.json"))
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in v["configs"].as_array().unwrap() {
        let cfg = MelConfig {
            rate: c["rate"].as_u64().unwrap() as u32,
            n_fft: c["n_fft"].as_u64().unwrap() as usize,
            n_mels: c["n_mels"].as_u64().unwrap() as usize,
            f_min: c["f_min"].as_f64().unwrap(),
            f_max: c["f_max"].as_f64(),
            scale: if c["htk"].as_bool().unwrap() { MelScale::Htk } else { MelScale::Slaney },
            area_norm: c["norm"].as_bool().unwrap(),
        };
        let fb = mel_filterbank(&cfg).unwrap();
        let mut want = ndarray::Array2::<f64>::zeros(fb.dim());
        for e in c["nonzero"].as_array().unwrap() {
            want[[e[0].as_u64().unwrap() as usize, e[1].as_u64().unwrap() as usize]] =
                e[2].as_f64().unwrap();
        }
        let (mut abs, mut rel) = (0f64, 0f64);
        for (g, w) in fb.iter().zip(want.iter()) {
            abs = abs.max((*g as f64 - w).abs());
            if *w != 0.0 {
                rel = rel.max((*g as f64 - w).abs() / w.abs());
            }
            assert_eq!(*g == 0.0, *w == 0.0, "{}: support differs", c["name"]);
        }
        println!("mel {}: max abs error {abs:.2e}, max rel error {rel:.2e} (librosa vs numpy fixture: {})", c["name"], c["librosa_max_abs_diff"]);
        assert!(rel < 1e-6, "{}: {rel}", c["name"]);
    }
    assert!(mel_filterbank(&MelConfig { f_min: 9000.0, ..MelConfig::default() }).is_err());
}

#[test]
fn log_mel_shape_and_tone_band() {
    let lm = LogMel::new(StftConfig::default(), &MelConfig::default()).unwrap();
    // A 1 kHz tone: the strongest band is the one whose centre is nearest 1 kHz.
    let x = Tensor::arange(16_000, (Kind::Float, tch::Device::Cpu))
        * (std::f64::consts::TAU * 1000.0 / 16_000.0);
    let m = lm.forward(&x.sin()).unwrap();
    assert_eq!(m.size(), vec![80, 126]);
    let band = m.mean_dim(1, false, Kind::Float).argmax(0, false).int64_value(&[]);
    let fb = mel_filterbank(&MelConfig::default()).unwrap();
    let peak_bin = (1000.0f64 * 512.0 / 16_000.0).round() as usize; // 32
    let want = (0..80).max_by(|&a, &b| fb[[a, peak_bin]].total_cmp(&fb[[b, peak_bin]])).unwrap();
    assert_eq!(band as usize, want);
    assert!(LogMel::new(StftConfig::default(), &MelConfig { n_fft: 1024, ..MelConfig::default() })
        .is_err());
}
