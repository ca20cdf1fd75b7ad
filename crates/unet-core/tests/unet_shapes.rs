//! Output shapes, gradients, overfitting and the skip ablation of the dimension-generic U-Net.

use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
use unet_core::{
    Activation, ConvBlockConfig, Downsample, FinalActivation, InterpolationMode, Norm, Padding,
    SkipFusion, UNet, UNetConfig, Upsample,
};

fn small(
    dims: usize,
    depth: usize,
    skip: SkipFusion,
    up: Upsample,
    down: Downsample,
) -> UNetConfig {
    UNetConfig {
        dims,
        in_channels: 2,
        out_channels: 3,
        channels: (0..=depth).map(|i| 4 << i).collect(),
        skip,
        upsample: up,
        downsample: down,
        ..UNetConfig::default()
    }
}

#[test]
fn shapes_in_1d_2d_3d_for_every_depth_fusion_and_resampling() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let ups = [
        Upsample::TransposedConv,
        Upsample::Interpolate(InterpolationMode::Nearest),
        Upsample::Interpolate(InterpolationMode::Linear),
    ];
    let downs = [Downsample::MaxPool, Downsample::AvgPool, Downsample::StridedConv];
    for dims in 1..=3usize {
        for depth in 1..=3usize {
            for skip in [SkipFusion::Concat, SkipFusion::Add, SkipFusion::None] {
                for (k, &up) in ups.iter().enumerate() {
                    let down = downs[(k + depth) % downs.len()];
                    let cfg = small(dims, depth, skip, up, down);
                    let vs = nn::VarStore::new(Device::Cpu);
                    let net = UNet::new(&vs.root(), &cfg).unwrap();
                    let side = 8i64 << (depth - 1).min(1); // multiple of 2^depth
                    let side = side.max(1 << depth);
                    let mut shape = vec![2, 2];
                    shape.extend(std::iter::repeat_n(side, dims));
                    let x = Tensor::randn(&shape, (Kind::Float, Device::Cpu));
                    let y = net.forward_t(&x, true).unwrap();
                    let mut want = vec![2, 3];
                    want.extend(std::iter::repeat_n(side, dims));
                    assert_eq!(
                        y.size(),
                        want,
                        "dims {dims} depth {depth} {skip:?} {up:?} {down:?}"
                    );
                    assert!(y.isfinite().all().int64_value(&[]) == 1);
                }
            }
        }
    }
}

#[test]
fn valid_padding_crops_like_ronneberger() {
    tch::set_num_threads(1);
    let cfg = UNetConfig::ronneberger2015();
    // Fig. 1 of the paper: a 572×572 tile gives a 388×388 segmentation map.
    assert_eq!(cfg.output_size(572), Ok(388));
    assert_eq!(cfg.input_size_for_output(388), 572);
    // A small valid-padding U-Net in 1D, 2D and 3D.
    for dims in 1..=3usize {
        let mut cfg = UNetConfig::ronneberger2015();
        cfg.dims = dims;
        cfg.channels = vec![2, 4, 8];
        let n = cfg.input_size_for_output(4);
        let out = cfg.output_size(n).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = UNet::new(&vs.root(), &cfg).unwrap();
        let mut shape = vec![1, 1];
        shape.extend(std::iter::repeat_n(n, dims));
        let y = net.forward_t(&Tensor::randn(&shape, (Kind::Float, Device::Cpu)), false).unwrap();
        let mut want = vec![1, 2];
        want.extend(std::iter::repeat_n(out, dims));
        assert_eq!(y.size(), want);
        // Softmax head: the two class probabilities sum to one.
        let s = y.sum_dim_intlist(1, false, Kind::Float);
        assert!((s - 1.0).abs().max().double_value(&[]) < 1e-5);
    }
}

#[test]
fn gradients_reach_the_first_layer() {
    tch::set_num_threads(1);
    tch::manual_seed(1);
    for norm in [Norm::Batch, Norm::Instance, Norm::Group { groups: 2 }, Norm::Layer, Norm::None] {
        for activation in [
            Activation::ReLU,
            Activation::LeakyReLU { slope: 0.2 },
            Activation::SiLU,
            Activation::GELU,
        ] {
            let mut cfg =
                small(2, 2, SkipFusion::Concat, Upsample::TransposedConv, Downsample::MaxPool);
            cfg.block.norm = norm;
            cfg.block.activation = activation;
            let vs = nn::VarStore::new(Device::Cpu);
            let net = UNet::new(&vs.root(), &cfg).unwrap();
            let x = Tensor::randn([2, 2, 16, 16], (Kind::Float, Device::Cpu));
            let loss = net.forward_t(&x, true).unwrap().square().mean(Kind::Float);
            loss.backward();
            let w = vs.variables()["inc.double_conv.0.weight"].grad();
            assert!(w.defined(), "{norm:?} {activation:?}: no gradient");
            assert!(w.abs().sum(Kind::Float).double_value(&[]) > 0.0, "{norm:?} {activation:?}");
        }
    }
}

