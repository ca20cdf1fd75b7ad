//! Sliding-window inference: MONAI's window placement and Gaussian map, equality with the
//! whole-volume prediction for pointwise predictors, streamed (NIfTI file to NIfTI file)
//! equal to in-memory bit for bit, bounded peak memory on a volume 8× the stated budget
//! (measured in a child process), and typed errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use unet_3d::sliding::{
    Blend, NiftiSink, NiftiSource, SlidingWindow, TensorSink, TensorSource, VolumeSink,
    VolumeSource,
};
use unet_3d::tch::{Device, Kind, Tensor};
use unet_3d::{Error3d, Result};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// A pointwise predictor: a fixed 1×1×1 channel mix (C → K) followed by tanh.
fn pointwise(c: i64, k: i64, seed: i64) -> impl FnMut(&Tensor) -> Result<Tensor> {
    unet_3d::tch::manual_seed(seed);
    let w = Tensor::randn([k, c, 1, 1, 1], CPU);
    move |x: &Tensor| {
        Ok(x.f_conv3d(&w, None::<&Tensor>, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1)?.tanh())
    }
}

#[test]
fn windows_are_placed_like_monai() {
    // image 37, roi 16, overlap 0.25: interval ⌊16·0.75⌋ = 12, starts 0, 12, then 24 moved
    // back to 37 − 16 = 21 (MONAI's dense_patch_slices).
    let sw = SlidingWindow::new([16, 16, 16]);
    let p = sw.plan([37, 16, 7]).unwrap();
    assert_eq!(p.interval, [12, 16, 16]);
    assert_eq!(p.starts[0], vec![0, 12, 21]);
    // roi equal to the axis: one window; an axis shorter than the roi is padded to it.
    assert_eq!(p.starts[1], vec![0]);
    assert_eq!((p.padded[2], p.pad_before[2], p.starts[2].clone()), (16, 4, vec![0]));
    assert_eq!(p.len(), 3);
    assert_eq!(p.windows(), vec![[0, 0, 0], [12, 0, 0], [21, 0, 0]]);
    // overlap 0.5 on 45 with roi 10: starts every 5, last flush at 35.
    let mut sw = SlidingWindow::new([10, 10, 10]);
    sw.overlap = 0.5;
    let p = sw.plan([45, 10, 11]).unwrap();
    assert_eq!(p.starts[0], (0..=7).map(|k| 5 * k).collect::<Vec<_>>());
    assert_eq!(p.starts[2], vec![0, 1]);
    // overlap 0: tiles, the last one flush.
    sw.overlap = 0.0;
    assert_eq!(sw.plan([25, 10, 10]).unwrap().starts[0], vec![0, 10, 15]);
}

#[test]
fn importance_map_is_monai_gaussian() {
    let mut sw = SlidingWindow::new([5, 5, 5]);
    assert_eq!(sw.importance_map().unwrap().min().double_value(&[]), 1.0);
    sw.blend = Blend::gaussian();
    let m = sw.importance_map().unwrap();
    assert_eq!(m.size(), [5, 5, 5]);
    // σ = 0.125 · 5 = 0.625 per axis; peak 1 at the centre.
    let g = |d: f64| (-(d * d) / (2.0 * 0.625 * 0.625)).exp();
    let at = |x, y, z| m.double_value(&[x, y, z]);
    assert!((at(2, 2, 2) - 1.0).abs() < 1e-7);
    assert!((at(0, 2, 2) - g(2.0)).abs() < 1e-7, "{}", at(0, 2, 2));
    assert!((at(1, 3, 2) - g(1.0) * g(1.0)).abs() < 1e-7);
    // the corner (g(2)³ ≈ 2e-7) is clamped to 1e-3.
    assert!((at(0, 0, 0) - 1e-3).abs() < 1e-9);
    // even sizes: symmetric, normalised to a peak of 1.
    sw.roi = [4, 6, 8];
    let m = sw.importance_map().unwrap();
    assert!((m.max().double_value(&[]) - 1.0).abs() < 1e-7);
    assert_eq!(m.double_value(&[0, 1, 2]), m.double_value(&[3, 4, 5]));
}

