//! Causal LMs: full-size counts, strict causality of the UET, configuration errors.
//! Run: `cargo test -p unet-text --test lm`.

use tch::{nn, Device, Kind, Tensor};
use unet_text::lm::{CausalLm, LmConfig, UetConfig};
use unet_text::parameter_count;

fn count(cfg: &LmConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    CausalLm::new(&vs.root(), cfg).unwrap();
    parameter_count(&vs)
}

/// GPT-2 small as Hugging Face's `GPT2LMHeadModel` counts it (tied head): 124,439,808.
#[test]
fn gpt2_small_count() {
    assert_eq!(count(&LmConfig::gpt2_small()), 124_439_808);
}

#[test]
fn uet_gpt2_small_count() {
    let (v, ctx, d) = (50_257i64, 1024i64, 768i64);
    let conv = |i: i64, o: i64| i * o * 5 + o + 2 * o; // conv + LayerNorm(out)
    let block = |w: i64| {
        2 * w + (w * 3 * w + 3 * w) + (w * w + w) + 2 * w + (w * 4 * w + 4 * w) + (4 * w * w + w)
    };
    let expected = v * d + ctx * d + 2 * d // embeddings, ln_in
        + conv(768, 384) + conv(384, 192) // down
        + conv(384, 768) + conv(192, 384) // up
        + 12 * block(192)
        + 2 * d; // ln_f
    assert_eq!(count(&LmConfig::uet_gpt2_small()), expected);
    assert_eq!(expected, 48_416_832);
}

fn small(uet: bool) -> LmConfig {
    LmConfig {
        vocab: 50,
        ctx: 16,
        d_model: 32,
        n_layer: 2,
        n_head: 4,
        mlp_mult: 4,
        uet: uet.then(|| UetConfig { widths: vec![16, 8], kernel: 5, n_head: 2 }),
    }
}

/// Logits at position t do not change when any token after t changes.
#[test]
fn uet_and_transformer_are_strictly_causal() {
    for uet in [true, false] {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let lm = CausalLm::new(&vs.root(), &small(uet)).unwrap();
        let a = Tensor::randint(50, [2, 16], (Kind::Int64, Device::Cpu));
        let la = lm.forward(&a).unwrap();
        assert_eq!(la.size(), vec![2, 16, 50]);
        for t in 0..15 {
            let b = a.copy();
            let _ = b.narrow(1, t + 1, 15 - t).fill_(7);
            let _ = b.narrow(1, 15, 1).fill_(3);
            let lb = lm.forward(&b).unwrap();
            let diff =
                (la.narrow(1, 0, t + 1) - lb.narrow(1, 0, t + 1)).abs().max().double_value(&[]);
            assert!(
                diff == 0.0,
                "uet={uet}: position ≤ {t} changed by {diff} when later tokens changed"
            );
        }
        // And it is not trivially constant: the changed positions do change.
        let b = a.copy();
        let _ = b.narrow(1, 8, 8).fill_(7);
        let lb = lm.forward(&b).unwrap();
        assert!((la.narrow(1, 8, 8) - lb.narrow(1, 8, 8)).abs().max().double_value(&[]) > 0.0);
        let loss = lm.loss(&a).unwrap().double_value(&[]);
        assert!((loss - (50f64).ln()).abs() < 1.0, "initial loss {loss} ≈ ln 50");
    }
}

#[test]
fn impossible_configs_and_inputs_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut c = small(true);
    c.uet.as_mut().unwrap().widths = vec![16, 32];
    assert!(CausalLm::new(&vs.root(), &c).is_err(), "widths must shrink");
    let mut c = small(false);
    c.n_head = 5;
    assert!(CausalLm::new(&vs.root(), &c).is_err(), "heads must divide the width");
    let lm = CausalLm::new(&vs.root(), &small(false)).unwrap();
    assert!(lm.forward(&Tensor::zeros([1, 17], (Kind::Int64, Device::Cpu))).is_err(), "past ctx");
    let oov = Tensor::from_slice(&[1i64, 50]).unsqueeze(0);
    assert!(
        lm.forward(&oov).is_err(),
        "id 50 is outside a vocabulary of 50: an error, not an abort"
    );
}

#[test]
fn text_diffusion_keeps_known_tokens_and_counts() {
    use unet_text::models::text_diffusion::{TextDiffusion, TextDiffusionConfig};
    let vs = nn::VarStore::new(Device::Cpu);
    TextDiffusion::new(&vs.root(), &TextDiffusionConfig::base()).unwrap();
    let full = parameter_count(&vs);
    println!("text-diffusion base: {full} parameters");
    tch::manual_seed(0);
    let cfg = TextDiffusionConfig {
        vocab: 30,
        seq_len: 16,
        emb_dim: 8,
        unet_channels: vec![16, 32],
        unet_heads: 2,
        cond_width: 16,
        cond_layers: 1,
        cond_heads: 2,
        diffusion_steps: 100,
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TextDiffusion::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::randint(30, [3, 16], (Kind::Int64, Device::Cpu));
    let mask = Tensor::zeros([3, 16], (Kind::Bool, Device::Cpu));
    let _ = mask.narrow(1, 5, 4).fill_(1);
    let (mse, ce) = m.loss(&x, &mask).unwrap();
    assert!(mse.double_value(&[]).is_finite() && ce.double_value(&[]) > 0.0);
    let y = m.sample(&x, &mask, 5).unwrap();
    let keep = mask.logical_not();
    assert!(y.masked_select(&keep).equal(&x.masked_select(&keep)), "known tokens unchanged");
    assert!(y.max().int64_value(&[]) < 30);
}
