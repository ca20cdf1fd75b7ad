//! A few steps of each reproduction on the embedded data: every artefact is written, figures
//! are finite, a run resumes, and a trained folder samples again.

use std::path::Path;

use tch::Device;
use unet_video::models::clip_diffusion::{self, ClipModel, Variant};
use unet_video::models::upscale;

fn exists(dir: &Path, names: &[&str]) {
    for n in names {
        let p = dir.join(n);
        assert!(p.exists() && std::fs::metadata(&p).unwrap().len() > 0, "{} missing", p.display());
    }
}

fn clip_opts(out: &Path) -> clip_diffusion::RunOptions {
    clip_diffusion::RunOptions {
        out: out.to_path_buf(),
        data_cache: None,
        steps: 3,
        batch_size: 2,
        base: 8,
        samples: 4,
        sample_steps: 2,
        classifier_steps: 30,
        device: Device::Cpu,
        progress: false,
        ..Default::default()
    }
}

#[test]
fn lumiere_and_latent_shift_smoke() {
    let dir = tempfile::tempdir().unwrap();
    for v in [Variant::Lumiere, Variant::LatentShift] {
        let out = dir.path().join(v.name());
        let r = clip_diffusion::run(v, &clip_opts(&out)).unwrap();
        exists(
            &out,
            &["report.md", "metrics.json", "loss.png", "real.mp4", "real.png", "image.mp4"],
        );
        exists(&out, &[&format!("{}.mp4", v.name()), &format!("{}.png", v.name())]);
        assert!(r.model.scores.fd.is_finite() && r.image.scores.fd.is_finite());
        assert!((0.0..=1.0).contains(&r.model.scores.consistency));
        assert!(r.model.frames_per_second > 0.0);
        assert_eq!(r.model.losses.len(), 3);
        if v == Variant::LatentShift {
            assert_eq!(r.model.params, r.image.params);
            assert_eq!(r.model.full_params, r.image.full_params);
        }
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("class consistency") && report.contains("![loss](loss.png)"));
        // A trained folder samples again (MP4 + PNG), and the wrong folder is a clear error.
        let m = ClipModel::load(&out.join(v.name()), Device::Cpu).unwrap();
        let clips = m.sample(2, 2, 1).unwrap();
        assert_eq!(clips.size(), vec![2, 1, 8, 32, 32]);
        let (mp4, png) = m.write(&clips, &dir.path().join(format!("s-{}", v.name()))).unwrap();
        assert!(mp4.exists() && png.exists());
        let e = ClipModel::load(dir.path(), Device::Cpu).err().unwrap().to_string();
        assert!(e.contains("video_model.json"), "{e}");
        // Resuming a finished run trains nothing more.
        let again = clip_diffusion::run(v, &clip_opts(&out)).unwrap();
        assert_eq!(again.model.losses, r.model.losses);
        assert!(again.model.train_seconds > 0.0, "time from the log");
        if v == Variant::Lumiere {
            // Another seed in the same folder trains afresh instead of resuming the old run.
            let other = clip_diffusion::RunOptions { seed: 99, ..clip_opts(&out) };
            let changed = clip_diffusion::run(v, &other).unwrap();
            assert_eq!(changed.model.losses.len(), 3);
            assert_ne!(changed.model.losses, r.model.losses);
        }
    }
    // A damaged checkpoint is a typed error naming the file.
    let folder = dir.path().join("lumiere").join("lumiere");
    std::fs::write(folder.join("checkpoint.safetensors"), b"not safetensors").unwrap();
    let e = ClipModel::load(&folder, Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("checkpoint.safetensors"), "{e}");
    assert!(clip_diffusion::run(Variant::Image, &clip_opts(dir.path())).is_err());
}

#[test]
fn upscale_a_video_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let opts = upscale::RunOptions {
        out: dir.path().to_path_buf(),
        data_cache: None,
        steps: 2,
        batch_size: 2,
        base: 8,
        frames: 4,
        crop: 32,
        max_side: 96,
        device: Device::Cpu,
        progress: false,
        ..Default::default()
    };
    let r = upscale::run(&opts).unwrap();
    exists(
        dir.path(),
        &["report.md", "metrics.json", "loss.png", "comparison.png", "comparison.mp4"],
    );
    for s in [&r.bicubic, &r.per_frame, &r.temporal] {
        assert!(s.psnr.is_finite() && s.ssim.is_finite() && s.flicker.is_finite());
    }
    assert!(r.params.0 > r.params.1, "temporal layers add parameters");
    assert!(r.test_windows > 0);
    // The trained folder up-scales any video file, streamed in windows (11 frames, window 4:
    // two full windows and a short one).
    let up = upscale::Upscaler::load(&dir.path().join("upscale-a-video"), Device::Cpu).unwrap();
    let lr = (tch::Tensor::rand([11, 1, 12, 16], (tch::Kind::Float, Device::Cpu)) * 255.0)
        .to_kind(tch::Kind::Uint8);
    let input = dir.path().join("lr.mp4");
    unet_video::io::write_mp4(&input, &lr, 10.0).unwrap();
    let output = dir.path().join("hr.mp4");
    assert_eq!(up.upscale_file(&input, &output, 4).unwrap(), 11);
    let hr = unet_video::io::read_video(
        &output,
        &unet_video::io::DecodePolicy { grey: true, ..Default::default() },
    )
    .unwrap();
    assert_eq!(hr.frames.size(), vec![11, 1, 48, 64]);
    assert!((hr.fps - 10.0).abs() < 1e-3);
    let e = up.upscale_file(&dir.path().join("report.md"), &output, 4).unwrap_err().to_string();
    assert!(e.contains("report.md"), "{e}");
    assert!(upscale::Upscaler::load(dir.path(), Device::Cpu).is_err());
    let bad = upscale::RunOptions { crop: 30, ..opts };
    assert!(upscale::run(&bad).unwrap_err().to_string().contains("crop"));
}
