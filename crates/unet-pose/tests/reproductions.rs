//! Smoke runs of both reproductions on the embedded sample: a few steps each, every artefact
//! of the report written, every metric finite and inside its range.

use tch::Device;
use unet_pose::models::motion_generate::MotionGenerator;
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

    // The model folder generates again; unknown classes and damaged files are typed errors.
    let model = opts.out.join("model");
    let g = MotionGenerator::load(&model, Device::Cpu).unwrap();
    let m = g.sample("walk", 2, 2.0, 3, 1).unwrap();
    assert_eq!((m.len(), m[0].len()), (2, opts.len));
    let e = g.sample("fly", 1, 2.0, 3, 1).unwrap_err().to_string();
    assert!(e.contains("fly") && e.contains("walk"), "{e}");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(model.join("motion_stats.json"), broken.join("motion_stats.json")).unwrap();
    let ck = std::fs::read(model.join("checkpoint.safetensors")).unwrap();
    std::fs::write(broken.join("checkpoint.safetensors"), &ck[..ck.len() / 2]).unwrap();
    let e = MotionGenerator::load(&broken, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("checkpoint.safetensors"), "{e}");
    std::fs::write(broken.join("motion_stats.json"), b"{\"base\": 32").unwrap();
    let e = MotionGenerator::load(&broken, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("motion_stats.json"), "{e}");
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
    // Network, plain ablation and mean pose on both test sets.
    assert_eq!(r.rows.len(), 6);
    assert_eq!(r.plain_losses.len(), opts.steps);
    for (_, _, s) in &r.rows {
        assert!((0.0..=1.0).contains(&s.pck_torso) && (0.0..=1.0).contains(&s.pck_box));
        assert!(s.mpjpe.is_finite() && s.pa_mpjpe <= s.mpjpe + 1e-6);
    }
    assert!(r.full_params > r.params);
    for f in ["report.md", "metrics.json", "loss.png", "predictions.png"] {
        assert!(opts.out.join(f).exists(), "{f} missing");
    }
}
