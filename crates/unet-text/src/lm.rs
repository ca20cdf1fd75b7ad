//! Causal language models: a GPT-2-style transformer and the U-Net Encapsulated Transformer
//! (UET, Ignacio et al. 2025; survey Figs. 5 and 10) built from the same blocks.
//!
//! ```text
//! GPT:  tokens ─ wte + wpe ─ N × block(d) ─ ln_f ─ wteᵀ
//! UET:  tokens ─ wte + wpe ─┬───────────────────────────────────────────── + ─ ln_f ─ wteᵀ
//!                           └ ln ─ conv d→d/2 ─ conv d/2→d/4 ─ N × block(d/4)   │
//!                                    │ skip        │ skip              │        │
//!                                    + ← conv d/2→d + ← conv d/4→d/2 ←─┘ ───────┘
//! ```
//!
//! The UET shrinks the embedding width (not the sequence) with 1-D convolutions along the
//! sequence, runs the transformer blocks at the reduced width and restores the width with
//! convolutions and additive skips, as the authors' UET block (their `uet4rec` code: conv →
//! norm → LeakyReLU(0.1) per level, additive skips, residual around the whole U). Their block
//! pads convolutions on both sides and uses batch norm, which lets a position see later
//! tokens; here every convolution is causal (left padding `k − 1`), the norm is LayerNorm over
//! channels and attention is causal, so the model is strictly causal end to end (tested).
//!
//! State-dict names follow Hugging Face GPT-2 (`wte`, `wpe`, `h.{i}.ln_1`, `h.{i}.attn.c_attn`,
//! `h.{i}.attn.c_proj`, `h.{i}.ln_2`, `h.{i}.mlp.c_fc`, `h.{i}.mlp.c_proj`, `ln_f`); GPT-2's
//! `Conv1D` stores weights as `[in, out]`, so its checkpoints load after a transpose. UET
//! levels are `uet.down.{i}`, `uet.up.{i}` (conv `0`, norm `1`) and `uet.ln_in`.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::error::{TextError, TextResult};

/// The U-Net around the transformer blocks of a [`CausalLm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UetConfig {
    /// Widths after each encoder level (each smaller than the one before); the blocks run at
    /// the last. The authors' block: `[d/2, d/4, d/8]`.
    pub widths: Vec<i64>,
    /// Convolution kernel along the sequence (causal). The authors' default: 5.
    pub kernel: i64,
    /// Attention heads of the blocks at the reduced width.
    pub n_head: i64,
}

/// Configuration of a [`CausalLm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Vocabulary size.
    pub vocab: i64,
    /// Context length (learned positions).
    pub ctx: i64,
    /// Embedding width `d`.
    pub d_model: i64,
    /// Transformer blocks (the "depth" compared at equal value).
    pub n_layer: usize,
    /// Attention heads of full-width blocks.
    pub n_head: i64,
    /// MLP hidden width as a multiple of the block width.
    pub mlp_mult: i64,
    /// `Some`: a UET; `None`: a plain transformer.
    pub uet: Option<UetConfig>,
}

impl LmConfig {
    /// GPT-2 small (Radford et al. 2019): 124,439,808 parameters as Hugging Face counts them.
    pub fn gpt2_small() -> Self {
        Self {
            vocab: 50_257,
            ctx: 1024,
            d_model: 768,
            n_layer: 12,
            n_head: 12,
            mlp_mult: 4,
            uet: None,
        }
    }

