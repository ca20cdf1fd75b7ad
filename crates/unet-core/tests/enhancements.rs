//! The survey's enhancements: attention kinds on every rank, temporal attention independence,
//! attention gates, FreeU, ResPath, efficient convolutions, residual blocks, zero-initialised
//! control injection, and the full-size parameter counts of the diffusers presets.

use tch::{nn, Device, Kind, Tensor};
use unet_core::attention::{
    Attention, AttentionConfig, AttentionGate, AxisAttention, Transformer, TransformerConfig,
};
use unet_core::diffusers::{presets, skip_count, ControlResiduals, DiffusersConfig, DiffusersUNet};
use unet_core::layers::{ConvKind, SpatialConv};
use unet_core::resnet::{EmbeddingInjection, ResnetBlock, ResnetBlockConfig};
use unet_core::skip::{fourier_filter, FreeU, ZeroInjection};
use unet_core::{parameter_count, Norm, SkipFusion, UNet, UNetConfig};

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

fn map_shape(dims: usize, c: i64) -> Vec<i64> {
    let mut s = vec![2, c];
    s.extend(std::iter::repeat_n(4, dims));
    s
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn every_attention_kind_runs_on_1d_2d_3d() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    for dims in 1..=3usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let x = randn(&map_shape(dims, 16));
        let ctx = randn(&[2, 5, 12]);
        let selfa =
            Attention::new(&root / "self", 16, &AttentionConfig::spatial(16, 8, 4, 1e-5)).unwrap();
        assert_eq!(selfa.forward_map(&x, None).unwrap().size(), x.size());
        let cross = Attention::new(
            &root / "cross",
            16,
            &AttentionConfig { cross_dim: Some(12), ..AttentionConfig::new(2, 8) },
        )
        .unwrap();
        assert_eq!(cross.forward_map(&x, Some(&ctx)).unwrap().size(), x.size());
        for linear in [false, true] {
            let t = Transformer::new(
                &root / format!("tr{linear}"),
                dims,
                16,
                &TransformerConfig {
                    heads: 2,
                    dim_head: 8,
                    layers: 2,
                    cross_dim: Some(12),
                    norm_groups: 4,
                    use_linear_projection: linear,
                    only_cross_attention: false,
                },
            )
            .unwrap();
            assert_eq!(t.forward(&x, Some(&ctx)).unwrap().size(), x.size());
        }
        for axis in 0..dims {
            let a = AxisAttention::new(&root / format!("axis{axis}"), dims, 16, axis, 4, false)
                .unwrap();
            assert_eq!(a.forward(&x).unwrap().size(), x.size());
        }
        let gate = AttentionGate::new(&root / "gate", dims, 16, 16, 8, Norm::Batch).unwrap();
        assert_eq!(gate.forward_t(&x, &x, true).unwrap().size(), x.size());
    }
}

#[test]
fn temporal_attention_mixes_frames_only_along_its_axis() {
    tch::set_num_threads(1);
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let x = randn(&[1, 8, 5, 4, 4]); // [B, C, T, H, W]
    for causal in [false, true] {
        let a = AxisAttention::new(vs.root() / format!("t{causal}"), 3, 8, 0, 2, causal).unwrap();
        let y = a.forward(&x).unwrap();
        // Perturb frame t = 2 at pixel (1, 3) only, in one channel: the block's LayerNorm over
        // channels removes a shift of all channels alike, which left only rounding noise to
        // detect (the test failed about one run in five).
        let x2 = x.copy();
        let _ =
            x2.narrow(1, 0, 1).narrow(2, 2, 1).narrow(3, 1, 1).narrow(4, 3, 1).g_add_scalar_(5.0);
        let diff = (a.forward(&x2).unwrap() - &y).abs().sum_dim_intlist(1, false, Kind::Float); // [1, T, H, W]
        let d = |t: i64, h: i64, w: i64| diff.double_value(&[0, t, h, w]);
        // Other pixels are untouched in every frame.
        let other_pixels = diff.narrow(2, 0, 1).sum(Kind::Float).double_value(&[]);
        assert_eq!(other_pixels, 0.0, "pixels outside (1, 3) changed");
        assert!(d(2, 1, 3) > 0.0);
        if causal {
            assert_eq!(d(0, 1, 3) + d(1, 1, 3), 0.0, "causal: earlier frames must not change");
            assert!(d(4, 1, 3) > 0.0);
        } else {
            assert!(d(0, 1, 3) > 0.0, "the same pixel in other frames attends to frame 2");
        }
    }
}