#[test]
fn sliding_equals_whole_volume_for_pointwise_predictors() {
    unet_3d::tch::manual_seed(1);
    let cases: Vec<(&str, [i64; 3], SlidingWindow)> = vec![
        (
            "constant, odd sizes, overlap 0.5",
            [37, 29, 45],
            SlidingWindow { roi: [16, 12, 10], overlap: 0.5, blend: Blend::Constant, batch: 3 },
        ),
        (
            "gaussian, odd sizes, overlap 0.5",
            [37, 29, 45],
            SlidingWindow { roi: [16, 12, 10], overlap: 0.5, blend: Blend::gaussian(), batch: 3 },
        ),
        (
            "gaussian, volume smaller than the roi in x and z",
            [7, 20, 5],
            SlidingWindow { roi: [16, 12, 10], overlap: 0.25, blend: Blend::gaussian(), batch: 2 },
        ),
        (
            "constant, volume smaller than the roi everywhere",
            [3, 5, 2],
            SlidingWindow { roi: [8, 8, 8], overlap: 0.25, blend: Blend::Constant, batch: 1 },
        ),
    ];
    for (what, dims, sw) in cases {
        let x = Tensor::randn([2, dims[0], dims[1], dims[2]], CPU);
        let mut f = pointwise(2, 3, 7);
        let whole = f(&x.unsqueeze(0)).unwrap().squeeze_dim(0);
        let mut calls = 0;
        let got = sw
            .infer(&x, 3, |b| {
                calls += 1;
                f(b)
            })
            .unwrap();
        let d = max_abs_diff(&got, &whole);
        assert!(d <= 1e-5, "{what}: max |sliding − whole| = {d}");
        let windows = sw.plan([dims[0] as usize, dims[1] as usize, dims[2] as usize]).unwrap();
        assert!(calls >= windows.len().div_ceil(sw.batch), "{what}: {calls} predictor calls");
    }
    // [1, C, X, Y, Z] input and an affine predictor; output [K, X, Y, Z].
    let x = Tensor::randn([1, 1, 21, 18, 17], CPU);
    let sw = SlidingWindow { roi: [8, 8, 8], overlap: 0.0, blend: Blend::gaussian(), batch: 4 };
    let got = sw.infer(&x, 1, |b| Ok(b * 2.0 + 1.0)).unwrap();
    assert_eq!(got.size(), [1, 21, 18, 17]);
    assert!(max_abs_diff(&got, &(x.squeeze_dim(0) * 2.0 + 1.0)) <= 1e-5);
}

#[test]
fn gaussian_blending_weights_window_centres() {
    // A predictor that answers each window with its own number: where two windows overlap,
    // constant blending gives their mean, Gaussian blending favours the nearer centre.
    let x = Tensor::zeros([1, 20, 1, 1], CPU);
    let run = |blend| {
        let sw = SlidingWindow { roi: [10, 1, 1], overlap: 0.5, blend, batch: 1 };
        let mut n = 0.0;
        sw.infer(&x, 1, |b| {
            n += 1.0;
            Ok(b.zeros_like() + n)
        })
        .unwrap()
    };
    let (c, g) = (run(Blend::Constant), run(Blend::gaussian()));
    // windows at 0, 5, 10; voxel 6 is covered by windows 1 (0..10, centre 4.5) and 2 (5..15,
    // centre 9.5): the mean 1.5 with constant weights, pulled towards window 1 by the
    // Gaussian (σ = 1.25).
    assert!((c.double_value(&[0, 6, 0, 0]) - 1.5).abs() < 1e-6);
    let w = |d: f64| (-(d * d) / (2.0 * 1.25 * 1.25)).exp();
    let want = (w(1.5) + 2.0 * w(3.5)) / (w(1.5) + w(3.5));
    let g6 = g.double_value(&[0, 6, 0, 0]);
    assert!((g6 - want).abs() < 1e-5 && g6 < 1.1, "{g6} vs {want}");
    assert!((g.double_value(&[0, 0, 0, 0]) - 1.0).abs() < 1e-6);
    assert!((g.double_value(&[0, 19, 0, 0]) - 3.0).abs() < 1e-6);
}