    /// GPT-2 small wrapped as a UET: the 12 blocks run at 192 = 768/4 (2 levels, causal
    /// kernel 5, 12 heads of 16). The UET authors name UET-75M/125M without configurations,
    /// so this preset's count is computed, not published.
    pub fn uet_gpt2_small() -> Self {
        Self {
            uet: Some(UetConfig { widths: vec![384, 192], kernel: 5, n_head: 12 }),
            ..Self::gpt2_small()
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> TextResult<()> {
        let bad = |field: &str, v: String, why: &str| {
            Err(TextError::InvalidInput(format!("LmConfig: `{field}` = {v}: {why}")))
        };
        if self.vocab <= 0 || self.ctx <= 0 || self.d_model <= 0 || self.n_layer == 0 {
            return bad(
                "vocab/ctx/d_model/n_layer",
                format!("{}/{}/{}/{}", self.vocab, self.ctx, self.d_model, self.n_layer),
                "must be positive",
            );
        }
        let width = match &self.uet {
            None => (self.d_model, self.n_head),
            Some(u) => {
                let mut prev = self.d_model;
                for &w in &u.widths {
                    if w <= 0 || w >= prev {
                        return bad(
                            "uet.widths",
                            format!("{:?}", u.widths),
                            "must shrink and stay positive",
                        );
                    }
                    prev = w;
                }
                if u.widths.is_empty() || u.kernel <= 0 {
                    return bad(
                        "uet",
                        format!("{u:?}"),
                        "need at least one level and a positive kernel",
                    );
                }
                (prev, u.n_head)
            }
        };
        if width.1 <= 0 || width.0 % width.1 != 0 {
            return bad(
                "n_head",
                format!("{}", width.1),
                &format!("must divide the block width {}", width.0),
            );
        }
        Ok(())
    }
}

pub(crate) fn layer_norm(p: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![d], nn::LayerNormConfig { eps: 1e-5, ..Default::default() })
}

/// Pre-LN transformer block (GPT-2 names) with causal or bidirectional self-attention.
#[derive(Debug)]
pub(crate) struct Block {
    ln_1: nn::LayerNorm,
    c_attn: nn::Linear,
    c_proj: nn::Linear,
    ln_2: nn::LayerNorm,
    c_fc: nn::Linear,
    mlp_proj: nn::Linear,
    n_head: i64,
    causal: bool,
}

impl Block {
    pub(crate) fn new(p: nn::Path, d: i64, n_head: i64, mult: i64) -> Self {
        Self::with_causality(p, d, n_head, mult, true)
    }

    pub(crate) fn with_causality(
        p: nn::Path,
        d: i64,
        n_head: i64,
        mult: i64,
        causal: bool,
    ) -> Self {
        let attn = &p / "attn";
        let mlp = &p / "mlp";
        Self {
            ln_1: layer_norm(&p / "ln_1", d),
            c_attn: nn::linear(&attn / "c_attn", d, 3 * d, Default::default()),
            c_proj: nn::linear(&attn / "c_proj", d, d, Default::default()),
            ln_2: layer_norm(&p / "ln_2", d),
            c_fc: nn::linear(&mlp / "c_fc", d, mult * d, Default::default()),
            mlp_proj: nn::linear(&mlp / "c_proj", mult * d, d, Default::default()),
            n_head,
            causal,
        }
    }

    /// `[B, T, d]` → same.
    pub(crate) fn forward(&self, x: &Tensor) -> TextResult<Tensor> {
        let (b, t, d) = x.size3()?;
        let h = self.n_head;
        let qkv = self.c_attn.forward(&self.ln_1.forward(x)).split(d, -1);
        let heads = |z: &Tensor| z.view([b, t, h, d / h]).transpose(1, 2);
        let (q, k, v) = (heads(&qkv[0]), heads(&qkv[1]), heads(&qkv[2]));
        let a = Tensor::f_scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<&Tensor>,
            0.0,
            self.causal,
            None,
            false,
        )?;
        let x = x + self.c_proj.forward(&a.transpose(1, 2).contiguous().view([b, t, d]));
        let m = self.mlp_proj.forward(&self.c_fc.forward(&self.ln_2.forward(&x)).gelu("tanh"));
        Ok(x + m)
    }
}

/// Causal 1-D convolution along the sequence (left padding `k − 1`) + LayerNorm over
/// channels + LeakyReLU(0.1), on `[B, T, C]`.
#[derive(Debug)]
struct CausalConv {
    conv: nn::Conv1D,
    norm: nn::LayerNorm,
    kernel: i64,
}

