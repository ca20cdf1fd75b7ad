//! Parameter counts against hand counts, and every invalid configuration as a typed error.

use tch::{nn, Device, Kind, Tensor};
use unet_core::{
    parameter_count, Activation, Downsample, Error, FinalActivation, InterpolationMode, Norm,
    Padding, SkipFusion, UNet, UNetConfig, Upsample,
};

fn count(cfg: &UNetConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), cfg).unwrap();
    parameter_count(&vs)
}

/// Parameter count from the architecture's definition, independent of the implementation.
fn hand_count(cfg: &UNetConfig) -> i64 {
    let d = cfg.dims as u32;
    let conv = |cin: i64, cout: i64, k: i64, bias: bool| cin * cout * k.pow(d) + bias as i64 * cout;
    let norm = |c: i64| match cfg.block.norm {
        Norm::Batch | Norm::Group { .. } | Norm::Layer => 2 * c,
        Norm::Instance | Norm::None => 0,
    };
    let k = cfg.block.kernel_size;
    let b = cfg.block.bias;
    let block = |cin: i64, cout: i64| {
        conv(cin, cout, k, b) + norm(cout) + conv(cout, cout, k, b) + norm(cout)
    };
    let ch = &cfg.channels;
    let mut total = block(cfg.in_channels, ch[0]);
    for i in 1..ch.len() {
        if cfg.downsample == Downsample::StridedConv {
            total += conv(ch[i - 1], ch[i - 1], 2, true);
        }
        total += block(ch[i - 1], ch[i]);
    }
    for l in 0..ch.len() - 1 {
        total += match cfg.upsample {
            Upsample::TransposedConv => conv(ch[l + 1], ch[l], 2, true),
            Upsample::Interpolate(_) => conv(ch[l + 1], ch[l], 1, true),
        };
        let fused = if cfg.skip == SkipFusion::Concat { 2 * ch[l] } else { ch[l] };
        total += block(fused, ch[l]);
    }
    total + conv(ch[0], cfg.out_channels, 1, true)
}

#[test]
fn tiny_config_matches_a_count_by_hand() {
    // dims 1, 1 → 1 channel, channels [2, 4], BN, no conv bias, k = 3:
    // inc 6 + 4 + 12 + 4 = 26; down1 24 + 8 + 48 + 8 = 88;
    // up1 (4·2·2 + 2) + (4·2·3 + 4 + 2·2·3 + 4) = 18 + 44 = 62; outc 2 + 1 = 3; total 179.
    let cfg = UNetConfig { dims: 1, channels: vec![2, 4], ..UNetConfig::default() };
    assert_eq!(count(&cfg), 179);
}

#[test]
fn small_configs_match_the_formula() {
    for dims in 1..=3usize {
        for skip in [SkipFusion::Concat, SkipFusion::Add, SkipFusion::None] {
            for norm in [Norm::Batch, Norm::Instance, Norm::Group { groups: 2 }, Norm::None] {
                for (up, down) in [
                    (Upsample::TransposedConv, Downsample::MaxPool),
                    (Upsample::Interpolate(InterpolationMode::Linear), Downsample::StridedConv),
                ] {
                    let mut cfg = UNetConfig {
                        dims,
                        in_channels: 3,
                        out_channels: 2,
                        channels: vec![4, 8, 16],
                        skip,
                        upsample: up,
                        downsample: down,
                        ..UNetConfig::default()
                    };
                    cfg.block.norm = norm;
                    cfg.block.bias = norm == Norm::None;
                    assert_eq!(count(&cfg), hand_count(&cfg), "{cfg:?}");
                }
            }
        }
    }
}

#[test]
fn ronneberger2015_has_the_published_architecture() {
    let cfg = UNetConfig::ronneberger2015();
    // 23 convolutional layers (paper, Section 2): 9 blocks × 2 + 4 up-convs + 1 head.
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &cfg).unwrap();
    let convs = vs.variables().keys().filter(|k| k.ends_with(".weight")).count();
    assert_eq!(convs, 23);
    assert_eq!(parameter_count(&vs), 31_030_658);
    assert_eq!(hand_count(&cfg), 31_030_658);
}

#[test]
fn algorithm1_base32_matches_the_pytorch_reference_count() {
    // benches/pytorch/algorithm1.py (the same layers in PyTorch eager) prints 7,762,465.
    assert_eq!(count(&UNetConfig::algorithm1(2, 32, 4)), 7_762_465);
}