fn write_nifti_tensor(path: &Path, t: &Tensor) {
    let s = t.size();
    let dims = [s[1] as usize, s[2] as usize, s[3] as usize];
    let mut sink = NiftiSink::create(path, dims, s[0] as usize, [1.0, 1.0, 2.0]).unwrap();
    // in two slabs, to exercise the offsets
    let half = s[3] / 2;
    sink.write_slab(0, &t.narrow(3, 0, half)).unwrap();
    sink.write_slab(half as usize, &t.narrow(3, half, s[3] - half)).unwrap();
    sink.finish().unwrap();
}

#[test]
fn streaming_from_nifti_to_nifti_equals_in_memory_bit_for_bit() {
    unet_3d::tch::manual_seed(3);
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.nii"), dir.path().join("out.nii"));
    let x = Tensor::randn([2, 23, 19, 41], CPU);
    write_nifti_tensor(&inp, &x);
    // the file holds the tensor exactly, and the independent whole-file reader agrees
    let mut src = NiftiSource::open(&inp).unwrap();
    assert_eq!((src.channels(), src.dims()), (2, [23, 19, 41]));
    assert!(src.read_slab(0, 41).unwrap().equal(&x));
    let img = unet_3d::io::nifti::read_nifti(&inp).unwrap();
    assert_eq!(img.dims, vec![23, 19, 41, 2]);
    let f1 = img.frames[1].to_f32();
    assert_eq!(f1.get(5, 7, 30).unwrap() as f64, x.double_value(&[1, 5, 7, 30]));

    // a 3×3×3 convolution (not pointwise: windows disagree at their borders, so the blend
    // matters) from 2 to 3 channels
    let w = Tensor::randn([3, 2, 3, 3, 3], CPU) * 0.2;
    let conv =
        |b: &Tensor| Ok(b.f_conv3d(&w, None::<&Tensor>, [1, 1, 1], [1, 1, 1], [1, 1, 1], 1)?);
    let sw = SlidingWindow { roi: [12, 10, 8], overlap: 0.5, blend: Blend::gaussian(), batch: 2 };
    let mem = sw.infer(&x, 3, conv).unwrap();
    let mut sink = NiftiSink::create(&out, [23, 19, 41], 3, [1.0, 1.0, 2.0]).unwrap();
    sw.infer_streaming(&mut src, &mut sink, 3, conv).unwrap();
    assert_eq!(sink.written(), 41);
    let streamed = NiftiSource::open(&out).unwrap().read_slab(0, 41).unwrap();
    assert!(streamed.equal(&mem), "max diff {}", max_abs_diff(&streamed, &mem));
    // and the written file is a valid NIfTI for the whole-file reader
    let img = unet_3d::io::nifti::read_nifti(&out).unwrap();
    assert_eq!((img.dims.clone(), img.frames.len()), (vec![23, 19, 41, 3], 3));
    let f2 = img.frames[2].to_f32();
    assert_eq!(f2.get(22, 0, 40).unwrap() as f64, mem.double_value(&[2, 22, 0, 40]));

    // in-memory source and sink through the streaming entry point: the same bits
    let mut tsrc = TensorSource::new(x.shallow_clone()).unwrap();
    let mut tsink = TensorSink::new(3, [23, 19, 41], Device::Cpu).unwrap();
    sw.infer_streaming(&mut tsrc, &mut tsink, 3, conv).unwrap();
    assert!(tsink.into_tensor().equal(&mem));
}

