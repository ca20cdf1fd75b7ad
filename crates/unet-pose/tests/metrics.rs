//! Pose metrics on cases with known answers.

use tch::{Kind, Tensor};
use unet_pose::metrics::{diversity, foot_sliding, mpjpe, pa_mpjpe, pck, procrustes_align};

#[test]
fn mpjpe_and_procrustes_recover_known_transforms() {
    tch::manual_seed(3);
    let gt = Tensor::randn([5, 15, 3], (Kind::Double, tch::Device::Cpu));
    // Shifted by (3, 4, 0): every joint is 5 away.
    let shift = Tensor::from_slice(&[3.0f64, 4.0, 0.0]).view([1, 1, 3]);
    assert!((mpjpe(&(&gt + &shift), &gt).unwrap() - 5.0).abs() < 1e-9);
    // Rotated, scaled and moved: PA-MPJPE is zero, MPJPE is not.
    let (c, s) = (0.6f64, 0.8f64);
    let r = Tensor::from_slice(&[c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]).view([3, 3]);
    let moved = gt.matmul(&r.tr()) * 2.5 + &shift;
    assert!(mpjpe(&moved, &gt).unwrap() > 1.0);
    assert!(pa_mpjpe(&moved, &gt).unwrap() < 1e-9);
    // A reflection is not a rotation: alignment cannot undo it.
    let mirror = &gt * Tensor::from_slice(&[-1.0f64, 1.0, 1.0]).view([1, 1, 3]);
    assert!(pa_mpjpe(&mirror, &gt).unwrap() > 0.1);
    // 2D works too.
    let g2 = gt.narrow(2, 0, 2);
    let r2 = Tensor::from_slice(&[c, -s, s, c]).view([2, 2]);
    let a = procrustes_align(&(g2.matmul(&r2.tr()) * 0.5), &g2).unwrap();
    assert!((a - &g2).abs().max().double_value(&[]) < 1e-9);
    assert!(mpjpe(&gt, &g2).is_err());
}

#[test]
fn pck_counts_joints_within_the_threshold() {
    let gt = Tensor::zeros([2, 4, 2], (Kind::Float, tch::Device::Cpu));
    let d = Tensor::from_slice(&[0.1f32, 0.3, 0.5, 0.9, 0.1, 0.1, 0.1, 0.1]).view([2, 4, 1]);
    let pred = Tensor::cat(&[d, Tensor::zeros([2, 4, 1], (Kind::Float, tch::Device::Cpu))], 2);
    let th = Tensor::from_slice(&[0.4f32, 0.05]);
    assert!((pck(&pred, &gt, &th).unwrap() - 2.0 / 8.0).abs() < 1e-9);
    assert!(pck(&pred, &gt, &Tensor::from_slice(&[0.4f32])).is_err());
}

#[test]
fn foot_sliding_measures_contact_speed_only() {
    // Foot 0 slides 1 cm per frame on the ground; foot 1 moves fast in the air.
    let frames: Vec<Vec<[f64; 3]>> =
        (0..10).map(|k| vec![[0.01 * k as f64, 0.0, 0.0], [0.5 * k as f64, 1.0, 0.0]]).collect();
    let v = foot_sliding(&frames, &[0, 1], 30.0, 0.05);
    assert!((v - 0.3).abs() < 1e-9, "{v}");
    assert_eq!(foot_sliding(&frames, &[1], 30.0, 0.05), 0.0);
}

#[test]
fn diversity_is_the_mean_pair_distance() {
    let same = Tensor::ones([10, 4], (Kind::Float, tch::Device::Cpu));
    assert!(diversity(&same, 50, 1).unwrap() < 1e-9);
    // Two clusters 2 apart: pairs are either 0 or 2 apart, never the same row.
    let two = Tensor::cat(
        &[
            Tensor::zeros([1, 3], (Kind::Float, tch::Device::Cpu)),
            Tensor::ones([1, 3], (Kind::Float, tch::Device::Cpu)) * 2.0 / 3f64.sqrt(),
        ],
        0,
    );
    assert!((diversity(&two, 20, 5).unwrap() - 2.0).abs() < 1e-5);
    assert!(diversity(&same.narrow(0, 0, 1), 5, 1).is_err());
}
