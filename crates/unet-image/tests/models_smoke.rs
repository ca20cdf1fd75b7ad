//! Smoke tests of `cargo xtask reproduce resunet | multiresunet | pix2pix | pixelcnnpp`: a few
//! steps on tiny data end to end, every artefact written, checkpoints loadable, the numbers
//! finite. The full-length runs are the `reproduce` commands.

use std::path::Path;

use tch::{nn, Device};
use unet_image::checkpoint;
use unet_image::models::{pix2pix, pixelcnnpp, seg_variants};

fn assert_files(dir: &Path, files: &[&str]) {
    for f in files {
        let p = dir.join(f);
        assert!(p.metadata().map(|m| m.len() > 100).unwrap_or(false), "{f} missing or empty");
    }
}

#[test]
fn resunet_and_multiresunet_reproductions_run_end_to_end() {
    tch::set_num_threads(1);
    for (variant, full) in [
        (seg_variants::Variant::ResUNet, 8_223_809),
        (seg_variants::Variant::MultiResUNet, 7_238_228),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = seg_variants::RunOptions {
            out: dir.path().to_path_buf(),
            steps: 3,
            batch_size: 2,
            base: 4,
            depth: 2,
            train_scenes: 8,
            test_scenes: 4,
            eval_every: 3,
            progress: false,
            ..seg_variants::RunOptions::for_variant(variant)
        };
        let r = seg_variants::run(variant, &opts).unwrap();
        assert_eq!(r.full_params, full);
        assert_eq!(r.variant.train.losses.len(), 3);
        assert_eq!(r.unet2015.train.losses.len(), 3);
        assert!(r.variant.train.losses.iter().all(|l| l.is_finite()));
        assert!((0.0..=1.0).contains(&r.variant.scores.0));
        assert_files(
            dir.path(),
            &["report.md", "loss.png", "val_dice.png", "samples.png", "metrics.json"],
        );
        let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(report.contains("Otsu") && report.contains("U-Net 2015 design"));
        // The checkpoint loads strictly into the small config it records.
        let ck = checkpoint::read(dir.path().join("model.safetensors")).unwrap();
        let mut vs = nn::VarStore::new(Device::Cpu);
        match variant {
            seg_variants::Variant::ResUNet => {
                let cfg: unet_image::arch::ResUNetConfig =
                    serde_json::from_str(&ck.metadata["config"]).unwrap();
                unet_image::arch::ResUNet::new(&vs.root(), &cfg).unwrap();
            }
            seg_variants::Variant::MultiResUNet => {
                let cfg: unet_image::arch::MultiResUNetConfig =
                    serde_json::from_str(&ck.metadata["config"]).unwrap();
                unet_image::arch::MultiResUNet::new(&vs.root(), &cfg).unwrap();
            }
        }
        checkpoint::load_strict(&mut vs, dir.path().join("model.safetensors")).unwrap();
    }
}

#[test]
fn pix2pix_reproduction_runs_end_to_end() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = pix2pix::RunOptions {
        out: dir.path().to_path_buf(),
        steps: 3,
        batch_size: 4,
        ngf: 4,
        train_images: 32,
        test_images: 16,
        classifier_steps: 5,
        progress: false,
        ..pix2pix::RunOptions::default()
    };
    let r = pix2pix::run(&opts).unwrap();
    assert_eq!(r.full_params, (54_413_955, 2_768_705));
    assert_eq!(r.scores.len(), 3);
    assert!(r.scores.iter().all(|s| s.psnr.is_finite() && s.ssim.is_finite() && s.fd.is_finite()));
    assert_eq!(r.gan_losses.len(), 3);
    assert_files(
        dir.path(),
        &["report.md", "loss.png", "gan_loss.png", "samples.png", "generator.safetensors"],
    );
    let ck = checkpoint::read(dir.path().join("generator.safetensors")).unwrap();
    let cfg: unet_image::arch::UnetGeneratorConfig =
        serde_json::from_str(&ck.metadata["config"]).unwrap();
    assert_eq!(cfg, pix2pix::small_generator(4));

    // `sample pix2pix` translates PNGs with the saved generator; a wrong size is a clear error.
    let good = dir.path().join("in.png");
    unet_image::io::write_gray_png(&good, &ndarray::Array2::from_elem((28, 28), 0.5)).unwrap();
    let bad = dir.path().join("big.png");
    unet_image::io::write_gray_png(&bad, &ndarray::Array2::from_elem((30, 28), 0.5)).unwrap();
    let mut so = sample_opts("pix2pix", dir.path().join("generator.safetensors"), dir.path());
    so.inputs = vec![good];
    assert!(unet_image::sample::run(&so).unwrap().exists());
    so.inputs = vec![bad.clone()];
    let e = unet_image::sample::run(&so).unwrap_err().to_string();
    assert!(e.contains("big.png") && e.contains("28×28"), "{e}");
    // A checkpoint without a config (here: the classifier-free PNG path) is a typed error.
    let so = sample_opts("pixelcnnpp", dir.path().join("generator.safetensors"), dir.path());
    assert!(unet_image::sample::run(&so).is_err());
}

fn sample_opts(
    model: &str,
    checkpoint: std::path::PathBuf,
    dir: &Path,
) -> unet_image::sample::SampleOptions {
    unet_image::sample::SampleOptions {
        model: model.into(),
        checkpoint,
        out: dir.join("sampled.png"),
        n: 2,
        steps: 2,
        seed: 0,
        device: Device::Cpu,
        inputs: vec![],
        freeu: None,
        prompts: vec![],
        guidance: 1.0,
    }
}

#[test]
fn pixelcnnpp_reproduction_runs_end_to_end() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = pixelcnnpp::RunOptions {
        out: dir.path().to_path_buf(),
        steps: 3,
        batch_size: 4,
        nr_filters: 4,
        test_images: 16,
        eval_every: 3,
        samples: 2,
        progress: false,
        ..pixelcnnpp::RunOptions::default()
    };
    let r = pixelcnnpp::run(&opts).unwrap();
    assert_eq!(r.full_params, 53_659_080);
    assert!(r.test_bpd.is_finite() && r.test_bpd > 0.0);
    // The independent-pixels baseline is a proper model: below uniform on real images.
    assert!(r.histogram_bpd < 8.0, "{}", r.histogram_bpd);
    assert_files(dir.path(), &["report.md", "loss.png", "samples.png", "model.safetensors"]);
    // `sample pixelcnnpp` rebuilds the model from the checkpoint's config.
    let so = sample_opts("pixelcnnpp", dir.path().join("model.safetensors"), dir.path());
    assert!(unet_image::sample::run(&so).unwrap().exists());
    let so = sample_opts("no-such-model", dir.path().join("model.safetensors"), dir.path());
    assert!(unet_image::sample::run(&so).unwrap_err().to_string().contains("no-such-model"));
}