#[test]
fn nifti_source_reads_real_files_like_the_whole_file_reader() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    // float32 with NaNs (nibabel's resampled_anat_moved.nii)
    let p = data.join("resampled_anat_moved.nii");
    let mut src = NiftiSource::open(&p).unwrap();
    let v = unet_3d::io::nifti::read_nifti_volume(&p).unwrap().to_f32();
    assert_eq!(src.dims(), v.dims);
    let slab = src.read_slab(1, 3).unwrap();
    for (x, y, z) in [(0, 0, 1), (16, 20, 2), (8, 10, 1), (3, 17, 2)] {
        let a = slab.double_value(&[0, x, y, z - 1]);
        let b = v.get(x as usize, y as usize, z as usize).unwrap() as f64;
        assert!(a == b || (a.is_nan() && b.is_nan()), "({x},{y},{z}): {a} vs {b}");
    }
    // gzip cannot be streamed: a format error naming the file
    let e = NiftiSource::open(data.join("standard.nii.gz")).unwrap_err();
    assert!(matches!(e, Error3d::Format { .. }) && e.to_string().contains("standard.nii.gz"));
}

const CHILD: &str = "UNET3D_STREAM_CHILD";

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The bounded-memory test's sliding window: 16 MiB of slab data for 256×256 slices.
fn budget_window() -> SlidingWindow {
    SlidingWindow { roi: [64, 64, 8], overlap: 0.25, blend: Blend::gaussian(), batch: 4 }
}

const BIG: [usize; 3] = [256, 256, 512];
const BUDGET: usize = 16 << 20;

/// The work of [`streaming_memory_stays_bounded_on_a_volume_8x_the_budget`], run in a child
/// process (this test binary re-run with `CHILD` set) so that its peak resident set is its
/// own. Outside that child it does nothing.
#[test]
fn streaming_child() {
    let Ok(spec) = std::env::var(CHILD) else { return };
    let (inp, out) = spec.split_once('\n').unwrap();
    let sw = budget_window();
    // warm libtorch up (kernels, thread pool) before measuring
    let warm = sw.infer(&Tensor::ones([1, 70, 70, 20], CPU), 1, |b| Ok(b * 2.0 + 1.0)).unwrap();
    assert_eq!(warm.size(), [1, 70, 70, 20]);
    // reset the high-water mark to the current resident set (Linux ≥ 4.0)
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmHWM:");
    let mut src = NiftiSource::open(inp).unwrap();
    let mut sink = NiftiSink::create(out, BIG, 1, [1.0; 3]).unwrap();
    sw.infer_streaming(&mut src, &mut sink, 1, |b| Ok(b * 2.0 + 1.0)).unwrap();
    let after = status_kib("VmHWM:");
    println!("PEAK_GROWTH_KIB={} RESET={reset} BEFORE_KIB={before}", after - before);
}

