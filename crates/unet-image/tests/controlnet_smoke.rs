//! Smoke test of `cargo xtask reproduce controlnet` (a few steps end to end, training a tiny
//! `ddpm` base first since none exists in the temporary folder), plus the edge-F1 metric on
//! hand-made maps. Its own test binary: the run seeds libtorch's global generator.

use tch::{Device, Kind, Tensor};
use unet_image::models::controlnet::{self, edge_f1, RunOptions};
use unet_image::models::ddpm;

#[test]
fn controlnet_reproduction_runs_end_to_end() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().join("controlnet"),
        ddpm: ddpm::RunOptions {
            out: dir.path().join("ddpm"),
            steps: 2,
            batch_size: 4,
            base: 8,
            samples: 4,
            sample_steps: 2,
            classifier_steps: 5,
            progress: false,
            ..ddpm::RunOptions::default()
        },
        steps: 3,
        batch_size: 4,
        eval_images: 6,
        sample_steps: 2,
        progress: false,
        ..RunOptions::default()
    };
    let r = controlnet::run(&opts).unwrap();
    assert_eq!(r.full_params, controlnet::FULL_PARAMS);
    assert_eq!(r.zero_init_max_diff, 0.0, "zero convs must leave the base unchanged");
    assert_eq!(r.losses.len(), 3);
    assert_eq!(r.scores.len(), 3);
    assert!(r.scores.iter().all(|s| s.edge_f1.is_finite() && (0.0..=1.0).contains(&s.edge_f1)));
    assert!(r.scores.iter().all(|s| s.fd.is_finite()));
    for f in ["report.md", "loss.png", "samples.png", "metrics.json"] {
        let p = opts.out.join(f);
        assert!(p.metadata().map(|m| m.len() > 100).unwrap_or(false), "{f} missing");
    }
    let report = std::fs::read_to_string(opts.out.join("report.md")).unwrap();
    assert!(report.contains("361,279,120") && report.contains("edge F1"));
}

#[test]
fn edge_f1_counts_matches_within_one_pixel() {
    let z = || Tensor::zeros([3, 1, 8, 8], (Kind::Float, Device::Cpu));
    let (pred, target) = (z(), z());
    // Image 0: a vertical line, predicted one pixel to the right: F1 1.
    let _ = target.get(0).get(0).narrow(1, 3, 1).fill_(1.0);
    let _ = pred.get(0).get(0).narrow(1, 4, 1).fill_(1.0);
    // Image 1: prediction three pixels away: F1 0.
    let _ = target.get(1).get(0).narrow(1, 1, 1).fill_(1.0);
    let _ = pred.get(1).get(0).narrow(1, 4, 1).fill_(1.0);
    // Image 2: both empty: F1 1.
    let (p, r, f1) = edge_f1(&pred, &target).unwrap();
    assert!((f1 - 2.0 / 3.0).abs() < 1e-9, "{f1}");
    assert!((p - 2.0 / 3.0).abs() < 1e-9 && (r - 2.0 / 3.0).abs() < 1e-9, "{p} {r}");
    assert!(edge_f1(&pred, &target.narrow(0, 0, 2)).is_err());
}
