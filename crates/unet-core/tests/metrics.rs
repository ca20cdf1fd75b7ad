//! Metrics against reference implementations.

use unet_core::checkpoint;

#[test]
fn frechet_distance_matches_the_pytorch_fid_formula() {
    // fixtures/make_fd_fixture.py: scipy.linalg.sqrtm on the same features.
    let f = checkpoint::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fd.safetensors"))
        .unwrap();
    let want = f.tensors["fd"].double_value(&[0]);
    let got = unet_core::metrics::frechet_distance(&f.tensors["a"], &f.tensors["b"]).unwrap();
    assert!((got - want).abs() < 1e-8 * want.max(1.0), "{got} vs scipy {want}");
}