#[test]
fn streaming_memory_stays_bounded_on_a_volume_8x_the_budget() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let sw = budget_window();
    let slab = sw.slab_bytes(BIG, 1, 1).unwrap();
    let volume_bytes = BIG.iter().product::<usize>() * 4;
    assert!(slab <= BUDGET, "slab data {slab} B over the {BUDGET} B budget");
    assert_eq!(volume_bytes, 8 * BUDGET);

    let dir = tempfile::tempdir().unwrap();
    let (inp, out): (PathBuf, PathBuf) = (dir.path().join("big.nii"), dir.path().join("seg.nii"));
    // the input, written 32 slices at a time: v = ((x + 3y + 7z) mod 101) / 101
    let mut sink = NiftiSink::create(&inp, BIG, 1, [1.0; 3]).unwrap();
    let pattern = |z0: i64, n: i64| {
        let ax = |len: i64, shape: [i64; 3]| Tensor::arange(len, CPU).view(shape);
        let (x, y) = (ax(256, [256, 1, 1]), ax(256, [1, 256, 1]) * 3.0);
        let z = (ax(n, [1, 1, n]) + z0 as f64) * 7.0;
        ((x + y + z).fmod(101.0) / 101.0).unsqueeze(0)
    };
    for z0 in (0..512).step_by(32) {
        sink.write_slab(z0 as usize, &pattern(z0, 32)).unwrap();
    }
    sink.finish().unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "streaming_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}\n{}", inp.display(), out.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let growth_kib: usize = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PEAK_GROWTH_KIB="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PEAK_GROWTH_KIB in {stdout}"));
    let growth = growth_kib * 1024;
    eprintln!("peak RSS growth {growth_kib} KiB for a {volume_bytes} B volume ({stdout})");
    assert!(
        growth < 3 * BUDGET && growth < volume_bytes / 2,
        "peak RSS grew by {growth} B streaming a {volume_bytes} B volume (budget {BUDGET} B)"
    );

    // the result is 2x + 1 everywhere (pointwise predictor), checked slab by slab
    let mut res = NiftiSource::open(&out).unwrap();
    assert_eq!(res.dims(), BIG);
    for z0 in (0..512).step_by(64) {
        let got = res.read_slab(z0 as usize, z0 as usize + 64).unwrap();
        let want = pattern(z0, 64) * 2.0 + 1.0;
        assert!(max_abs_diff(&got, &want) <= 1e-5, "slices {z0}..");
    }
}

#[test]
fn invalid_settings_and_predictions_are_typed_errors() {
    let x = Tensor::zeros([1, 8, 8, 8], CPU);
    let id = |b: &Tensor| Ok(b.shallow_clone());
    let invalid = |r: Result<Tensor>, needle: &str| match r {
        Err(Error3d::Invalid(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected Invalid containing {needle:?}, got {other:?}"),
    };
    invalid(SlidingWindow::new([4, 0, 4]).infer(&x, 1, id), "zero");
    for overlap in [1.0, -0.1, f64::NAN] {
        let sw = SlidingWindow { overlap, ..SlidingWindow::new([4, 4, 4]) };
        invalid(sw.infer(&x, 1, id), "overlap");
    }
    invalid(SlidingWindow { batch: 0, ..SlidingWindow::new([4, 4, 4]) }.infer(&x, 1, id), "batch");
    let bad_sigma = SlidingWindow {
        blend: Blend::Gaussian { sigma_scale: 0.0 },
        ..SlidingWindow::new([4, 4, 4])
    };
    invalid(bad_sigma.infer(&x, 1, id), "sigma_scale");
    let sw = SlidingWindow::new([4, 4, 4]);
    // wrong output channels, wrong spatial size, wrong input rank, no output channel
    invalid(sw.infer(&x, 2, id), "predictor returned [1, 1, 4, 4, 4]");
    invalid(sw.infer(&x, 1, |b: &Tensor| Ok(b.narrow(4, 0, 3))), "expected [1, 1, 4, 4, 4]");
    invalid(sw.infer(&Tensor::zeros([8, 8, 8], CPU), 1, id), "neither");
    invalid(sw.infer(&x, 0, id), "0 output channels");
    // errors of the predictor come back unchanged
    let e = sw.infer(&x, 1, |_: &Tensor| Err(Error3d::invalid("model says no"))).unwrap_err();
    assert_eq!(e.to_string(), "model says no");
    // a sink left unfinished leaves no file; finishing early is an error
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("o.nii");
    let mut sink = NiftiSink::create(&p, [8, 8, 8], 1, [1.0; 3]).unwrap();
    sink.write_slab(0, &Tensor::zeros([1, 8, 8, 3], CPU)).unwrap();
    assert!(matches!(
        sink.write_slab(5, &Tensor::zeros([1, 8, 8, 3], CPU)),
        Err(Error3d::Invalid(_))
    ));
    assert!(matches!(sink.finish(), Err(Error3d::Invalid(m)) if m.contains("3 of 8")));
    drop(sink);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
