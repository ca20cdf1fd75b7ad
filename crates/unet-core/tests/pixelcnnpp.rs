//! PixelCNN++: the CIFAR-10 parameter count of the official code, strict raster-order
//! causality, reference state-dict names, and errors.

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{PixelCnnPP, PixelCnnPPConfig};
use unet_core::parameter_count;

#[test]
fn cifar10_model_matches_the_official_count() {
    // openai/pixel-cnn `train.py` defaults (nr_resnet 5, nr_filters 160, nr_logistic_mix 10):
    // 53,578,240 weights v + 40,420 weight-norm scales g + 40,420 biases = 53,659,080, the
    // variables the official TF graph holds (see docs/models/pixelcnnpp.md).
    let vs = nn::VarStore::new(Device::Cpu);
    PixelCnnPP::new(&vs.root(), &PixelCnnPPConfig::cifar10()).unwrap();
    assert_eq!(parameter_count(&vs), 53_659_080);
    let v: i64 = vs
        .variables()
        .iter()
        .filter(|(k, _)| k.ends_with("weight_v"))
        .map(|(_, t)| t.numel() as i64)
        .sum();
    assert_eq!(v, 53_578_240);
    let names = vs.variables();
    for k in [
        "u_init.conv.weight_v",
        "ul_init.1.conv.weight_g",
        "up_layers.0.ul_stream.4.nin_skip.lin_a.weight_v",
        "down_layers.2.ul_stream.5.nin_skip.lin_a.weight_v",
        "downsize_ul_stream.1.conv.bias",
        "upsize_u_stream.0.deconv.weight_v",
        "nin_out.lin_a.weight_g",
    ] {
        assert!(names.contains_key(k), "missing {k}");
    }
    // The ul stream of the down pass reads u and the up-pass ul: a 4F → F nin.
    assert_eq!(names["down_layers.0.ul_stream.0.nin_skip.lin_a.weight_v"].size(), vec![160, 640]);
}

#[test]
fn outputs_depend_only_on_earlier_pixels() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = PixelCnnPPConfig {
        nr_resnet: 1,
        nr_filters: 8,
        nr_logistic_mix: 2,
        input_channels: 1,
        dropout: 0.0,
    };
    let net = PixelCnnPP::new(&vs.root(), &cfg).unwrap();
    let (h, w) = (8i64, 8i64);
    let x = Tensor::rand([1, 1, h, w], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let base = net.forward_t(&x, false).unwrap();
    for p in [0i64, 5, 9, 27, 36, 63] {
        let (i, j) = (p / w, p % w);
        let x2 = x.copy();
        let _ = x2.get(0).get(0).get(i).get(j).fill_(0.987);
        let out = net.forward_t(&x2, false).unwrap();
        let diff = (&out - &base).abs().sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        let diff = diff.view([-1]);
        for q in 0..h * w {
            let changed = diff.double_value(&[q]) > 1e-6;
            if q <= p {
                assert!(!changed, "output at {q} changed when pixel {p} changed");
            }
        }
        // And the pixel right after p does see it (the model is not trivially blind).
        if p + 1 < h * w {
            assert!(diff.double_value(&[p + 1]) > 1e-6, "pixel {} ignores pixel {p}", p + 1);
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg =
        PixelCnnPPConfig { nr_resnet: 1, nr_filters: 4, input_channels: 1, ..Default::default() };
    let net = PixelCnnPP::new(&vs.root(), &cfg).unwrap();
    let e = net.forward_t(&Tensor::zeros([1, 1, 10, 8], (Kind::Float, Device::Cpu)), false);
    assert!(e.unwrap_err().to_string().contains("multiples of 4"));
    let e = net.forward_t(&Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu)), false);
    assert!(matches!(e.unwrap_err(), unet_core::Error::InputShape { .. }));
    let bad = PixelCnnPPConfig { input_channels: 2, ..Default::default() };
    assert!(PixelCnnPP::new(&vs.root(), &bad).is_err());
}
