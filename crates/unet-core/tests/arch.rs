//! ResUNet and MultiResUNet: full-size parameter counts against the published figures, shapes
//! over 1D/2D/3D, and clear errors for impossible configs and inputs.

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{MultiResUNet, MultiResUNetConfig, ResUNet, ResUNetConfig};
use unet_core::{parameter_count, Error};

fn sum_where(vs: &nn::VarStore, keep: impl Fn(&str) -> bool) -> i64 {
    vs.variables().iter().filter(|(k, _)| keep(k)).map(|(_, t)| t.numel() as i64).sum()
}

#[test]
fn resunet_full_size_matches_table_1() {
    // Zhang et al. 2018, Table 1 and Sec. III: "7.8M parameters". The convolutions and norms of
    // Table 1 count 7,789,313 (= 7.8M); the 1×1 conv + BN projections the shortcuts need (every
    // unit changes width or stride) add 434,496, which the paper's figure leaves out. See
    // docs/models/resunet.md.
    let vs = nn::VarStore::new(Device::Cpu);
    ResUNet::new(&vs.root(), &ResUNetConfig::zhang2018()).unwrap();
    assert_eq!(parameter_count(&vs), 8_223_809);
    let trainable: std::collections::HashSet<String> =
        vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).map(|(k, _)| k).collect();
    let without_shortcuts = sum_where(&vs, |k| {
        trainable.contains(k) && !k.contains("input_skip") && !k.contains("conv_skip")
    });
    assert_eq!(without_shortcuts, 7_789_313);
}

#[test]
fn multiresunet_full_size_matches_the_published_count() {
    // Ibtehaz & Rahman 2020 report 7,262,750 parameters for MultiResUNet: the Keras "Total
    // params" of the authors' 2D model (3 input channels, 1 sigmoid output), which counts the
    // batch-norm moving statistics too: 7,238,228 trainable + 24,522 moving mean/variance.
    let vs = nn::VarStore::new(Device::Cpu);
    MultiResUNet::new(&vs.root(), &MultiResUNetConfig::ibtehaz2020()).unwrap();
    assert_eq!(parameter_count(&vs), 7_238_228);
    let stats = sum_where(&vs, |k| k.ends_with("running_mean") || k.ends_with("running_var"));
    assert_eq!(parameter_count(&vs) + stats, 7_262_750);
    // Filter splits of the paper (W = 1.67·U, ⌊.167W⌋ + ⌊.333W⌋ + ⌊.5W⌋).
    let cfg = MultiResUNetConfig::ibtehaz2020();
    assert_eq!(cfg.split(32), [8, 17, 26]);
    assert_eq!(cfg.block_out(512), 853);
}

#[test]
fn both_variants_run_in_1d_2d_and_3d() {
    for (dims, size) in [(1usize, 32i64), (2, 16), (3, 8)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut shape = vec![2, 1];
        shape.extend(std::iter::repeat_n(size, dims));
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        let rcfg = ResUNetConfig {
            dims,
            in_channels: 1,
            out_channels: 3,
            channels: vec![4, 8, 16],
            ..ResUNetConfig::zhang2018()
        };
        let r = ResUNet::new(&(vs.root() / "r"), &rcfg).unwrap();
        let y = r.forward_t(&x, true).unwrap();
        let mut want = shape.clone();
        want[1] = 3;
        assert_eq!(y.size(), want, "resunet {dims}D");
        assert!(f64::try_from(y.min()).unwrap() >= 0.0, "sigmoid head");
        let mcfg = MultiResUNetConfig {
            dims,
            in_channels: 1,
            out_channels: 3,
            base: 8,
            depth: 2,
            ..MultiResUNetConfig::ibtehaz2020()
        };
        let m = MultiResUNet::new(&(vs.root() / "m"), &mcfg).unwrap();
        assert_eq!(m.forward_logits_t(&x, false).unwrap().size(), want, "multiresunet {dims}D");
    }
}

