//! The HourGlass/U-Net hybrid of Bulat et al. 2020 at ranks 1, 2 and 3: heatmap shapes,
//! intermediate supervision, the soft gates, and typed errors.

use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{GatedBlock, HourglassConfig, HourglassUNet};
use unet_core::parameter_count;

fn small(dims: usize) -> HourglassConfig {
    HourglassConfig {
        dims,
        channels: 16,
        stacks: 2,
        depth: 2,
        joints: 5,
        ..HourglassConfig::bulat2020()
    }
}

#[test]
fn heatmaps_at_a_quarter_resolution_for_every_stack_and_rank() {
    for (dims, side) in [(1usize, 32i64), (2, 32), (3, 16)] {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = small(dims);
        let net = HourglassUNet::new(&vs.root(), &cfg).unwrap();
        let mut shape = vec![2, 3];
        shape.extend(std::iter::repeat_n(side, dims));
        let outs = net
            .forward_t(&Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)), true)
            .unwrap();
        assert_eq!(outs.len(), 2);
        let mut want = vec![2, 5];
        want.extend(std::iter::repeat_n(side / 4, dims));
        for o in outs {
            assert_eq!(o.size(), want, "rank {dims}");
        }
    }
}

#[test]
fn gates_and_hybrid_skips_change_the_network() {
    let count = |cfg: &HourglassConfig| {
        let vs = nn::VarStore::new(Device::Cpu);
        HourglassUNet::new(&vs.root(), cfg).unwrap();
        (parameter_count(&vs), vs.variables().keys().filter(|k| k.ends_with("alpha")).count())
    };
    let cfg = small(2);
    let (gated, alphas) = count(&cfg);
    let (plain, none) = count(&HourglassConfig { gated: false, hybrid: false, ..cfg.clone() });
    assert!(alphas > 0 && none == 0);
    assert!(gated > plain, "concatenating skips fuse 2C channels: {gated} vs {plain}");
    // The full-size preset (our reading of the paper: 4 stacks, width 128, depth 4).
    let (full, _) = count(&HourglassConfig::bulat2020());
    assert_eq!(full, 7_735_616);
}

#[test]
fn a_gate_of_zero_removes_the_identity_path() {
    let vs = nn::VarStore::new(Device::Cpu);
    let block = GatedBlock::new(&(vs.root() / "b"), 2, 8, 8, true).unwrap();
    let x = Tensor::randn([1, 8, 6, 6], (Kind::Float, Device::Cpu));
    let with = block.forward_t(&x, false).unwrap();
    tch::no_grad(|| {
        for (k, mut v) in vs.variables() {
            if k.ends_with("alpha") {
                let _ = v.fill_(0.0);
            }
        }
    });
    let without = block.forward_t(&x, false).unwrap();
    let diff = (with - without - &x).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "α = 0 subtracts exactly the identity: {diff}");
}

#[test]
fn bad_configs_and_inputs_are_typed_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(HourglassUNet::new(&vs.root(), &HourglassConfig { channels: 10, ..small(2) }).is_err());
    assert!(HourglassUNet::new(&vs.root(), &HourglassConfig { stacks: 0, ..small(2) }).is_err());
    let net = HourglassUNet::new(&(vs.root() / "ok"), &small(2)).unwrap();
    let e = net
        .forward_t(&Tensor::zeros([1, 3, 30, 32], (Kind::Float, Device::Cpu)), false)
        .unwrap_err();
    assert!(e.to_string().contains("multiple of 16"), "{e}");
    assert!(net
        .forward_t(&Tensor::zeros([1, 1, 32, 32], (Kind::Float, Device::Cpu)), false)
        .is_err());
}
