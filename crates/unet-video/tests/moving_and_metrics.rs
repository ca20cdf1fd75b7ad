//! Moving-item clips and the video metrics.

use tch::{Device, Kind, Tensor};
use unet_image::data::fashion_mnist::{FashionMnist, Split};
use unet_video::data::moving::{generate, MovingConfig};
use unet_video::metrics;

fn sample_set() -> FashionMnist {
    FashionMnist::sample(Split::Test).unwrap()
}

#[test]
fn moving_clips_are_deterministic_bounded_and_move() {
    let set = sample_set();
    let cfg = MovingConfig::default();
    let a = generate(&set, 6, &cfg, 7).unwrap();
    let b = generate(&set, 6, &cfg, 7).unwrap();
    let c = generate(&set, 6, &cfg, 8).unwrap();
    assert_eq!(a.clips.size(), vec![6, 1, 8, 32, 32]);
    assert!(a.clips.equal(&b.clips), "same seed, same clips");
    assert!(!a.clips.equal(&c.clips), "another seed, other clips");
    // Clip k depends on (seed, k) only: a longer set starts with the same clips.
    let long = generate(&set, 9, &cfg, 7).unwrap();
    assert!(long.clips.narrow(0, 0, 6).equal(&a.clips));
    assert!(a.clips.min().double_value(&[]) >= -1.0 && a.clips.max().double_value(&[]) <= 1.0);
    let span = (cfg.canvas - cfg.item_size) as f64;
    for clip in &a.positions {
        for w in clip.windows(2) {
            let (p, q) = (w[0][0], w[1][0]);
            assert!((0.0..=span).contains(&q.0) && (0.0..=span).contains(&q.1));
            // Reflection never lengthens a step beyond the speed.
            let step = ((q.0 - p.0).powi(2) + (q.1 - p.1).powi(2)).sqrt();
            assert!(step <= cfg.speed.1 + 1e-9, "step {step}");
        }
        let moved = clip.first().unwrap()[0] != clip.last().unwrap()[0];
        assert!(moved);
    }
    // The item keeps its mass: pixel sums per frame vary only by rounding of the position.
    let mass = (a.clips.get(0) + 1.0).sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Double);
    let m: Vec<f64> = Vec::try_from(mass).unwrap();
    let (lo, hi) = m.iter().fold((f64::MAX, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
    assert!((hi - lo) / hi < 1e-6, "{m:?}");
}

#[test]
fn moving_config_errors_name_the_value() {
    let set = sample_set();
    let bad = MovingConfig { item_size: 40, ..Default::default() };
    assert!(generate(&set, 1, &bad, 0).unwrap_err().to_string().contains("item_size 40"));
    let bad = MovingConfig { speed: (3.0, 1.0), ..Default::default() };
    assert!(generate(&set, 1, &bad, 0).is_err());
    let bad = MovingConfig { frames: 0, ..Default::default() };
    assert!(generate(&set, 1, &bad, 0).is_err());
}

#[test]
fn flicker_and_frame_difference() {
    tch::manual_seed(0);
    let r = Tensor::rand([2, 1, 5, 12, 12], (Kind::Float, Device::Cpu));
    assert_eq!(metrics::flicker(&r, &r).unwrap(), 0.0);
    // A constant offset keeps the temporal differences: no flicker, though PSNR drops.
    assert!(metrics::flicker(&(&r + 0.1), &r).unwrap() < 1e-7);
    // Independent noise per frame flickers.
    let noisy = &r + Tensor::randn([2, 1, 5, 12, 12], (Kind::Float, Device::Cpu)) * 0.05;
    let f = metrics::flicker(&noisy, &r).unwrap();
    // E|n1 − n2| for n ~ N(0, 0.05²) is 0.05·√2·√(2/π) ≈ 0.0564.
    assert!((f - 0.0564).abs() < 0.006, "{f}");
    let still = r.narrow(2, 0, 1).expand([2, 1, 5, 12, 12], false);
    assert_eq!(metrics::frame_difference(&still).unwrap(), 0.0);
    assert!(metrics::flicker(&r, &r.narrow(2, 0, 4)).is_err());
    let p = metrics::psnr(&(&r + 0.1), &r, 1.0).unwrap();
    assert_eq!(p.len(), 10);
    assert!(p.iter().all(|v| (v - 20.0).abs() < 1e-3));
    let s = metrics::ssim(&r, &r, 1.0).unwrap();
    assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-9));
}

#[test]
fn item_crops_centroids_and_acceleration() {
    let set = sample_set();
    let clips = generate(&set, 4, &MovingConfig::default(), 3).unwrap();
    let crops = metrics::item_crops(&clips.clips).unwrap();
    assert_eq!(crops.size(), vec![32, 1, 28, 28]);
    // The crop of every frame of one clip shows the same item: crops nearly agree.
    let c0 = crops.narrow(0, 0, 8);
    let spread =
        (&c0 - c0.mean_dim(0, true, Kind::Float)).abs().mean(Kind::Float).double_value(&[]);
    assert!(spread < 0.15, "{spread}");
    // A still item has no acceleration.
    let cfg = MovingConfig { speed: (0.0, 0.0), ..Default::default() };
    let still = generate(&set, 4, &cfg, 3).unwrap();
    assert!(metrics::centroid_acceleration(&still.clips).unwrap() < 1e-9);
    let moving = metrics::centroid_acceleration(&clips.clips).unwrap();
    // Shuffling frames makes the track jump.
    let idx = Tensor::from_slice(&[0i64, 5, 2, 7, 1, 6, 3, 4]);
    let shuffled = clips.clips.index_select(2, &idx);
    assert!(metrics::centroid_acceleration(&shuffled).unwrap() > 2.0 * moving.max(0.5));
    let c = metrics::centroids(&still.clips).unwrap();
    assert_eq!(c.size(), vec![4, 8, 2]);
    assert!(
        metrics::item_crops(&Tensor::zeros([1, 3, 2, 8, 8], (Kind::Float, Device::Cpu))).is_err()
    );
    let empty = Tensor::full([1, 1, 2, 8, 8], -1.0, (Kind::Float, Device::Cpu));
    assert_eq!(metrics::item_crops(&empty).unwrap().max().double_value(&[]), -1.0);
}