#[test]
fn the_published_state_dict_names_are_used() {
    let vs = nn::VarStore::new(Device::Cpu);
    ResUNet::new(&vs.root(), &ResUNetConfig::zhang2018()).unwrap();
    let names = vs.variables();
    for k in [
        "input_layer.0.weight",
        "input_layer.1.running_var",
        "input_skip.0.weight",
        "residual_conv_1.conv_block.0.weight",
        "residual_conv_2.conv_skip.1.bias",
        "bridge.conv_block.5.weight",
        "up_residual_conv3.conv_block.2.weight",
        "output_layer.0.bias",
    ] {
        assert!(names.contains_key(k), "resunet lacks {k}");
    }
    let vs = nn::VarStore::new(Device::Cpu);
    MultiResUNet::new(&vs.root(), &MultiResUNetConfig::ibtehaz2020()).unwrap();
    let names = vs.variables();
    for k in [
        "multiresblock1.conv_3x3.conv1.weight",
        "multiresblock1.shortcut.batchnorm.bias",
        "multiresblock5.batch_norm2.weight",
        "respath1.convs.3.conv1.weight",
        "respath4.bns.0.running_mean",
        "upsample6.weight",
        "multiresblock9.conv_7x7.batchnorm.running_var",
        "conv_final.conv1.weight",
    ] {
        assert!(names.contains_key(k), "multiresunet lacks {k}");
    }
    // Keras `scale=False`: γ of a conv2d_bn norm is stored but not trained.
    let g = &names["multiresblock1.conv_3x3.batchnorm.weight"];
    assert!(!g.requires_grad());
    assert!(names["multiresblock1.batch_norm1.weight"].requires_grad());
}

#[test]
fn impossible_configs_and_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let bad = ResUNetConfig { channels: vec![64], ..ResUNetConfig::zhang2018() };
    let e = ResUNet::new(&vs.root(), &bad).unwrap_err();
    assert!(matches!(e, Error::InvalidConfig { field: "channels", .. }), "{e}");
    let bad = MultiResUNetConfig { alpha: 0.1, base: 2, ..MultiResUNetConfig::ibtehaz2020() };
    let e = MultiResUNet::new(&vs.root(), &bad).unwrap_err();
    assert!(e.to_string().contains("too small"), "{e}");

    let cfg = ResUNetConfig { channels: vec![4, 8, 16], ..ResUNetConfig::zhang2018() };
    let net = ResUNet::new(&(vs.root() / "ok"), &cfg).unwrap();
    let x = Tensor::zeros([1, 3, 18, 16], (Kind::Float, Device::Cpu));
    let e = net.forward_t(&x, false).unwrap_err();
    assert!(e.to_string().contains("multiple of 4"), "{e}");
    let x = Tensor::zeros([1, 1, 16, 16], (Kind::Float, Device::Cpu));
    assert!(matches!(net.forward_t(&x, false).unwrap_err(), Error::InputShape { .. }));
}

#[test]
fn pix2pix_unet_256_matches_the_official_count() {
    // junyanz/pytorch-CycleGAN-and-pix2pix prints "[Network G] Total number of parameters :
    // 54.414 M" for `--netG unet_256` (3 → 3, batch norm): exactly 54,413,955.
    use unet_core::arch::{UnetGenerator, UnetGeneratorConfig};
    let vs = nn::VarStore::new(Device::Cpu);
    UnetGenerator::new(&vs.root(), &UnetGeneratorConfig::unet_256()).unwrap();
    assert_eq!(parameter_count(&vs), 54_413_955);
    let names = vs.variables();
    for k in [
        "model.model.0.weight",
        "model.model.3.bias",
        "model.model.1.model.2.running_mean",
        "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight",
        "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.4.weight",
    ] {
        assert!(names.contains_key(k), "missing {k}");
    }
    // The 70×70 PatchGAN on (input, output) pairs: 2,768,705 ("[Network D] … 2.769 M").
    let vs = nn::VarStore::new(Device::Cpu);
    unet_core::gan::PatchDiscriminator::new(&vs.root(), &Default::default()).unwrap();
    assert_eq!(parameter_count(&vs), 2_768_705);
}

#[test]
fn pix2pix_generator_shapes_and_errors() {
    use unet_core::arch::{UnetGenerator, UnetGeneratorConfig};
    for (dims, size) in [(1usize, 32i64), (2, 32), (3, 32)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = UnetGeneratorConfig {
            dims,
            input_nc: 2,
            output_nc: 1,
            num_downs: 5,
            ngf: 4,
            ..UnetGeneratorConfig::unet_256()
        };
        let g = UnetGenerator::new(&vs.root(), &cfg).unwrap();
        let mut shape = vec![2, 2];
        shape.extend(std::iter::repeat_n(size, dims));
        let y = g.forward_t(&Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)), true);
        let y = y.unwrap();
        shape[1] = 1;
        assert_eq!(y.size(), shape);
        assert!(f64::try_from(y.abs().max()).unwrap() <= 1.0);
        let bad = Tensor::zeros([1, 2, 24, 32, 32], (Kind::Float, Device::Cpu));
        if dims == 3 {
            assert!(g.forward_t(&bad, false).unwrap_err().to_string().contains("multiple of 32"));
        }
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let bad = UnetGeneratorConfig { num_downs: 3, ..UnetGeneratorConfig::unet_256() };
    assert!(UnetGenerator::new(&vs.root(), &bad).is_err());
}