#[test]
fn attention_gate_only_scales_the_skip() {
    tch::set_num_threads(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let gate = AttentionGate::new(vs.root(), 2, 8, 8, 4, Norm::Batch).unwrap();
    let g = randn(&[2, 8, 6, 6]);
    let x = randn(&[2, 8, 6, 6]);
    let alpha = gate.coefficients(&g, &x, false).unwrap();
    assert_eq!(alpha.size(), vec![2, 1, 6, 6]);
    assert!(alpha.min().double_value(&[]) > 0.0 && alpha.max().double_value(&[]) < 1.0);
    let y = gate.forward_t(&g, &x, false).unwrap();
    assert!(y.allclose(&(&x * &alpha), 1e-6, 1e-7, false));
    // Where the skip is zero the output is zero; signs are kept.
    let x0 = x.copy();
    let _ = x0.narrow(2, 0, 3).zero_();
    let y0 = gate.forward_t(&g, &x0, false).unwrap();
    assert_eq!(max_abs(&y0.narrow(2, 0, 3)), 0.0);
    assert!((y0.sign() * x0.sign()).ge(0.0).all().int64_value(&[]) == 1);
}

#[test]
fn freeu_identity_is_exact_and_filters_only_low_frequencies() {
    tch::set_num_threads(1);
    tch::manual_seed(2);
    // Plain U-Net.
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = UNetConfig { channels: vec![8, 16, 32], ..UNetConfig::default() };
    let mut net = UNet::new(&vs.root(), &cfg).unwrap();
    let x = randn(&[1, 1, 16, 16]);
    let base = net.forward_t(&x, false).unwrap();
    net.set_freeu(Some(FreeU::identity()));
    assert!(net.forward_t(&x, false).unwrap().equal(&base), "b = s = 1 must be the identity");
    net.set_freeu(Some(FreeU { b1: 1.5, b2: 1.6, s1: 0.9, s2: 0.2 }));
    assert!(max_abs(&(net.forward_t(&x, false).unwrap() - &base)) > 1e-4);

    // diffusers model.
    let dcfg = DiffusersConfig::from_json(&presets::tiny_json("sd-v1-5-unet").unwrap()).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut m = DiffusersUNet::new(&vs.root(), &dcfg).unwrap();
    let s = randn(&[1, 4, 8, 8]);
    let t = Tensor::from_slice(&[3i64]);
    let ctx = randn(&[1, 3, 32]);
    let y = m.forward(&s, &t, Some(&ctx), None).unwrap();
    m.set_freeu(Some(FreeU::identity()));
    assert!(m.forward(&s, &t, Some(&ctx), None).unwrap().equal(&y));

    // The filter: scale 1 keeps the signal, scale 0 removes the mean (the DC term), any rank.
    for shape in [vec![2, 3, 8], vec![2, 3, 8, 8], vec![1, 2, 4, 8, 8]] {
        let z = randn(&shape) + 3.0;
        assert!(fourier_filter(&z, 1, 1.0).unwrap().allclose(&z, 1e-4, 1e-5, false));
        let f = fourier_filter(&z, 1, 0.0).unwrap();
        let axes: Vec<i64> = (2..shape.len() as i64).collect();
        let mean = f.mean_dim(axes.as_slice(), false, Kind::Float);
        assert!(max_abs(&mean) < 1e-4, "DC survived for {shape:?}");
    }
}

#[test]
fn gated_respath_and_attention_unets_train() {
    tch::set_num_threads(1);
    tch::manual_seed(3);
    for dims in [1usize, 2, 3] {
        for skip in [SkipFusion::AttentionGated, SkipFusion::ResPath] {
            let cfg = UNetConfig {
                dims,
                channels: vec![8, 16, 32],
                skip,
                attention_levels: vec![1, 2],
                attention_head_dim: 8,
                ..UNetConfig::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let net = UNet::new(&vs.root(), &cfg).unwrap();
            let mut shape = vec![2, 1];
            shape.extend(std::iter::repeat_n(8, dims));
            let x = randn(&shape);
            let y = net.forward_t(&x, true).unwrap();
            assert_eq!(y.size(), shape);
            y.square().mean(Kind::Float).backward();
            let names: Vec<String> = vs.variables().keys().cloned().collect();
            let part = if skip == SkipFusion::AttentionGated {
                "up1.att.psi.0.weight"
            } else {
                "up2.respath.1.conv.weight"
            };
            assert!(names.iter().any(|k| k == part), "{part} missing");
            assert!(names.iter().any(|k| k == "down2.attention.to_q.weight"));
            assert!(
                vs.variables()["inc.double_conv.0.weight"]
                    .grad()
                    .abs()
                    .sum(Kind::Float)
                    .double_value(&[])
                    > 0.0
            );
        }
    }
    let bad =
        UNetConfig { channels: vec![8, 16], attention_levels: vec![2], ..UNetConfig::default() };
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(UNet::new(&vs.root(), &bad).unwrap_err().to_string().contains("attention_levels"));
}

#[test]
fn efficient_convolutions_have_the_expected_parameter_counts() {
    let (cin, cout, k) = (16i64, 32i64, 3i64);
    for dims in 1..=3usize {
        let kd = k.pow(dims as u32);
        let cases: Vec<(ConvKind, i64)> = vec![
            (ConvKind::Full, cin * cout * kd + cout),
            (ConvKind::Dilated(2), cin * cout * kd + cout),
            // depthwise k^d per input channel (+bias) then pointwise cin→cout (+bias)
            (ConvKind::Separable, cin * kd + cin + cin * cout + cout),
        ];
        let mut cases = cases;
        if dims >= 2 {
            // spatial: kernel 1×k^(d-1) cin→cout; temporal: k×1… cout→cout
            cases.push((
                ConvKind::Factorised,
                cin * cout * k.pow(dims as u32 - 1) + cout + cout * cout * k + cout,
            ));
        }
        for (kind, want) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let conv = SpatialConv::new(vs.root(), dims, cin, cout, k, kind, true).unwrap();
            assert_eq!(parameter_count(&vs), want, "{kind:?} in {dims}D");
            let mut shape = vec![1, cin];
            shape.extend(std::iter::repeat_n(6, dims));
            let y = conv.forward(&randn(&shape)).unwrap();
            shape[1] = cout;
            assert_eq!(y.size(), shape, "{kind:?} keeps the size");
        }
    }
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(SpatialConv::new(vs.root(), 1, 4, 4, 3, ConvKind::Factorised, true).is_err());
}

#[test]
fn residual_blocks_inject_embeddings() {
    tch::set_num_threads(1);
    for dims in 1..=3usize {
        for injection in [EmbeddingInjection::Add, EmbeddingInjection::ScaleShift] {
            let cfg = ResnetBlockConfig {
                norm: Norm::Group { groups: 4 },
                temb_channels: Some(10),
                injection,
                dropout: 0.1,
                ..Default::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let block = ResnetBlock::new(vs.root(), dims, 8, 16, &cfg).unwrap();
            let x = randn(&map_shape(dims, 8));
            let temb = randn(&[2, 10]);
            let y = block.forward_t(&x, Some(&temb), false).unwrap();
            assert_eq!(y.size(), map_shape(dims, 16));
            let y2 = block.forward_t(&x, Some(&(temb * 2.0)), false).unwrap();
            assert!(max_abs(&(y2 - &y)) > 0.0, "the embedding must matter");
            assert!(block.forward_t(&x, None, false).is_err(), "missing embedding is an error");
            let has_shortcut = vs.variables().contains_key("conv_shortcut.weight");
            assert!(has_shortcut, "8 → 16 channels needs a 1×1 shortcut");
            let proj = &vs.variables()["time_emb_proj.weight"];
            let want = if injection == EmbeddingInjection::Add { 16 } else { 32 };
            assert_eq!(proj.size(), vec![want, 10]);
        }
    }
}

#[test]
fn zero_initialised_control_leaves_outputs_unchanged() {
    tch::set_num_threads(1);
    tch::manual_seed(4);
    // Plain U-Net.
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = UNetConfig { channels: vec![8, 16, 32], ..UNetConfig::default() };
    let net = UNet::new(&(vs.root() / "unet"), &cfg).unwrap();
    let inj = ZeroInjection::new(vs.root() / "zero_convs", 2, &net.control_channels()).unwrap();
    let x = randn(&[2, 1, 16, 16]);
    let feats: Vec<Tensor> =
        cfg.channels.iter().enumerate().map(|(l, &c)| randn(&[2, c, 16 >> l, 16 >> l])).collect();
    let res = inj.forward(&feats).unwrap();
    let base = net.forward_t(&x, false).unwrap();
    assert!(net.forward_with_control(&x, false, &res).unwrap().equal(&base));
    let nonzero: Vec<Tensor> = feats.iter().map(|f| f * 0.5).collect();
    assert!(max_abs(&(net.forward_with_control(&x, false, &nonzero).unwrap() - &base)) > 0.0);
    assert!(net.forward_with_control(&x, false, &res[..1]).is_err());

    // diffusers model: the residual list has one entry per skip.
    let dcfg = DiffusersConfig::from_json(&presets::tiny_json("sd-v1-5-unet").unwrap()).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let m = DiffusersUNet::new(&vs.root(), &dcfg).unwrap();
    let s = randn(&[1, 4, 8, 8]);
    let t = Tensor::from_slice(&[7i64]);
    let ctx = randn(&[1, 3, 32]);
    let y = m.forward(&s, &t, Some(&ctx), None).unwrap();
    let shapes: [(i64, i64); 4] = [(32, 8), (32, 8), (32, 4), (64, 4)];
    assert_eq!(skip_count(&dcfg), shapes.len());
    let chans: Vec<i64> = shapes.iter().map(|s| s.0).collect();
    let inj = ZeroInjection::new(vs.root() / "zero_convs", 2, &chans).unwrap();
    let feats: Vec<Tensor> = shapes.iter().map(|&(c, n)| randn(&[1, c, n, n])).collect();
    let down = inj.forward(&feats).unwrap();
    let mid = Tensor::zeros([1, 64, 4, 4], (Kind::Float, Device::Cpu));
    let yc = m
        .forward_with_control(
            &s,
            &t,
            Some(&ctx),
            None,
            Some(ControlResiduals { down: &down, mid: Some(&mid) }),
        )
        .unwrap();
    assert!(yc.equal(&y));
}

#[test]
fn diffusers_presets_have_the_published_parameter_counts() {
    // DDPM CIFAR-10: Ho et al. 2020 report 35.7M; diffusers' UNet2DModel on
    // google/ddpm-cifar10-32's config counts 35,746,307.
    let cfg = presets::ddpm_cifar10().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    DiffusersUNet::new(&vs.root(), &cfg).unwrap();
    assert_eq!(parameter_count(&vs), 35_746_307);
    assert_eq!(vs.variables().len(), 328, "state-dict tensors, as diffusers");
    // Stable Diffusion v1.5 UNet: 859,520,964 (diffusers on runwayml/stable-diffusion-v1-5).
    let cfg = presets::sd_v1_5().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    DiffusersUNet::new(&vs.root(), &cfg).unwrap();
    assert_eq!(parameter_count(&vs), 859_520_964);
    assert_eq!(vs.variables().len(), 686);
}

#[test]
fn unsupported_or_broken_diffusers_configs_are_errors() {
    let mut v = presets::tiny_json("sd-v1-5-unet").unwrap();
    v["addition_embed_type"] = "text_time".into();
    assert!(DiffusersConfig::from_json(&v)
        .unwrap_err()
        .to_string()
        .contains("addition_embed_type"));
    let mut v = presets::tiny_json("sd-v1-5-unet").unwrap();
    v["down_block_types"] = serde_json::json!(["CrossAttnDownBlock2D"]);
    assert!(DiffusersConfig::from_json(&v).is_err());
    let mut v = presets::tiny_json("ddpm-cifar10").unwrap();
    v["norm_num_groups"] = 7.into();
    assert!(DiffusersConfig::from_json(&v).unwrap_err().to_string().contains("not divisible"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    let e = unet_core::diffusers::folder::load(dir.path(), Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
}

#[test]
fn per_frame_conv_does_not_mix_frames() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let conv = SpatialConv::new(vs.root(), 3, 2, 4, 3, ConvKind::PerFrame, true).unwrap();
    // Same parameters as a 2D 3×3 conv: 4·2·9 + 4.
    assert_eq!(unet_core::parameter_count(&vs), 4 * 2 * 9 + 4);
    let x = randn(&[1, 2, 5, 6, 6]);
    let y = conv.forward(&x).unwrap();
    assert_eq!(y.size(), vec![1, 4, 5, 6, 6]);
    // Changing frame 2 changes frame 2 of the output only.
    let x2 = x.copy();
    let _ = x2
        .narrow(2, 2, 1)
        .f_add_(&Tensor::ones([1, 2, 1, 6, 6], (Kind::Float, Device::Cpu)))
        .unwrap();
    let d = (conv.forward(&x2).unwrap() - &y).abs().sum_dim_intlist(
        [0, 1, 3, 4].as_slice(),
        false,
        Kind::Float,
    );
    let d: Vec<f32> = Vec::try_from(d).unwrap();
    assert!(d[2] > 0.0);
    for (t, v) in d.iter().enumerate() {
        if t != 2 {
            assert_eq!(*v, 0.0, "frame {t} changed");
        }
    }
    assert!(SpatialConv::new(vs.root(), 1, 2, 4, 3, ConvKind::PerFrame, true).is_err());
}

#[test]
fn temporal_shift_moves_channels_in_time() {
    use unet_core::resnet::temporal_shift;
    // x[c, t] = 10·c + t, C = 8, T = 4, fold 1/4: channels 0-1 from t+1, 2-3 from t-1.
    let x = Tensor::from_slice(&(0..32).map(|i| (10 * (i / 4) + i % 4) as f32).collect::<Vec<_>>())
        .view([1, 8, 4, 1, 1]);
    let y = temporal_shift(&x, 4).unwrap();
    let v: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap();
    let at = |c: usize, t: usize| v[c * 4 + t];
    assert_eq!([at(0, 0), at(0, 1), at(0, 2), at(0, 3)], [1.0, 2.0, 3.0, 0.0]);
    assert_eq!([at(3, 0), at(3, 1), at(3, 2), at(3, 3)], [0.0, 30.0, 31.0, 32.0]);
    assert_eq!([at(5, 0), at(5, 3)], [50.0, 53.0]);
    assert!(temporal_shift(&randn(&[2, 8]), 4).is_err());
    // In a residual block: no parameters added, and frames now interact.
    let mut counts = Vec::new();
    let mut outs = Vec::new();
    for shift in [None, Some(8)] {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ResnetBlockConfig {
            norm: Norm::Group { groups: 4 },
            conv: ConvKind::PerFrame,
            temporal_shift: shift,
            ..Default::default()
        };
        let block = ResnetBlock::new(vs.root(), 3, 16, 16, &cfg).unwrap();
        counts.push(unet_core::parameter_count(&vs));
        tch::manual_seed(6);
        let x = randn(&[1, 16, 4, 5, 5]);
        let x2 = x.copy();
        let _ = x2.narrow(2, 0, 1).f_add_(&randn(&[1, 16, 1, 5, 5])).unwrap(); // not a rescaling: GroupNorm would undo that
        let d = (block.forward_t(&x2, None, false).unwrap()
            - block.forward_t(&x, None, false).unwrap())
        .abs()
        .narrow(2, 1, 1)
        .sum(Kind::Float)
        .double_value(&[]);
        outs.push(d);
    }
    assert_eq!(counts[0], counts[1], "the shift adds no parameters");
    assert_eq!(outs[0], 0.0, "per-frame block: frame 1 ignores frame 0");
    assert!(outs[1] > 1e-3, "shifted block: frame 1 sees frame 0");
    let bad = ResnetBlockConfig { temporal_shift: Some(64), ..Default::default() };
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(ResnetBlock::new(
        vs.root(),
        3,
        32,
        32,
        &ResnetBlockConfig { norm: Norm::Group { groups: 4 }, ..bad }
    )
    .is_err());
}

#[test]
fn folded_3d_convolutions_equal_libtorch_conv3d() {
    use unet_core::layers::{ConvGeometry, ConvNd};
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let geo = |k: [i64; 3], st: [i64; 3], p: [i64; 3], d: [i64; 3], groups: i64| ConvGeometry {
        kernel: k.to_vec(),
        stride: st.to_vec(),
        padding: p.to_vec(),
        dilation: d.to_vec(),
        groups,
        bias: true,
        transposed: false,
    };
    let cases = [
        geo([1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1], 1), // per-frame
        geo([1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1], 2), // per-frame, strided, grouped
        geo([1, 3, 3], [1, 1, 1], [0, 2, 2], [1, 2, 2], 1), // per-frame, dilated
        geo([3, 1, 1], [1, 1, 1], [1, 0, 0], [1, 1, 1], 1), // temporal
        geo([3, 1, 1], [2, 1, 1], [1, 0, 0], [2, 1, 1], 2), // temporal, strided, dilated
    ];
    // Contiguous and permuted (non-contiguous) inputs, as a (2+1)D block feeds them.
    let x = randn(&[2, 4, 6, 7, 9]);
    let xp = randn(&[2, 6, 4, 7, 9]).permute([0, 2, 1, 3, 4]);
    for (k, (i, g)) in cases.into_iter().enumerate().flat_map(|c| [c.clone(), c]).enumerate() {
        let x = if k % 2 == 0 { &x } else { &xp };
        let conv = ConvNd::with_geometry(vs.root() / k, 3, 4, 6, g.clone()).unwrap();
        let fast = conv.forward(x).unwrap();
        let reference = x
            .f_convolution(
                &conv.weight,
                conv.bias.as_ref(),
                g.stride.as_slice(),
                g.padding.as_slice(),
                g.dilation.as_slice(),
                false,
                [0i64, 0, 0].as_slice(),
                g.groups,
            )
            .unwrap();
        assert_eq!(fast.size(), reference.size(), "case {i}");
        assert!(max_abs(&(fast - reference)) < 1e-5, "case {i}");
    }
}

#[test]
fn temporal_identity_init_leaves_the_spatial_conv() {
    tch::manual_seed(4);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut conv = SpatialConv::new(vs.root(), 3, 3, 5, 3, ConvKind::Factorised, true).unwrap();
    let x = randn(&[2, 3, 6, 7, 7]);
    let before = conv.forward(&x).unwrap();
    conv.init_temporal_identity();
    let after = conv.forward(&x).unwrap();
    let SpatialConv::Factorised { spatial, .. } = &conv else { panic!("factorised") };
    assert!(max_abs(&(&after - spatial.forward(&x).unwrap())) < 1e-6);
    assert!(max_abs(&(after - before)) > 1e-3, "the random temporal conv was replaced");
}
