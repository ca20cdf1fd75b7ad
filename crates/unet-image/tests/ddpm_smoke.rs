//! Smoke test of `cargo xtask reproduce ddpm` and `freeu` (a few steps end to end). One test
//! in its own binary: FreeU-off must reproduce the ddpm FD exactly, which needs the global
//! random generator to itself.

use unet_image::models::ddpm::{self, RunOptions};
use unet_image::models::freeu;

#[test]
fn ddpm_reproduction_runs_end_to_end() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        steps: 3,
        batch_size: 4,
        base: 8,
        samples: 8,
        sample_steps: 2,
        classifier_steps: 5,
        progress: false,
        ..RunOptions::default()
    };
    let r = ddpm::run(&opts).unwrap();
    assert_eq!(r.full_params, ddpm::FULL_PARAMS);
    assert_eq!(r.variants.len(), 2);
    assert!(r.variants.iter().all(|v| v.fd.is_finite() && v.losses.len() == 3));
    for f in [
        "report.md",
        "loss.png",
        "samples_skips.png",
        "samples_no-skips.png",
        "real_test.png",
        "metrics.json",
    ] {
        assert!(
            dir.path().join(f).metadata().map(|m| m.len() > 100).unwrap_or(false),
            "{f} missing"
        );
    }
    assert!(dir.path().join("skips").join("checkpoint.safetensors").exists());
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("35,746,307") && report.contains("FD-FMNIST"));

    // `freeu` re-weights the trained model; FreeU off reproduces the ddpm run's FD exactly
    // (same weights, same noise).
    let fdir = tempfile::tempdir().unwrap();
    let settings = freeu::run(&fdir.path().to_path_buf(), &opts).unwrap();
    assert_eq!(settings.len(), freeu::settings().len());
    assert!((settings[0].fd - r.variants[0].fd).abs() < 1e-6 * r.variants[0].fd.max(1.0));
    assert!(settings.iter().all(|s| s.fd.is_finite()));
    assert!(fdir.path().join("report.md").exists() && fdir.path().join("samples_3.png").exists());
}
