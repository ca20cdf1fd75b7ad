//! SNR, segmental SNR and SI-SDR against numpy on the same signals (fixtures from
//! `fixtures/make_fixtures.py`: the codec2 sample's first second and three degradations).
//! Run: `cargo test -p unet-audio --test metrics -- --nocapture`.

use ndarray::ArrayView1;
use unet_audio::metrics::{seg_snr, seg_snr_with, si_sdr, snr, SegSnrConfig};
use unet_audio::wav::read_wav;

fn load(name: &str) -> Vec<f32> {
    read_wav(format!("{}/tests/fixtures/metrics_{name}.wav", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .mono_samples()
}

#[test]
fn metrics_match_numpy() {
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/metrics.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let clean = load("clean");
    let c = ArrayView1::from(&clean);
    for name in ["noisy", "scaled", "smoothed"] {
        let x = load(name);
        let e = ArrayView1::from(&x);
        for (metric, got) in [
            ("snr", snr(c, e).unwrap()),
            ("seg_snr", seg_snr(c, e).unwrap()),
            ("si_sdr", si_sdr(c, e).unwrap()),
        ] {
            let want = refs[name][metric].as_f64().unwrap();
            println!(
                "{name:9} {metric:8} rust {got:10.6} numpy {want:10.6} |diff| {:.1e}",
                (got - want).abs()
            );
            assert!((got - want).abs() < 1e-9, "{name} {metric}: {got} vs {want}");
        }
    }
}

#[test]
fn metric_properties_and_errors() {
    let s: Vec<f32> = (0..1024).map(|i| (i as f32 * 0.1).sin()).collect();
    let v = ArrayView1::from(&s);
    assert!(snr(v, v).unwrap().is_infinite());
    assert_eq!(seg_snr(v, v).unwrap(), 35.0); // clamped
    let zeros = vec![0f32; 1024];
    assert_eq!(
        seg_snr(v, ArrayView1::from(&zeros)).unwrap(),
        10.0 * (1.0f64 + 2.220446049250313e-16).log10().max(-10.0)
    );
    // SI-SDR ignores the scale of the estimate.
    let half: Vec<f32> = s.iter().map(|x| x * 0.5 + 0.01).collect();
    let double: Vec<f32> = half.iter().map(|x| x * 2.0).collect();
    let (a, b) = (
        si_sdr(v, ArrayView1::from(&half)).unwrap(),
        si_sdr(v, ArrayView1::from(&double)).unwrap(),
    );
    assert!((a - b).abs() < 1e-6);
    assert!(snr(v, ArrayView1::from(&s[..10])).is_err());
    assert!(si_sdr(ArrayView1::from(&zeros), v).is_err());
    assert!(seg_snr_with(
        ArrayView1::from(&s[..100]),
        ArrayView1::from(&s[..100]),
        &SegSnrConfig::default()
    )
    .is_err());
}
