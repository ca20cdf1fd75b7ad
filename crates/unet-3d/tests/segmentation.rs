//! Smoke runs of `unet3d` and `s3d-unet` on the embedded liver: a few steps, every artefact
//! written, Dice/HD95 in range, and S3D cheaper than the 3D U-Net.

use tch::Device;
use unet_3d::models::segment::{self, Arch, RunOptions};

#[test]
fn segmentation_smoke_runs_write_their_reports() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::UNet3d, Arch::S3d] {
        let opts = RunOptions {
            out: dir.path().join(arch.name()),
            data_cache: None,
            steps: 2,
            batch_size: 1,
            base: 2,
            crop: 32,
            device: Device::Cpu,
            progress: false,
            ..RunOptions::new(arch)
        };
        let r = segment::run(&opts).unwrap();
        assert_eq!(r.model.dice.len(), 3);
        for s in [&r.model, &r.threshold] {
            assert!(s.dice.iter().all(|d| (0.0..=1.0).contains(d)), "{s:?}");
            assert!((0.0..=1.0).contains(&s.mean_dice));
        }
        // The threshold baseline separates the synthetic intensities well above chance.
        assert!(r.threshold.mean_dice > 0.3, "{:?}", r.threshold);
        assert_eq!(r.cuts.len(), 3);
        assert!(r.cuts.windows(2).all(|w| w[0] < w[1]));
        let (full, sep) = (&r.costs[0], &r.costs[1]);
        assert_eq!(full.full_params, 19_069_955);
        assert!(sep.full_params * 5 < full.full_params && sep.full_gmacs * 5.0 < full.full_gmacs);
        for f in
            ["report.md", "metrics.json", "loss.png", "slices.png", "model/checkpoint.safetensors"]
        {
            assert!(opts.out.join(f).exists(), "{}: {f} missing", arch.name());
        }
    }
}
