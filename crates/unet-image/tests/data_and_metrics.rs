//! Data readers, corrupt-file errors, metrics against scikit-image, scene synthesis.

use std::path::Path;

use ndarray::ArrayD;
use unet_image::data::fashion_mnist::{FashionMnist, Split};
use unet_image::data::idx;
use unet_image::data::segmentation::{synthesize, SceneConfig};
use unet_image::data::textures::Textures;
use unet_image::io::{decode_gray, read_gray};
use unet_image::metrics::otsu_threshold;
use unet_image::ImageError;

#[test]
fn embedded_fashion_mnist_sample_loads() {
    let train = FashionMnist::sample(Split::Train).unwrap();
    let test = FashionMnist::sample(Split::Test).unwrap();
    assert_eq!(train.images.shape(), &[1000, 28, 28]);
    assert_eq!(test.images.shape(), &[200, 28, 28]);
    // Every class occurs in the training sample.
    for c in 0..10u8 {
        assert!(train.labels.iter().any(|&l| l == c), "class {c} missing");
    }
    // Items are dark-background grey images.
    assert_eq!(train.images[[0, 0, 0]], 0);
    assert!(train.images.iter().any(|&v| v > 200));
}

#[test]
fn full_fashion_mnist_loads_when_installed() {
    // Debian's dataset-fashion-mnist is installed by `.ci/run`; the check is real whenever
    // the files exist, and the embedded sample must be its prefix.
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("t10k-images-idx3-ubyte.gz").exists() {
        eprintln!("dataset-fashion-mnist not installed; checked the sample only");
        return;
    }
    let full = FashionMnist::from_dir(dir, Split::Test).unwrap();
    assert_eq!(full.images.shape(), &[10_000, 28, 28]);
    let sample = FashionMnist::sample(Split::Test).unwrap();
    assert_eq!(full.images.slice(ndarray::s![..200, .., ..]), sample.images);
    assert_eq!(full.labels.slice(ndarray::s![..200]), sample.labels);
}

#[test]
fn idx_round_trip_and_corrupt_files() {
    let a = ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3, 2]), (0u8..12).collect()).unwrap();
    let bytes = idx::encode(&a);
    assert_eq!(idx::decode(&bytes, Path::new("x")).unwrap(), a);

    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.idx", vec![], "4 bytes"),
        ("magic.idx", vec![1, 2, 8, 1, 0, 0, 0, 1, 5], "not an IDX file"),
        ("type.idx", vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 5, 5, 5, 5], "0x0d"),
        ("header.idx", vec![0, 0, 8, 3, 0, 0], "truncated IDX header"),
        ("short.idx", bytes[..bytes.len() - 1].to_vec(), "need 12 bytes"),
        ("long.idx", [bytes.clone(), vec![0]].concat(), "file has 13"),
        ("bad.gz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3], "corrupt gzip"),
    ];
    for (name, data, want) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        match idx::read(&p) {
            Err(ImageError::Format { path, reason }) => {
                assert_eq!(path, p);
                assert!(reason.contains(want), "{name}: {reason}");
            }
            other => panic!("{name}: expected a format error, got {other:?}"),
        }
    }
    let e = idx::read(dir.path().join("missing.idx")).unwrap_err();
    assert!(matches!(e, ImageError::Io { .. }) && e.to_string().contains("missing.idx"));
    // A directory without the files is an error naming the file.
    let e = FashionMnist::from_dir(dir.path(), Split::Train).unwrap_err();
    assert!(e.to_string().contains("train-images-idx3-ubyte.gz"), "{e}");
}

#[test]
fn corrupt_png_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.png");
    let mut png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/textures/sample/brick.png"
    ))
    .unwrap();
    png.truncate(png.len() / 2);
    std::fs::write(&p, &png).unwrap();
    let e = read_gray(&p).unwrap_err();
    assert!(matches!(e, ImageError::Image { .. }), "{e:?}");
    assert!(e.to_string().contains("broken.png"), "{e}");
    let e = decode_gray(b"\x89PNG\r\n\x1a\nnot really", Path::new("fake.png")).unwrap_err();
    assert!(e.to_string().contains("fake.png"), "{e}");
}

#[test]
fn otsu_matches_scikit_image() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/skimage_reference.json"
    ))
    .unwrap();
    let refs: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tex = Textures::load(None).unwrap();
    for (name, img) in unet_image::data::textures::NAMES.iter().zip(&tex.images) {
        let want = refs["otsu"][name].as_u64().unwrap() as u8;
        assert_eq!(otsu_threshold(img.view()), want, "{name}");
        let sub = img.mapv(|v| (v / 3).saturating_add(40));
        let want = refs["otsu"][format!("{name}_compressed")].as_u64().unwrap() as u8;
        assert_eq!(otsu_threshold(sub.view()), want, "{name} compressed");
    }
}

#[test]
fn scenes_are_deterministic_and_masks_match_items() {
    let items = FashionMnist::sample(Split::Train).unwrap();
    let tex = Textures::load(None).unwrap();
    let cfg = SceneConfig::default();
    let a = synthesize(&items, &tex, 0.0..0.6, 20, 7, &cfg).unwrap();
    let b = synthesize(&items, &tex, 0.0..0.6, 20, 7, &cfg).unwrap();
    let c = synthesize(&items, &tex, 0.0..0.6, 20, 8, &cfg).unwrap();
    assert_eq!(a.images, b.images);
    assert_eq!(a.masks, b.masks);
    assert_ne!(a.images, c.images);
    assert_eq!(a.images.dim(), (20, 64, 64));
    assert!(a.images.iter().all(|v| (0.0..=1.0).contains(v)));
    for m in a.masks.outer_iter() {
        let fg = m.iter().filter(|&&v| v == 1).count();
        assert!(fg > 50 && fg < 64 * 64 / 2, "foreground {fg}");
    }
    // Impossible requests are errors, not panics.
    assert!(synthesize(&items, &tex, 0.0..0.1, 1, 0, &cfg).is_err());
    let bad = SceneConfig { items: (3, 1), ..SceneConfig::default() };
    assert!(synthesize(&items, &tex, 0.0..0.6, 1, 0, &bad).is_err());
}
