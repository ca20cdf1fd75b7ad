//! Smoke run of `reproduce uet` on the embedded KJV sample: a few steps of both models, then
//! the whole measurement, report, plots, checkpoints; and generation from the checkpoint.

use unet_text::autoregressive::TokenSampling;
use unet_text::models::{text_diffusion, uet};

#[test]
fn uet_reproduction_smoke() {
    let dir = tempfile::tempdir().unwrap();
    let o = uet::RunOptions {
        out: dir.path().to_path_buf(),
        data_dir: Some(std::path::PathBuf::from("/nonexistent-text-cache")),
        vocab: 300,
        ctx: 32,
        d_model: 32,
        n_layer: 2,
        n_head: 2,
        uet_widths: vec![16, 8],
        uet_heads: 2,
        batch: 4,
        steps: 4,
        eval_every: 2,
        eval_windows: 4,
        gen_tokens: 8,
        progress: false,
        ..Default::default()
    };
    let r = uet::run(&o).unwrap();
    assert_eq!(r.full_params.0, 124_439_808);
    assert_eq!(r.runs.len(), 2);
    let (t, u) = (&r.runs[0], &r.runs[1]);
    assert!(u.params < t.params, "the UET runs its blocks at a quarter of the width");
    for x in &r.runs {
        assert!(x.val_ppl.is_finite() && x.val_ppl > 1.0 && x.val_ppl < 400.0, "{}", x.val_ppl);
        assert!(x.val_bpc > 0.0 && x.train_tokens_per_s > 0.0 && x.gen_tokens_per_s > 0.0);
        assert_eq!(x.curve.len(), 3, "probes at steps 0, 2 and the end");
        assert!(x.sample.starts_with("And God said unto Moses,"));
    }
    assert!(r.equal_time.1.is_finite() && r.equal_time.2.is_finite());
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("At equal wall time") && report.contains("124,439,808"));
    for f in ["loss.png", "loss_time.png", "metrics.json", "tokenizer.json", "uet.safetensors"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    // The checkpoint is self-contained: config and tokenizer in its metadata.
    let ck = unet_text::checkpoint::read(dir.path().join("uet.safetensors")).unwrap();
    let cfg: unet_text::lm::LmConfig = serde_json::from_str(&ck.metadata["config"]).unwrap();
    assert!(cfg.uet.is_some());
    let tok = unet_text::TextTokenizer::from_bytes(
        ck.metadata["tokenizer"].as_bytes(),
        &dir.path().join("uet.safetensors"),
    )
    .unwrap();
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let lm = unet_text::lm::CausalLm::new(&vs.root(), &cfg).unwrap();
    unet_text::checkpoint::assign_strict(&mut vs, &ck.tensors, std::path::Path::new("uet"), false)
        .unwrap();
    // The trained UET is still strictly causal on real tokens.
    let valid = unet_text::tokens::TokenFile::open(dir.path().join("valid.tokens")).unwrap();
    let a = valid.windows(&[0], 32).unwrap();
    let la = lm.forward(&a).unwrap();
    let b = a.copy();
    let _ = b.narrow(1, 20, 12).fill_(5);
    let lb = lm.forward(&b).unwrap();
    assert_eq!((la.narrow(1, 0, 20) - lb.narrow(1, 0, 20)).abs().max().double_value(&[]), 0.0);
    let s = TokenSampling { temperature: 0.8, top_k: Some(10), top_p: Some(0.9) };
    let g1 = lm.generate(&tok.encode_ids("In the").unwrap(), 40, &s, 3).unwrap();
    let g2 = lm.generate(&tok.encode_ids("In the").unwrap(), 40, &s, 3).unwrap();
    assert_eq!(g1.tokens, g2.tokens, "seeded generation repeats");
    assert_eq!(g1.tokens.len(), tok.encode_ids("In the").unwrap().len() + 40, "beyond ctx 32");
    assert!(lm.generate(&[], 3, &s, 0).is_err());

    // text-diffusion on the same split, tokenizer and scoring transformer.
    let td = dir.path().join("text-diffusion");
    let o = text_diffusion::RunOptions {
        out: td.clone(),
        lm_dir: dir.path().to_path_buf(),
        seq_len: 16,
        emb_dim: 8,
        unet_channels: vec![16, 32],
        cond_width: 16,
        cond_layers: 1,
        batch: 4,
        steps: 3,
        span: 4,
        eval_sequences: 6,
        sample_steps: 4,
        progress: false,
        ..Default::default()
    };
    let r = text_diffusion::run(&o).unwrap();
    let (a, ar, am) = r.infill_accuracy;
    assert!([a, ar, am].iter().all(|x| (0.0..=1.0).contains(x)));
    let (pr, ps, pu) = r.perplexity;
    assert!(pr.is_finite() && ps.is_finite() && pu.is_finite());
    assert_eq!(r.examples.len(), 6);
    assert!(r.full_params > 50_000_000, "{}", r.full_params);
    let report = std::fs::read_to_string(td.join("report.md")).unwrap();
    assert!(report.contains("infilling token accuracy") && report.contains("unigram"));
    assert!(td.join("loss.png").exists() && td.join("text-diffusion.safetensors").exists());
}
