//! Smoke test of `cargo xtask reproduce inpainting`, and its full-size count.

use tch::{nn, Device};
use unet_image::diffusers::DiffusersUNet;
use unet_image::models::inpainting::{self, RunOptions};

#[test]
fn inpainting_reproduction_runs_end_to_end_and_keeps_the_background() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        steps: 3,
        batch_size: 4,
        base: 8,
        eval_images: 8,
        sample_steps: 2,
        progress: false,
        ..RunOptions::default()
    };
    let r = inpainting::run(&opts).unwrap();
    assert_eq!(r.background_change, 0.0, "the known region must be kept exactly");
    assert!(r.psnr_hole.0.is_finite() && r.ssim.0.is_finite());
    for f in ["report.md", "samples.png", "loss.png", "metrics.json"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    // Masks are 8-16 px rectangles inside the 28×28 item area.
    let m = inpainting::random_masks(16, Device::Cpu);
    let per = m.sum_dim_intlist([1i64, 2, 3].as_slice(), false, tch::Kind::Float);
    assert!(per.min().double_value(&[]) >= 64.0 && per.max().double_value(&[]) <= 256.0);
    assert_eq!(m.narrow(2, 0, 2).sum(tch::Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn full_size_inpainting_unet_has_nine_input_channels() {
    // SD v1.5 (859,520,964) with conv_in widened from 4 to 9 input channels: + 5·320·9.
    let vs = nn::VarStore::new(Device::Cpu);
    DiffusersUNet::new(&vs.root(), &inpainting::full().unwrap()).unwrap();
    assert_eq!(unet_image::parameter_count(&vs), 859_520_964 + 5 * 320 * 9);
    assert_eq!(vs.variables()["conv_in.weight"].size(), vec![320, 9, 3, 3]);
}
