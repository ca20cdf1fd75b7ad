//! Wave-U-Net (plain, attention, UNetGAN generator) and the Deep U-Net of Jansson 2017:
//! full-size parameter counts, length geometry and ranks.

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{DeepUNet, DeepUNetConfig, WaveUNet, WaveUNetConfig};
use unet_core::{parameter_count, Error, Norm};

fn count_wave(cfg: &WaveUNetConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    WaveUNet::new(&vs.root(), cfg).unwrap();
    parameter_count(&vs)
}

/// Weights and biases of the official TF code (`UnetAudioSeparator.py`) computed by hand:
/// down 384 + 8640·572 + 1848 = 4,944,312; bottleneck 15·288·312 + 312 = 1,348,152;
/// up 2880·1378 + 1872 = 3,970,512; output 1×1 conv 25 → k sources: 26·k.
#[test]
fn wave_unet_full_size_counts() {
    let body = 4_944_312 + 1_348_152 + 3_970_512;
    assert_eq!(count_wave(&WaveUNetConfig::stoller2018()), body + 26);
    assert_eq!(count_wave(&WaveUNetConfig::macartney2018()), body + 52);
    assert_eq!(count_wave(&WaveUNetConfig::macartney2018()), 10_263_028);
    // Attention gates (Oktay, F_int = C/2, no norm): W_g (C_{i+1}·F + F), W_x (C_i·F + F),
    // psi (F + 1) per level.
    let mut gates = 0;
    for i in 1..=12i64 {
        let (c, below) = (24 * i, 24 * (i + 1));
        let f = c / 2;
        gates += below * f + f + c * f + f + f + 1;
    }
    assert_eq!(count_wave(&WaveUNetConfig::giri2019()), body + 26 + gates);
}

#[test]
fn wave_unet_context_geometry_matches_the_official_code() {
    let cfg = WaveUNetConfig::stoller2018();
    // The official `get_padding` for 16384 desired output samples: input 147443 → 16389.
    assert_eq!(cfg.output_len(147_443), Some(16_389));
    assert_eq!(cfg.input_len_for(16_384), 147_443);
    assert_eq!(cfg.output_len(1000), None);
}

