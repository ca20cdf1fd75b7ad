//! Chunking and overlap-add: identity processing reproduces the input exactly (both fades, any
//! length, several channels), linear processing commutes, and `process_file` streams a WAV.
//! Run: `cargo test -p unet-audio --test chunk`.

use ndarray::{Array2, ArrayView2};
use unet_audio::chunk::{process_file, Chunker, Fade, OverlapAdd};
use unet_audio::wav::{read_wav, write_wav, Audio, WavFormat};

fn signal(ch: usize, n: usize) -> Array2<f32> {
    Array2::from_shape_fn((ch, n), |(c, i)| {
        (i as f32 * 0.0137 + c as f32).sin() * 0.7 + (i % 7) as f32 * 0.01
    })
}

#[test]
fn identity_reconstructs_exactly() {
    for fade in [Fade::Hann, Fade::Linear] {
        for (chunk, overlap) in [(64, 16), (64, 32), (100, 0), (37, 5)] {
            let ck = Chunker::new(chunk, overlap, fade).unwrap();
            for n in [1, 10, chunk - 1, chunk, chunk + 1, 3 * chunk + 7, 1000] {
                let x = signal(2, n);
                let chunks = ck.split(x.view());
                assert_eq!(chunks.len(), ck.count(n));
                assert!((chunks.len() - 1) * ck.hop() + chunk >= n);
                let y = ck.overlap_add(&chunks, n).unwrap();
                assert_eq!(y, x, "{fade:?} chunk {chunk} overlap {overlap} n {n}");
            }
        }
    }
}

#[test]
fn fades_sum_to_one_and_linear_maps_commute() {
    let ck = Chunker::new(256, 64, Fade::Hann).unwrap();
    let w = ck.fade_in();
    assert!(w.iter().zip(w.iter().rev()).all(|(a, b)| (a + b - 1.0).abs() < 1e-15));
    assert!(w.windows(2).all(|p| p[0] < p[1]));
    let x = signal(1, 2000);
    let processed: Vec<Array2<f32>> = ck.split(x.view()).into_iter().map(|c| c * 0.5).collect();
    let y = ck.overlap_add(&processed, 2000).unwrap();
    assert!((&y - &(&x * 0.5)).iter().all(|d| d.abs() < 1e-7));
}

#[test]
fn invalid_geometry_and_mismatched_chunks_are_errors() {
    assert!(Chunker::new(0, 0, Fade::Hann).is_err());
    assert!(Chunker::new(64, 33, Fade::Hann).is_err());
    let ck = Chunker::new(64, 16, Fade::Hann).unwrap();
    assert!(ck.overlap_add(&[], 10).is_err());
    assert!(ck.overlap_add(&[Array2::zeros((1, 64))], 500).is_err());
    let mut ola = OverlapAdd::new(ck);
    assert!(ola.push(Array2::zeros((1, 63)).view()).is_err());
}

#[test]
fn process_file_streams_and_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    // On the 16-bit grid, so that identity is exact after writing.
    let x = signal(2, 12_345).mapv(|v| (v * 32768.0).round() / 32768.0);
    write_wav(&inp, &Audio::new(x.clone(), 16_000).unwrap(), WavFormat::Int16).unwrap();
    let mut seen = 0;
    let stats = process_file(&inp, &out, 1024, 256, |c: ArrayView2<f32>| {
        seen += 1;
        assert_eq!(c.dim(), (2, 1024));
        Ok(c.to_owned())
    })
    .unwrap();
    let ck = Chunker::new(1024, 256, Fade::Hann).unwrap();
    assert_eq!((stats.chunks, stats.frames, seen), (ck.count(12_345), 12_345, stats.chunks));
    let y = read_wav(&out).unwrap();
    assert_eq!((y.rate, y.samples.dim()), (16_000, (2, 12_345)));
    assert_eq!(y.samples, x);
    // Short input (one zero-padded chunk), and a closure that changes the shape.
    let short = dir.path().join("short.wav");
    write_wav(&short, &Audio::new(signal(1, 10), 8000).unwrap(), WavFormat::Float32).unwrap();
    let s = process_file(&short, &out, 64, 16, |c| Ok(c.to_owned())).unwrap();
    assert_eq!((s.chunks, s.frames), (1, 10));
    assert_eq!(read_wav(&out).unwrap().samples, signal(1, 10));
    let err = process_file(&short, &out, 64, 16, |_| Ok(Array2::zeros((1, 3)))).unwrap_err();
    assert!(err.to_string().contains("closure returned"), "{err}");
}
