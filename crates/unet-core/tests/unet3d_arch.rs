//! The 3D U-Net of Çiçek et al. 2016 and S3D-UNet (Chen et al. 2018): the published parameter
//! count, shapes at ranks 2 and 3, and typed errors.

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{UNet3d, UNet3dConfig};
use unet_core::parameter_count;

fn count(cfg: &UNet3dConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    UNet3d::new(&vs.root(), cfg).unwrap();
    parameter_count(&vs)
}

#[test]
fn cicek2016_has_the_published_parameter_count() {
    // Çiçek et al. 2016, Section 2: "The architecture has 19069955 parameters in total."
    assert_eq!(count(&UNet3dConfig::cicek2016()), 19_069_955);
    // With PyTorch's affine batch norm: + 2 × (sum of conv widths) = 4,672.
    assert_eq!(count(&UNet3dConfig { affine_norm: true, ..UNet3dConfig::cicek2016() }), 19_074_627);
    // Separable convolutions: far fewer parameters.
    let s3d = count(&UNet3dConfig::s3d_unet());
    assert!(s3d * 5 < 19_069_955, "S3D-UNet has {s3d}");
}

#[test]
fn mac_count_matches_a_hand_count() {
    // dims 1, base 1, depth 1, 1 → 1 channels, 4 samples: every term by hand.
    let cfg = UNet3dConfig {
        dims: 1,
        in_channels: 1,
        out_channels: 1,
        base: 1,
        depth: 1,
        ..UNet3dConfig::cicek2016()
    };
    // down 0: 4·3·1·1 + 4·3·1·2 = 36; down 1 (2 samples): 2·3·2·2 + 2·3·2·4 = 72;
    // up: 2·2·4·4 = 64 (up-conv), 4·3·6·2 = 144, 4·3·2·2 = 48; head 4·2·1 = 8.
    assert_eq!(cfg.macs(4), 36 + 72 + 64 + 144 + 48 + 8);
    let full = UNet3dConfig::cicek2016();
    let sep = UNet3dConfig::s3d_unet();
    assert!(sep.macs(64 * 64 * 64) * 5 < full.macs(64 * 64 * 64));
}

#[test]
fn shapes_at_ranks_two_and_three() {
    for dims in [2usize, 3] {
        let cfg = UNet3dConfig {
            dims,
            base: 4,
            depth: 2,
            in_channels: 2,
            out_channels: 5,
            ..UNet3dConfig::cicek2016()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = UNet3d::new(&vs.root(), &cfg).unwrap();
        let mut shape = vec![2, 2];
        shape.extend(std::iter::repeat_n(8, dims));
        let y = net
            .forward_t(&Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)), true)
            .unwrap();
        shape[1] = 5;
        assert_eq!(y.size(), shape);
    }
}

#[test]
fn bad_configs_and_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(
        UNet3d::new(&vs.root(), &UNet3dConfig { depth: 0, ..UNet3dConfig::cicek2016() }).is_err()
    );
    let cfg = UNet3dConfig { base: 2, ..UNet3dConfig::cicek2016() };
    let net = UNet3d::new(&(vs.root() / "n"), &cfg).unwrap();
    let e = net
        .forward_t(&Tensor::zeros([1, 3, 8, 8, 12], (Kind::Float, Device::Cpu)), false)
        .unwrap_err();
    assert!(e.to_string().contains("multiple of 8"), "{e}");
    assert!(net
        .forward_t(&Tensor::zeros([1, 1, 8, 8, 8], (Kind::Float, Device::Cpu)), false)
        .is_err());
}

#[test]
fn dresunet_preset_is_a_3d_residual_unet() {
    use unet_core::arch::{ResUNet, ResUNetConfig};
    let vs = nn::VarStore::new(Device::Cpu);
    ResUNet::new(&vs.root(), &ResUNetConfig::dresunet()).unwrap();
    let n = parameter_count(&vs);
    println!("dresunet params {n}");
    assert_eq!(n, DRESUNET_PARAMS);
    // The same preset at a small width runs on a volume: 4 modalities in, 4 label maps out.
    let cfg = ResUNetConfig { channels: vec![4, 8, 16], ..ResUNetConfig::dresunet() };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ResUNet::new(&vs.root(), &cfg).unwrap();
    let y = net
        .forward_t(&Tensor::randn([1, 4, 16, 16, 16], (Kind::Float, Device::Cpu)), false)
        .unwrap();
    assert_eq!(y.size(), [1, 4, 16, 16, 16]);
}

/// Our reading of dResU-Net (see `ResUNetConfig::dresunet`); the survey quotes 30.5M.
const DRESUNET_PARAMS: i64 = 26_767_748;