fn train(cfg: &UNetConfig, x: &Tensor, y: &Tensor, steps: usize, lr: f64) -> (f64, f64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), cfg).unwrap();
    let mut opt = nn::Adam::default().build(&vs, lr).unwrap();
    let mut first = f64::NAN;
    let mut last = f64::NAN;
    for step in 0..steps {
        let loss = (net.forward_t(x, true).unwrap() - y).square().mean(Kind::Float);
        opt.backward_step(&loss);
        if step == 0 {
            first = loss.double_value(&[]);
        }
        last = loss.double_value(&[]);
    }
    (first, last)
}

#[test]
fn a_small_2d_unet_overfits_one_batch() {
    tch::set_num_threads(1);
    tch::manual_seed(2);
    let cfg = UNetConfig {
        in_channels: 1,
        out_channels: 1,
        channels: vec![8, 16, 32],
        ..UNetConfig::default()
    };
    let x = Tensor::rand([4, 1, 16, 16], (Kind::Float, Device::Cpu));
    // A non-trivial target: a local non-linear function of the input.
    let y = (&x * 6.0).sin() * x.roll([1], [3]);
    let (first, last) = train(&cfg, &x, &y, 150, 1e-2);
    assert!(last < first * 0.02, "loss {first} -> {last}");
}

#[test]
fn skip_ablation_concat_reconstructs_better_than_none() {
    // Fig. 6 of the survey: without skips the decoder must rebuild fine detail from the
    // bottleneck alone. Task: reproduce a high-frequency input through a depth-3 U-Net.
    tch::set_num_threads(1);
    let x = {
        tch::manual_seed(3);
        Tensor::rand([8, 1, 32, 32], (Kind::Float, Device::Cpu))
    };
    let mut cfg = UNetConfig {
        in_channels: 1,
        out_channels: 1,
        channels: vec![8, 16, 32, 64],
        ..UNetConfig::default()
    };
    cfg.skip = SkipFusion::Concat;
    tch::manual_seed(4);
    let (_, with_skips) = train(&cfg, &x, &x, 120, 5e-3);
    cfg.skip = SkipFusion::None;
    tch::manual_seed(4);
    let (_, without) = train(&cfg, &x, &x, 120, 5e-3);
    eprintln!("reconstruction MSE: concat {with_skips:.5}, none {without:.5}");
    assert!(with_skips * 3.0 < without, "concat {with_skips} vs none {without}");
}

#[test]
fn eval_mode_is_deterministic_and_uses_running_stats() {
    tch::set_num_threads(1);
    let cfg = small(2, 2, SkipFusion::Add, Upsample::TransposedConv, Downsample::MaxPool);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::randn([2, 2, 8, 8], (Kind::Float, Device::Cpu));
    let a = net.forward_t(&x, false).unwrap();
    let b = net.forward_t(&x.narrow(0, 0, 1), false).unwrap();
    // In eval mode a sample's output does not depend on the rest of the batch.
    assert!(a.narrow(0, 0, 1).allclose(&b, 1e-5, 1e-6, false));
    let nbt = vs.variables()["inc.double_conv.1.num_batches_tracked"].int64_value(&[]);
    assert_eq!(nbt, 0);
    let _ = net.forward_t(&x, true).unwrap();
    let nbt = vs.variables()["inc.double_conv.1.num_batches_tracked"].int64_value(&[]);
    assert_eq!(nbt, 1);
}

#[test]
fn final_activations_bound_the_output() {
    tch::set_num_threads(1);
    for (phi, lo, hi) in [
        (FinalActivation::Sigmoid, 0.0, 1.0),
        (FinalActivation::Tanh, -1.0, 1.0),
        (FinalActivation::Softmax, 0.0, 1.0),
    ] {
        let mut cfg =
            small(1, 1, SkipFusion::Concat, Upsample::TransposedConv, Downsample::MaxPool);
        cfg.final_activation = phi;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = UNet::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::randn([2, 2, 8], (Kind::Float, Device::Cpu)) * 10.0;
        let y = net.forward_t(&x, false).unwrap();
        assert!(y.min().double_value(&[]) >= lo && y.max().double_value(&[]) <= hi, "{phi:?}");
        let logits = net.forward_logits_t(&x, false).unwrap();
        assert_eq!(logits.size(), y.size());
    }
}

#[test]
fn block_config_default_is_algorithm_1() {
    let c = ConvBlockConfig::default();
    assert_eq!(c.kernel_size, 3);
    assert_eq!(c.padding, Padding::Same);
    assert_eq!(c.norm, Norm::Batch);
    assert_eq!(c.activation, Activation::ReLU);
    let u = UNetConfig::default();
    assert_eq!(u.dims, 2);
    assert_eq!(u.depth(), 4);
    assert_eq!(u.downsample, Downsample::MaxPool);
    assert_eq!(u.upsample, Upsample::TransposedConv);
    assert_eq!(u.skip, SkipFusion::Concat);
}