impl CausalConv {
    fn new(p: nn::Path, cin: i64, cout: i64, kernel: i64) -> Self {
        Self {
            conv: nn::conv1d(&p / 0, cin, cout, kernel, Default::default()),
            norm: layer_norm(&p / 1, cout),
            kernel,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.transpose(1, 2).constant_pad_nd([self.kernel - 1, 0]);
        let y = self.norm.forward(&self.conv.forward(&y).transpose(1, 2));
        y.maximum(&(&y * 0.1))
    }
}

#[derive(Debug)]
struct Uet {
    ln_in: nn::LayerNorm,
    down: Vec<CausalConv>,
    up: Vec<CausalConv>,
}

/// A causal language model (plain transformer or UET); see the module docs.
#[derive(Debug)]
pub struct CausalLm {
    cfg: LmConfig,
    wte: nn::Embedding,
    wpe: nn::Embedding,
    blocks: Vec<Block>,
    uet: Option<Uet>,
    ln_f: nn::LayerNorm,
}

impl CausalLm {
    /// Builds the model under `p`.
    pub fn new(p: &nn::Path, cfg: &LmConfig) -> TextResult<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let emb = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 },
            ..Default::default()
        };
        let wte = nn::embedding(p / "wte", cfg.vocab, d, emb);
        let wpe = nn::embedding(p / "wpe", cfg.ctx, d, emb);
        let (width, heads, uet) = match &cfg.uet {
            None => (d, cfg.n_head, None),
            Some(u) => {
                let q = p / "uet";
                let mut dims = vec![d];
                dims.extend(&u.widths);
                let down = (0..u.widths.len())
                    .map(|i| CausalConv::new(&q / "down" / i, dims[i], dims[i + 1], u.kernel))
                    .collect();
                let up = (0..u.widths.len())
                    .map(|i| CausalConv::new(&q / "up" / i, dims[i + 1], dims[i], u.kernel))
                    .collect();
                let ln_in = layer_norm(&q / "ln_in", d);
                (*dims.last().unwrap_or(&d), u.n_head, Some(Uet { ln_in, down, up }))
            }
        };
        let blocks =
            (0..cfg.n_layer).map(|i| Block::new(p / "h" / i, width, heads, cfg.mlp_mult)).collect();
        Ok(Self { cfg: cfg.clone(), wte, wpe, blocks, uet, ln_f: layer_norm(p / "ln_f", d) })
    }

    /// The configuration.
    pub fn config(&self) -> &LmConfig {
        &self.cfg
    }

    /// A model written by `reproduce uet` (`config` JSON in the checkpoint metadata), loaded
    /// strictly on `device`; returns its variables, the model and the whole metadata (which
    /// also holds the `tokenizer`). Errors name the file.
    pub fn load(
        path: &std::path::Path,
        device: tch::Device,
    ) -> TextResult<(nn::VarStore, Self, std::collections::HashMap<String, String>)> {
        let ck = unet_core::checkpoint::read(path)?;
        let cfg_json = ck.metadata.get("config").ok_or_else(|| TextError::InvalidModelConfig {
            path: path.into(),
            field: "metadata",
            value: "config".into(),
            reason: "missing (not written by `reproduce uet`?)".into(),
        })?;
        let cfg: LmConfig =
            serde_json::from_str(cfg_json).map_err(|e| TextError::InvalidModelConfig {
                path: path.into(),
                field: "config",
                value: cfg_json.chars().take(80).collect(),
                reason: e.to_string(),
            })?;
        let mut vs = nn::VarStore::new(device);
        let lm = Self::new(&vs.root(), &cfg)?;
        unet_core::checkpoint::assign_strict(&mut vs, &ck.tensors, path, false)?;
        Ok((vs, lm, ck.metadata))
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]` (`T ≤ ctx`, ids in `0..vocab`).
    pub fn forward(&self, idx: &Tensor) -> TextResult<Tensor> {
        let (_, t) = idx.size2()?;
        if t == 0 || t > self.cfg.ctx {
            return Err(TextError::InvalidInput(format!(
                "sequence of {t} tokens for a context of {}",
                self.cfg.ctx
            )));
        }
        let (lo, hi) = (idx.f_min()?.int64_value(&[]), idx.f_max()?.int64_value(&[]));
        if lo < 0 || hi >= self.cfg.vocab {
            return Err(TextError::InvalidInput(format!(
                "token ids {lo}..={hi} outside the vocabulary of {}",
                self.cfg.vocab
            )));
        }
        let pos = Tensor::arange(t, (Kind::Int64, idx.device()));
        let mut h = self.wte.forward(idx) + self.wpe.forward(&pos);
        match &self.uet {
            None => {
                for b in &self.blocks {
                    h = b.forward(&h)?;
                }
            }
            Some(u) => {
                // The U: encoder levels shrink the width, blocks run at the bottom, decoder
                // levels restore it with additive skips; a residual around the whole U.
                let mut x = u.ln_in.forward(&h);
                let mut skips = Vec::with_capacity(u.down.len());
                for conv in &u.down {
                    skips.push(x.shallow_clone());
                    x = conv.forward(&x);
                }
                for b in &self.blocks {
                    x = b.forward(&x)?;
                }
                for (conv, skip) in u.up.iter().zip(skips.iter()).rev() {
                    x = conv.forward(&x) + skip;
                }
                h = h.f_add(&x)?; // out of place: `ln_in` saved `h` for backward
            }
        }
        Ok(self.ln_f.forward(&h).matmul(&self.wte.ws.tr()))
    }

    /// Mean next-token cross-entropy (nats) of `idx[:, :-1] → idx[:, 1:]`.
    pub fn loss(&self, idx: &Tensor) -> TextResult<Tensor> {
        let t = idx.size()[1];
        let logits = self.forward(&idx.narrow(1, 0, t - 1))?;
        let v = self.cfg.vocab;
        Ok(logits.view([-1, v]).cross_entropy_for_logits(&idx.narrow(1, 1, t - 1).reshape([-1])))
    }
}

/// What [`CausalLm::generate`] did.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Prompt and new tokens.
    pub tokens: Vec<u32>,
    /// New tokens per second (sampling included).
    pub tokens_per_s: f64,
}

impl CausalLm {
    /// Appends `max_new` sampled tokens to `prompt` (at least one token). Each step recomputes
    /// the last `ctx` tokens: no KV cache (see `docs/models/uet.md` for why the UET's causal
    /// convolutions would also need per-level state to cache). Deterministic for a `seed` on
    /// the CPU.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new: usize,
        sampling: &unet_core::autoregressive::TokenSampling,
        seed: i64,
    ) -> TextResult<Generation> {
        if prompt.is_empty() {
            return Err(TextError::InvalidInput(
                "generation needs a prompt of at least one token".into(),
            ));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| i64::from(t) >= self.cfg.vocab) {
            return Err(TextError::InvalidInput(format!(
                "prompt token {bad} is outside the vocabulary of {}",
                self.cfg.vocab
            )));
        }
        let _guard = tch::no_grad_guard();
        tch::manual_seed(seed);
        let device = self.wte.ws.device();
        let mut tokens = prompt.to_vec();
        let t0 = std::time::Instant::now();
        for _ in 0..max_new {
            let start = tokens.len().saturating_sub(self.cfg.ctx as usize);
            let window: Vec<i64> = tokens[start..].iter().map(|&t| i64::from(t)).collect();
            let idx = Tensor::from_slice(&window).unsqueeze(0).to_device(device);
            let logits = self.forward(&idx)?.select(1, -1);
            let next = sampling.sample(&logits)?.int64_value(&[0]);
            tokens.push(next as u32);
        }
        let tokens_per_s = max_new as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        Ok(Generation { tokens, tokens_per_s })
    }
}
