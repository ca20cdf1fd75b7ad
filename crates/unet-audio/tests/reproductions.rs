//! Smoke runs of the four audio reproductions on the embedded speech sample: a few steps of
//! small networks, then the whole evaluation, report, WAVs, spectrograms and checkpoints.
//! The full runs are `cargo xtask reproduce <model>`.

use std::path::Path;

use tch::Device;
use unet_audio::enhance::{enhance_file, load_enhancer};
use unet_audio::models::{deep_unet, unetgan, wave_unet};
use unet_audio::wav::{read_wav, wav_info};

fn embedded() -> Option<std::path::PathBuf> {
    // A folder without the set: the runs fall back to the embedded sample.
    Some(std::path::PathBuf::from("/nonexistent-speech-cache"))
}

fn check_report(dir: &Path, must: &[&str]) {
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for m in must {
        assert!(report.contains(m), "report lacks `{m}`:\n{report}");
    }
    assert!(dir.join("loss.png").exists() && dir.join("metrics.json").exists());
    let wavs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    assert!(wavs.len() >= 3, "{wavs:?}");
    for w in &wavs {
        assert_eq!(wav_info(w).unwrap().rate, 8000);
    }
    let pngs = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_spectrograms.png"))
        .count();
    assert!(pngs >= 1);
}

#[test]
fn wave_unet_and_attention_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = wave_unet::RunOptions::new(wave_unet::Variant::Attention);
    o.out = dir.path().to_path_buf();
    o.data_cache = embedded();
    o.steps = 3;
    o.batch = 2;
    o.out_len = 512;
    o.levels = 4;
    o.filters = 4;
    o.eval_snrs = vec![5.0];
    o.progress = false;
    let r = wave_unet::run(wave_unet::Variant::Attention, &o).unwrap();
    assert_eq!(r.models.len(), 2, "attention and plain at equal steps");
    assert_eq!(r.full_params.0, 10_263_002);
    assert_eq!(r.scores.len(), 5, "hts1a × 5 noises × 1 SNR");
    assert!(r.scores.iter().all(|s| s.quality.len() == 3 && s.quality[0].si_sdr.is_finite()));
    check_report(dir.path(), &["attn-wave-unet", "ΔSI-SDR", "attention minus plain"]);

    // The CLI path: load the written checkpoint and enhance a file with it.
    let ck = dir.path().join("attn-wave-unet.safetensors");
    let loaded = load_enhancer(&ck, Device::Cpu).unwrap();
    let noisy = dir.path().join("hts1a_white_5dB_noisy.wav");
    let out = dir.path().join("enhanced.wav");
    enhance_file(loaded.model.as_ref(), loaded.rate, &noisy, &out, 1024, Device::Cpu).unwrap();
    assert_eq!(read_wav(&out).unwrap().frames(), read_wav(&noisy).unwrap().frames());
}

#[test]
fn deep_unet_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let o = deep_unet::RunOptions {
        out: dir.path().to_path_buf(),
        data_cache: embedded(),
        steps: 2,
        batch: 2,
        eval_snrs: vec![0.0],
        progress: false,
        ..Default::default()
    };
    let r = deep_unet::run(&o).unwrap();
    assert_eq!(r.params, 9_823_313, "the published network at full size");
    assert_eq!(r.scores.len(), 1);
    // The oracle mask is far better than the mixture.
    let q = &r.scores[0].quality;
    assert!(q[2].si_sdr > q[0].si_sdr + 3.0, "oracle {:?} vs mixture {:?}", q[2], q[0]);
    check_report(dir.path(), &["oracle ideal ratio mask", "9,823,313"]);
    let loaded = load_enhancer(&dir.path().join("deep-unet.safetensors"), Device::Cpu).unwrap();
    assert_eq!(loaded.name, "deep-unet");
}

#[test]
fn unetgan_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let o = unetgan::RunOptions {
        out: dir.path().to_path_buf(),
        data_cache: embedded(),
        steps: 2,
        batch: 2,
        out_len: 512,
        levels: 4,
        filters: 4,
        eval_snrs: vec![-10.0],
        progress: false,
        ..Default::default()
    };
    let r = unetgan::run(&o).unwrap();
    assert_eq!(r.gan_losses.len(), 2);
    assert_eq!(r.l1_losses.len(), 2);
    assert_eq!(r.scores.len(), 5);
    check_report(dir.path(), &["UNetGAN (L1 + LSGAN)", "dilated"]);
}