#[test]
fn wave_unet_forward_lengths_1d_and_2d() {
    tch::manual_seed(0);
    let small = WaveUNetConfig { levels: 4, filters_per_level: 4, ..WaveUNetConfig::stoller2018() };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = WaveUNet::new(&vs.root(), &small).unwrap();
    let n = small.input_len_for(300);
    let y = net.forward_t(&Tensor::randn([2, 1, n], (Kind::Float, Device::Cpu)), false).unwrap();
    assert_eq!(y.size(), vec![2, 1, small.output_len(n).unwrap()]);
    assert!(y.size()[2] >= 300);
    assert!(y.abs().max().double_value(&[]) < 1.0, "tanh output");
    // Same length for any input length.
    for len in [1, 77, 300, 1024] {
        let y = net.forward_same(&Tensor::randn([1, 1, len], (Kind::Float, Device::Cpu)), false);
        assert_eq!(y.unwrap().size(), vec![1, 1, len]);
    }
    // Too short: a typed error that proposes a length.
    let err = net.forward_t(&Tensor::zeros([1, 1, 50], (Kind::Float, Device::Cpu)), false);
    assert!(matches!(err, Err(Error::InvalidConfig { field: "input length", .. })));
    let err = net.forward_t(&Tensor::zeros([1, 2, 500], (Kind::Float, Device::Cpu)), false);
    assert!(matches!(err, Err(Error::InputShape { .. })));

    // Rank 2, attention gates, batch norm and a dilated bottleneck, zero-padded.
    let cfg2 = WaveUNetConfig {
        dims: 2,
        levels: 3,
        filters_per_level: 4,
        down_kernel: 3,
        up_kernel: 3,
        context: false,
        skip_attention: Some(0),
        norm: Norm::Batch,
        bottleneck_dilations: vec![1, 2],
        ..WaveUNetConfig::stoller2018()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = WaveUNet::new(&vs.root(), &cfg2).unwrap();
    let y = net.forward_t(&Tensor::randn([2, 1, 16, 24], (Kind::Float, Device::Cpu)), true);
    assert_eq!(y.unwrap().size(), vec![2, 1, 16, 24]);
    let err = net.forward_t(&Tensor::randn([2, 1, 16, 20], (Kind::Float, Device::Cpu)), true);
    assert!(err.is_err(), "20 is not a multiple of 2^3");
}

#[test]
fn wave_unet_rejects_impossible_configs() {
    let bad = [
        WaveUNetConfig { levels: 0, ..Default::default() },
        WaveUNetConfig { down_kernel: 4, ..Default::default() },
        WaveUNetConfig { filters_per_level: 0, ..Default::default() },
        WaveUNetConfig { bottleneck_dilations: vec![1, 0], ..Default::default() },
        WaveUNetConfig { slope: 1.5, ..Default::default() },
    ];
    for cfg in bad {
        let vs = nn::VarStore::new(Device::Cpu);
        assert!(matches!(WaveUNet::new(&vs.root(), &cfg), Err(Error::InvalidConfig { .. })));
    }
}

#[test]
fn unetgan_generator_count() {
    // hao2020: 9 levels, same padding, BN (γ, β per conv), dilated bottleneck of 4 width-5
    // convs at 240 channels.
    let cfg = WaveUNetConfig::hao2020();
    let mut expected = 0i64;
    for i in 0..9i64 {
        let cin = if i == 0 { 1 } else { 24 * i };
        let cout = 24 * (i + 1);
        expected += 15 * cin * cout + cout + 2 * cout;
    }
    expected += (5 * 216 * 240 + 240 + 480) + 3 * (5 * 240 * 240 + 240 + 480);
    for j in 1..=9i64 {
        let (c, below) = (24 * j, 24 * (j + 1));
        expected += 5 * (below + c) * c + c + 2 * c;
    }
    expected += 26;
    assert_eq!(count_wave(&cfg), expected);
    assert_eq!(expected, 4_977_746);
}

/// Encoder weights 25·174,608 + decoder weights 25·218,144 + biases 1,505 + batch-norm γ, β
/// on 1,504 channels = 9,823,313 (no count is printed by the paper).
#[test]
fn deep_unet_full_size_count_and_shapes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = DeepUNet::new(&vs.root(), &DeepUNetConfig::jansson2017()).unwrap();
    assert_eq!(parameter_count(&vs), 25 * 174_608 + 25 * 218_144 + 1_505 + 2 * 1_504);
    assert_eq!(parameter_count(&vs), 9_823_313);
    tch::manual_seed(1);
    let x = Tensor::rand([2, 1, 128, 64], (Kind::Float, Device::Cpu));
    let m = net.mask(&x, false).unwrap();
    assert_eq!(m.size(), vec![2, 1, 128, 64]);
    let (lo, hi) = (m.min().double_value(&[]), m.max().double_value(&[]));
    assert!(lo >= 0.0 && hi <= 1.0, "sigmoid mask in [0, 1]: {lo}..{hi}");
    let y = net.forward_t(&x, true).unwrap();
    assert!(y.le_tensor(&(&x + 1e-6)).all().int64_value(&[]) == 1, "masked ≤ input");
    let err = net.mask(&Tensor::rand([1, 1, 100, 64], (Kind::Float, Device::Cpu)), false);
    assert!(matches!(err, Err(Error::InvalidConfig { .. })));
    // Rank 1 and 3.
    for (dims, shape) in [(1usize, vec![1, 1, 256]), (3, vec![1, 1, 8, 8, 16])] {
        let cfg = DeepUNetConfig { dims, channels: vec![4, 8, 8], ..DeepUNetConfig::jansson2017() };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DeepUNet::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::rand(shape.as_slice(), (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).unwrap().size(), shape);
    }
}