#[test]
fn state_dict_names_follow_pytorch_unet() {
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &UNetConfig::default()).unwrap();
    let vars = vs.variables();
    for k in [
        "inc.double_conv.0.weight",
        "inc.double_conv.1.running_var",
        "inc.double_conv.4.num_batches_tracked",
        "down1.maxpool_conv.1.double_conv.0.weight",
        "down4.maxpool_conv.1.double_conv.3.weight",
        "up1.up.weight",
        "up1.up.bias",
        "up4.conv.double_conv.4.bias",
        "outc.conv.weight",
        "outc.conv.bias",
    ] {
        assert!(vars.contains_key(k), "missing {k}");
    }
    assert!(!vars.keys().any(|k| k.contains("__")), "duplicate path renamed by tch");
    assert_eq!(vars["up1.up.weight"].size(), vec![1024, 512, 2, 2]);
    assert_eq!(vars["inc.double_conv.4.num_batches_tracked"].kind(), Kind::Int64);
}

fn err(cfg: UNetConfig) -> Error {
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new(&vs.root(), &cfg).expect_err("config must be refused")
}

fn field_of(e: &Error) -> &'static str {
    match e {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

#[test]
fn every_invalid_config_is_a_typed_error_with_its_values() {
    let base = UNetConfig { channels: vec![8, 16], ..UNetConfig::default() };

    let e = err(UNetConfig { channels: vec![8], ..base.clone() });
    assert_eq!(field_of(&e), "channels");
    assert!(e.to_string().contains("depth 0"), "{e}");
    let e = err(UNetConfig { channels: vec![], ..base.clone() });
    assert_eq!(field_of(&e), "channels");

    let e = err(UNetConfig { channels: vec![8, 0], ..base.clone() });
    assert!(e.to_string().contains("found 0"), "{e}");

    let mut c = base.clone();
    c.block.norm = Norm::Group { groups: 3 };
    let e = err(c);
    assert_eq!(field_of(&e), "norm");
    assert!(e.to_string().contains("8 channels are not divisible by 3 groups"), "{e}");

    let e = err(UNetConfig { dims: 4, ..base.clone() });
    assert_eq!(field_of(&e), "dims");
    assert!(e.to_string().contains('4'));

    let e = err(UNetConfig { in_channels: 0, ..base.clone() });
    assert_eq!(field_of(&e), "in_channels");
    let e = err(UNetConfig { out_channels: -1, ..base.clone() });
    assert_eq!(field_of(&e), "out_channels");

    let mut c = base.clone();
    c.block.kernel_size = 4;
    let e = err(c);
    assert_eq!(field_of(&e), "kernel_size");
    assert!(e.to_string().contains("odd"), "{e}");

    let e = err(UNetConfig { final_activation: FinalActivation::Softmax, ..base.clone() });
    assert_eq!(field_of(&e), "final_activation");

    let mut c = base.clone();
    c.block.activation = Activation::LeakyReLU { slope: f64::NAN };
    assert_eq!(field_of(&err(c)), "activation");
}

#[test]
fn bad_inputs_are_typed_errors_with_nearest_valid_sizes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = UNetConfig { channels: vec![4, 8, 16, 32], ..UNetConfig::default() };
    let net = UNet::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::zeros([1, 1, 20, 16], (Kind::Float, Device::Cpu));
    match net.forward_t(&x, false).unwrap_err() {
        Error::InputNotDivisible { axis, size, multiple, below, above, .. } => {
            assert_eq!((axis, size, multiple, below, above), (0, 20, 8, 16, 24));
        }
        e => panic!("unexpected {e}"),
    }
    // Wrong rank and wrong channel count.
    for shape in [vec![1i64, 1, 16], vec![1, 2, 16, 16]] {
        let x = Tensor::zeros(&shape, (Kind::Float, Device::Cpu));
        assert!(matches!(net.forward_t(&x, false), Err(Error::InputShape { .. })));
    }

    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), &UNetConfig::ronneberger2015()).unwrap();
    let x = Tensor::zeros([1, 1, 100, 572], (Kind::Float, Device::Cpu));
    match net.forward_t(&x, false).unwrap_err() {
        Error::InvalidValidSize { axis, size, above, .. } => {
            assert_eq!((axis, size), (0, 100));
            assert_eq!(above, 188, "smallest valid input of the 2015 U-Net above 100");
        }
        e => panic!("unexpected {e}"),
    }
    let mut c = UNetConfig::ronneberger2015();
    c.block.padding = Padding::Valid;
    assert!(c.output_size(570).is_err(), "570 leaves an odd size before a pooling");
}
