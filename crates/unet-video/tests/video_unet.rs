//! The video U-Net's configurations: shapes, temporal behaviour, parameter identities, errors.

use tch::{nn, Device, Kind, Tensor};
use unet_video::models::clip_diffusion::Variant;
use unet_video::models::upscale;
use unet_video::models::video_unet::{
    batch_as_frames, frames_as_batch, VideoUNet, VideoUNetConfig,
};
use unet_video::unet_core::parameter_count;

fn count(cfg: &VideoUNetConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    VideoUNet::new(&vs.root(), cfg).unwrap();
    parameter_count(&vs)
}

fn randn(s: &[i64]) -> Tensor {
    Tensor::randn(s, (Kind::Float, Device::Cpu))
}

#[test]
fn latent_shift_has_exactly_the_image_unets_parameters() {
    for (ch, layers, groups) in [(vec![16, 32, 32], 1, 8), (vec![128, 256, 512, 512], 2, 32)] {
        let image = VideoUNetConfig::image(4, 4, &ch, layers, groups);
        let shift = VideoUNetConfig::latent_shift(4, 4, &ch, layers, groups);
        assert_eq!(count(&image), count(&shift), "channels {ch:?}");
        // Same names and shapes, so an image checkpoint loads into Latent-Shift unchanged.
        let (a, b) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
        VideoUNet::new(&a.root(), &image).unwrap();
        VideoUNet::new(&b.root(), &shift).unwrap();
        let names = |vs: &nn::VarStore| {
            let mut v: Vec<(String, Vec<i64>)> =
                vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
            v.sort();
            v
        };
        assert_eq!(names(&a), names(&b));
    }
    // The presets as reported.
    assert_eq!(count(&Variant::Image.full()), count(&Variant::LatentShift.full()));
    assert!(count(&Variant::Lumiere.full()) > count(&Variant::Image.full()));
    assert!(count(&upscale::full()) > 0);
}

#[test]
fn every_variant_maps_a_clip_to_a_clip() {
    tch::manual_seed(0);
    let t = Tensor::from_slice(&[10i64, 500]);
    for v in [Variant::Image, Variant::LatentShift, Variant::Lumiere] {
        let cfg = v.small(8).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = VideoUNet::new(&vs.root(), &cfg).unwrap();
        let y = net.forward(&randn(&[2, 1, 8, 16, 16]), Some(&t)).unwrap();
        assert_eq!(y.size(), vec![2, 1, 8, 16, 16], "{v:?}");
        // Odd spatial sizes work too (the decoder up-samples to each skip's size).
        let y = net.forward(&randn(&[1, 1, 4, 13, 11]), Some(&t.narrow(0, 0, 1))).unwrap();
        assert_eq!(y.size(), vec![1, 1, 4, 13, 11], "{v:?}");
    }
    let cfg = upscale::small(8, true).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = VideoUNet::new(&vs.root(), &cfg).unwrap();
    assert_eq!(
        net.forward(&randn(&[1, 1, 5, 16, 20]), None).unwrap().size(),
        vec![1, 1, 5, 16, 20]
    );
}

/// Output change in each frame when input frame `k` changes.
fn frame_influence(net: &VideoUNet, k: i64, frames: i64) -> Vec<f64> {
    tch::manual_seed(1);
    let x = randn(&[1, 1, frames, 16, 16]);
    let t = Tensor::from_slice(&[300i64]);
    let y = net.forward(&x, Some(&t)).unwrap();
    let x2 = x.copy();
    let _ = x2.narrow(2, k, 1).f_add_(&randn(&[1, 1, 1, 16, 16])).unwrap();
    let d = (net.forward(&x2, Some(&t)).unwrap() - y).abs().sum_dim_intlist(
        [0, 1, 3, 4].as_slice(),
        false,
        Kind::Double,
    );
    Vec::<f64>::try_from(d).unwrap()
}

#[test]
fn only_the_image_unet_treats_frames_independently() {
    for v in [Variant::Image, Variant::LatentShift, Variant::Lumiere] {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = VideoUNet::new(&vs.root(), &v.small(8).unwrap()).unwrap();
        let d = frame_influence(&net, 0, 8);
        assert!(d[0] > 0.0, "{v:?}: frame 0 must depend on itself");
        match v {
            Variant::Image => {
                assert!(d[1..].iter().all(|&x| x == 0.0), "image U-Net mixed frames: {d:?}")
            }
            // The shift moves channels by one frame per convolution: 4 res blocks × 2 convs on
            // the finest path reach far; the last frame still sees the first.
            _ => assert!(d[7] > 1e-6, "{v:?}: frame 7 does not see frame 0: {d:?}"),
        }
    }
}

#[test]
fn bad_configs_and_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut cfg = Variant::Lumiere.small(8).unwrap();
    cfg.temporal_downsample.pop();
    let e = VideoUNet::new(&vs.root(), &cfg).unwrap_err().to_string();
    assert!(e.contains("temporal_downsample"), "{e}");
    let mut cfg = Variant::Image.small(8).unwrap();
    cfg.norm_num_groups = 3;
    assert!(VideoUNet::new(&vs.root(), &cfg).unwrap_err().to_string().contains("norm_num_groups"));
    let mut cfg = Variant::Image.small(8).unwrap();
    cfg.conv = unet_video::unet_core::layers::ConvKind::Separable;
    assert!(VideoUNet::new(&vs.root(), &cfg).is_err());
    assert!(Variant::Image.small(12).is_err());
    // Lumiere halves time twice: frames must be a multiple of 4.
    let net = VideoUNet::new(&vs.root(), &Variant::Lumiere.small(8).unwrap()).unwrap();
    let t = Tensor::from_slice(&[1i64]);
    let e = net.forward(&randn(&[1, 1, 6, 16, 16]), Some(&t)).unwrap_err().to_string();
    assert!(e.contains("multiple of 4"), "{e}");
    assert!(net.forward(&randn(&[1, 2, 8, 16, 16]), Some(&t)).is_err());
    assert!(net
        .forward(&randn(&[1, 1, 8, 16, 16]), None)
        .unwrap_err()
        .to_string()
        .contains("timesteps"));
}

#[test]
fn frames_fold_into_the_batch_and_back() {
    let x = randn(&[2, 3, 4, 5, 6]);
    let f = frames_as_batch(&x).unwrap();
    assert_eq!(f.size(), vec![8, 3, 5, 6]);
    assert!(f.get(5).equal(&x.get(1).select(1, 1)));
    assert!(batch_as_frames(&f, 4).unwrap().equal(&x));
    assert!(batch_as_frames(&f, 3).is_err());
    assert!(frames_as_batch(&f).is_err());
}
