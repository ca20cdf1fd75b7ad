//! Smoke test of `cargo xtask reproduce unet2015`: a few steps end to end, every artefact
//! written, the checkpoint loadable. The full-length run is `cargo xtask reproduce unet2015`.

use tch::{nn, Device};
use unet_image::models::unet2015::{self, RunOptions};
use unet_image::{checkpoint, UNet, UNetConfig};

#[test]
fn unet2015_reproduction_runs_end_to_end() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        steps: 4,
        batch_size: 2,
        base: 4,
        depth: 2,
        train_scenes: 16,
        test_scenes: 8,
        eval_every: 2,
        progress: false,
        ..RunOptions::default()
    };
    let r = unet2015::run(&opts).unwrap();
    assert_eq!(r.full_params, unet2015::FULL_PARAMS);
    assert_eq!(r.losses.len(), 4);
    assert!(r.losses.iter().all(|l| l.is_finite()));
    assert_eq!(r.val_dice.iter().map(|v| v.0).collect::<Vec<_>>(), vec![2, 4]);
    for f in [
        "report.md",
        "loss.png",
        "val_dice.png",
        "samples.png",
        "metrics.json",
        "model.safetensors",
    ] {
        let p = dir.path().join(f);
        assert!(p.metadata().map(|m| m.len() > 100).unwrap_or(false), "{f} missing or empty");
    }
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("31,030,658") && report.contains("Otsu"));
    // The checkpoint carries its config and loads strictly into a model built from it.
    let ck = checkpoint::read(dir.path().join("model.safetensors")).unwrap();
    let cfg: UNetConfig = serde_json::from_str(&ck.metadata["config"]).unwrap();
    assert_eq!(cfg, unet2015::small(4, 2));
    let mut vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &cfg).unwrap();
    checkpoint::load_strict(&mut vs, dir.path().join("model.safetensors")).unwrap();
}

#[test]
fn full_size_preset_has_the_published_parameter_count() {
    // Source: Ronneberger et al. 2015, Fig. 1 (no count is printed in the paper; this is the
    // count of that configuration; see docs/models/unet2015.md).
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &unet2015::full()).unwrap();
    assert_eq!(unet_image::parameter_count(&vs), 31_030_658);
}
