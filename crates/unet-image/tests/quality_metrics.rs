//! PSNR and SSIM against scikit-image on the same images (fixtures from
//! `fixtures/make_quality_fixtures.py`), and error cases.

use tch::{Device, Kind, Tensor};
use unet_image::io::{read_gray, to_tensor};
use unet_image::metrics::{psnr, ssim};

fn load(name: &str) -> Tensor {
    let p = format!("{}/tests/fixtures/quality_{name}.png", env!("CARGO_MANIFEST_DIR"));
    let a = read_gray(p).unwrap().mapv(|v| v as f32 / 255.0);
    let (h, w) = a.dim();
    to_tensor(&a.into_shape_with_order((1, h, w)).unwrap())
}

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let refs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/quality.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let clean = load("clean");
    for name in ["noisy", "blurred", "dark"] {
        let img = load(name);
        let p = psnr(&clean, &img, 1.0).unwrap()[0];
        let s = ssim(&clean, &img, 1.0).unwrap()[0];
        let (wp, ws) = (refs[name]["psnr"].as_f64().unwrap(), refs[name]["ssim"].as_f64().unwrap());
        assert!((p - wp).abs() < 1e-4, "{name}: PSNR {p} vs scikit-image {wp}");
        assert!((s - ws).abs() < 1e-6, "{name}: SSIM {s} vs scikit-image {ws}");
    }
    // Identity: SSIM 1, PSNR infinite; batches give one value per image.
    let both = Tensor::cat(&[&clean, &load("noisy")], 0);
    let s = ssim(&both, &both, 1.0).unwrap();
    assert!(s.iter().all(|&v| (v - 1.0).abs() < 1e-12));
    assert!(psnr(&both, &both, 1.0).unwrap().iter().all(|v| v.is_infinite()));
}

#[test]
fn mismatched_or_tiny_images_are_errors() {
    let a = Tensor::zeros([1, 1, 16, 16], (Kind::Float, Device::Cpu));
    let b = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
    assert!(psnr(&a, &b, 1.0).is_err());
    assert!(ssim(&a, &b, 1.0).is_err());
    let tiny = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert!(ssim(&tiny, &tiny, 1.0).unwrap_err().to_string().contains("11"));
}
