//! Criterion benches of unet-rs.
//!
//! Run with: `cargo xtask bench` (or `cargo xtask bench -- <filter>`).
//!
//! Modules, one per topic:
//! - `algorithm1`: the survey's Algorithm 1 U-Net (base 32, 4 levels) at 4×1×128×128,
//!   forward and train step, the figure the PyTorch comparison uses;
//! - `variants`: norms and skip fusions across 1D/2D/3D at equal width (U-Net train step);
//! - `blocks`: plain conv block vs residual block, dense vs separable vs (2+1)D convolutions,
//!   and a U-Net with and without self-attention, forward and train step, one size per rank.
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

mod blocks {
    use criterion::{BenchmarkId, Criterion};
    use tch::{nn, Device, Kind, Tensor};
    use unet_benches::Fixture;
    use unet_core::layers::ConvKind;
    use unet_core::resnet::{ResnetBlock, ResnetBlockConfig};
    use unet_core::{ConvBlock, ConvBlockConfig, Norm, UNetConfig};

    fn input(dims: usize, c: i64) -> Tensor {
        let side = [0, 4096, 64, 16][dims];
        let mut shape = vec![4, c];
        shape.extend(std::iter::repeat_n(side, dims));
        Tensor::randn(&shape, (Kind::Float, Device::Cpu)).set_requires_grad(true)
    }

    pub fn bench(c: &mut Criterion) {
        let mut g = c.benchmark_group("blocks");
        g.sample_size(10);
        for dims in 1..=3usize {
            let x = input(dims, 32);
            let vs = nn::VarStore::new(Device::Cpu);
            let plain = ConvBlock::new(
                vs.root() / "plain",
                dims,
                32,
                32,
                &ConvBlockConfig { norm: Norm::Group { groups: 8 }, ..Default::default() },
            )
            .expect("block");
            g.bench_function(BenchmarkId::new(format!("{dims}d_forward"), "plain"), |b| {
                b.iter(|| tch::no_grad(|| plain.forward_t(&x, false).expect("fwd")))
            });
            g.bench_function(BenchmarkId::new(format!("{dims}d_train"), "plain"), |b| {
                b.iter(|| plain.forward_t(&x, true).expect("fwd").sum(Kind::Float).backward())
            });
            let mut kinds = vec![
                ("residual_full", ConvKind::Full),
                ("residual_separable", ConvKind::Separable),
            ];
            if dims >= 2 {
                kinds.push(("residual_2plus1d", ConvKind::Factorised));
            }
            for (name, conv) in kinds {
                let cfg = ResnetBlockConfig {
                    norm: Norm::Group { groups: 8 },
                    conv,
                    ..Default::default()
                };
                let block = ResnetBlock::new(vs.root() / name, dims, 32, 32, &cfg).expect("block");
                g.bench_function(BenchmarkId::new(format!("{dims}d_forward"), name), |b| {
                    b.iter(|| tch::no_grad(|| block.forward_t(&x, None, false).expect("fwd")))
                });
                g.bench_function(BenchmarkId::new(format!("{dims}d_train"), name), |b| {
                    b.iter(|| {
                        block.forward_t(&x, None, true).expect("fwd").sum(Kind::Float).backward()
                    })
                });
            }
            let side = [0, 1024, 32, 16][dims];
            for (name, levels) in [("unet_no_attention", vec![]), ("unet_attention_l2", vec![2])] {
                let cfg =
                    UNetConfig { attention_levels: levels, ..UNetConfig::algorithm1(dims, 16, 2) };
                let mut f = Fixture::new(&cfg, 2, side);
                g.bench_function(BenchmarkId::new(format!("{dims}d_forward"), name), |b| {
                    b.iter(|| f.forward())
                });
                g.bench_function(BenchmarkId::new(format!("{dims}d_train"), name), |b| {
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
    blocks::bench(c);
}

criterion_group!(unet_benches_group, benches);
criterion_main!(unet_benches_group);
