//! Criterion benches of unet-rs.
//!
//! Run with: `cargo xtask bench` (or `cargo xtask bench -- <filter>`).
//!
//! Modules, one per topic:
//! - `algorithm1`: the survey's Algorithm 1 U-Net (base 32, 4 levels) at 4×1×128×128,
//!   forward and train step, the figure the PyTorch comparison uses;
//! - `variants`: norms and skip fusions across 1D/2D/3D at equal width.
//!
//! CPU only: libtorch's CPU ops are synchronous, so the clock reads after the work is done.

use criterion::{criterion_group, criterion_main, Criterion};

mod algorithm1 {
    use criterion::Criterion;
    use unet_benches::Fixture;
    use unet_core::UNetConfig;

    pub fn bench(c: &mut Criterion) {
        let mut g = c.benchmark_group("algorithm1_b32_l4_4x1x128x128");
        g.sample_size(10);
        let mut f = Fixture::new(&UNetConfig::algorithm1(2, 32, 4), 4, 128);
        g.bench_function("forward_eval", |b| b.iter(|| f.forward()));
        g.bench_function("train_step", |b| b.iter(|| f.train_step()));
        g.finish();
    }
}

mod variants {
    use criterion::{BenchmarkId, Criterion};
    use unet_benches::Fixture;
    use unet_core::{Norm, SkipFusion, UNetConfig};

    pub fn bench(c: &mut Criterion) {
        let mut g = c.benchmark_group("variants_train_step");
        g.sample_size(10);
        for (dims, side) in [(1usize, 4096i64), (2, 64), (3, 16)] {
            for (name, norm) in [
                ("batch", Norm::Batch),
                ("group8", Norm::Group { groups: 8 }),
                ("instance", Norm::Instance),
                ("none", Norm::None),
            ] {
                let mut cfg = UNetConfig::algorithm1(dims, 16, 3);
                cfg.block.norm = norm;
                let mut f = Fixture::new(&cfg, 2, side);
                g.bench_function(BenchmarkId::new(format!("{dims}d_norm"), name), |b| {
                    b.iter(|| f.train_step())
                });
            }
            for (name, skip) in [
                ("concat", SkipFusion::Concat),
                ("add", SkipFusion::Add),
                ("none", SkipFusion::None),
            ] {
                let mut cfg = UNetConfig::algorithm1(dims, 16, 3);
                cfg.skip = skip;
                let mut f = Fixture::new(&cfg, 2, side);
                g.bench_function(BenchmarkId::new(format!("{dims}d_skip"), name), |b| {
                    b.iter(|| f.train_step())
                });
            }
        }
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    algorithm1::bench(c);
    variants::bench(c);
}

criterion_group!(unet_benches_group, benches);
criterion_main!(unet_benches_group);
