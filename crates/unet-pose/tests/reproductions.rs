//! Smoke runs of both reproductions on the embedded sample: a few steps each, every artefact
//! of the report written, every metric finite and inside its range.

use tch::Device;
use unet_pose::models::{hourglass, motion_diffusion};

#[test]
fn motion_diffusion_smoke_run_writes_the_report() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = motion_diffusion::RunOptions {
        out: dir.path().join("md"),
        data_cache: None,
        steps: 3,
        batch_size: 8,
        base: 32,
        per_class: 2,
        sample_steps: 3,
        classifier_steps: 20,
        device: Device::Cpu,
        progress: false,
        ..Default::default()
    };
    let r = motion_diffusion::run(&opts).unwrap();
    assert_eq!(r.classes, ["backflip", "kick", "run", "walk"]);
    assert!(r.full_params > r.params && r.params > 0);
    assert_eq!(r.rows.len(), 5);
    for row in &r.rows {
        assert!(row.fd.is_finite() && row.fd >= 0.0, "{row:?}");
        assert!((0.0..=1.0).contains(&row.accuracy), "{row:?}");
        assert!(row.diversity.is_finite() && row.foot_sliding.is_finite(), "{row:?}");
    }
    // Retrieval copies real windows: novelty zero.
    assert!(r.rows[1].novelty < 1e-6);
    for f in [
        "report.md",
        "metrics.json",
        "loss.png",
        "samples.gif",
        "bvh/walk.bvh",
        "model/checkpoint.safetensors",
        "model/motion_stats.json",
    ] {
        assert!(opts.out.join(f).exists(), "{f} missing");
    }
    let report = std::fs::read_to_string(opts.out.join("report.md")).unwrap();
    assert!(report.contains("motion FD") && report.contains("retrieval"));
    // The BVH export reads back with the humanoid's 13 animated joints.
    let bvh = unet_pose::bvh::Bvh::read(&opts.out.join("bvh/walk.bvh")).unwrap();
    assert_eq!(bvh.joints.len(), 13);
    assert_eq!(bvh.frames.len(), opts.len);
}

#[test]
fn hourglass_smoke_run_writes_the_report() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = hourglass::RunOptions {
        out: dir.path().join("hg"),
        data_cache: None,
        steps: 2,
        batch_size: 4,
        base: 16,
        stacks: 2,
        depth: 2,
        size: 64,
        test_images: 8,
        device: Device::Cpu,
        progress: false,
        ..Default::default()
    };
    let r = hourglass::run(&opts).unwrap();
    assert_eq!(r.rows.len(), 4);
    for (_, _, s) in &r.rows {
        assert!((0.0..=1.0).contains(&s.pck_torso) && (0.0..=1.0).contains(&s.pck_box));
        assert!(s.mpjpe.is_finite() && s.pa_mpjpe <= s.mpjpe + 1e-6);
    }
    assert!(r.full_params > r.params);
    for f in ["report.md", "metrics.json", "loss.png", "predictions.png"] {
        assert!(opts.out.join(f).exists(), "{f} missing");
    }
}
