//! `text-diffusion`: survey Fig. 10, a 1-D U-Net that denoises token embeddings, conditioned
//! through cross-attention on a conditioning encoder, with rounding back to tokens (the
//! Diffusion-LM recipe of Li et al. 2022 with a U-Net denoiser).
//!
//! * Tokens → embeddings (learned, each row normalised to norm √e so they cannot collapse);
//!   Gaussian diffusion on the embedding sequence `[B, e, L]` (cosine schedule, 1000 steps).
//! * Denoiser: a diffusers-style `UNet2DConditionModel` at rank 1 (cross-attention blocks),
//!   predicting x₀ from `[x_t, known embeddings, keep mask]` (the inpainting U-Net input).
//!   Conditioning encoder: a bidirectional transformer over the sequence with the tokens to
//!   generate replaced by `[MASK]`; the U-Net attends to its states.
//! * Loss: ‖x̂₀ − x₀‖² plus the rounding cross-entropy of `x̂₀ · Eᵀ` against the tokens.
//! * Sampling: DDIM (η = 0) with Diffusion-LM's clamping (x̂₀ snapped to the nearest
//!   embedding) and the known tokens' embeddings written back at every step; tokens are the
//!   nearest embeddings at the end.
//!
//! Measured on held-out KJV: infilling token accuracy of a masked span against random tokens
//! from the training unigram distribution, and the perplexity of unconditional samples under
//! the transformer LM trained by `reproduce uet` (real validation text and unigram samples as
//! references).
//!
//! Run: `cargo xtask reproduce text-diffusion` (after, or it runs, `reproduce uet`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tch::{nn, nn::Module, Device, Kind, Tensor};
use unet_core::diffusers::{DiffusersConfig, DiffusersUNet};
use unet_core::diffusion::schedule::{BetaSchedule, NoiseSchedule};
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::rng::Rng;
use unet_core::trainer::{Trainer, TrainerConfig};
use unet_core::{checkpoint, parameter_count};

use crate::error::{TextError, TextResult};
use crate::lm::{layer_norm, Block, CausalLm, LmConfig};
use crate::tokenizer::TextTokenizer;
use crate::tokens::TokenFile;

/// Configuration of a [`TextDiffusion`] model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextDiffusionConfig {
    /// Vocabulary (the `[MASK]` id is `vocab`).
    pub vocab: i64,
    /// Sequence length.
    pub seq_len: i64,
    /// Embedding width `e` (the U-Net's channels in and out).
    pub emb_dim: i64,
    /// U-Net channels per level.
    pub unet_channels: Vec<i64>,
    /// Attention heads of the U-Net's transformers.
    pub unet_heads: i64,
    /// Conditioning encoder width.
    pub cond_width: i64,
    /// Conditioning encoder layers.
    pub cond_layers: usize,
    /// Conditioning encoder heads.
    pub cond_heads: i64,
    /// Diffusion steps.
    pub diffusion_steps: i64,
}

impl TextDiffusionConfig {
    /// The full-size preset (ours; no U-Net text-diffusion model of the survey publishes its
    /// configuration): GPT-2's vocabulary, 128-token sequences, 128-dimensional embeddings,
    /// a 3-level 1-D U-Net (256, 512, 512) with cross-attention, a 6-layer 512-wide encoder.
    pub fn base() -> Self {
        Self {
            vocab: 50_257,
            seq_len: 128,
            emb_dim: 128,
            unet_channels: vec![256, 512, 512],
            unet_heads: 8,
            cond_width: 512,
            cond_layers: 6,
            cond_heads: 8,
            diffusion_steps: 1000,
        }
    }

    /// The U-Net's diffusers configuration (rank 1). Its input is `[x_t, known, keep]`: the
    /// noisy embeddings, the known tokens' embeddings (zero where masked) and the keep mask,
    /// as inpainting U-Nets concatenate the masked image and the mask.
    pub fn unet(&self) -> TextResult<DiffusersConfig> {
        let n = self.unet_channels.len();
        Ok(DiffusersConfig::from_json(&json!({
            "_class_name": "UNet2DConditionModel",
            "unet_rs_dims": 1,
            "attention_head_dim": self.unet_heads,
            "block_out_channels": self.unet_channels,
            "cross_attention_dim": self.cond_width,
            "down_block_types": vec!["CrossAttnDownBlock2D"; n],
            "up_block_types": vec!["CrossAttnUpBlock2D"; n],
            "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0,
            "in_channels": 2 * self.emb_dim + 1, "out_channels": self.emb_dim,
            "layers_per_block": 1, "norm_eps": 1e-05, "norm_num_groups": 8,
            "sample_size": self.seq_len
        }))?)
    }
}

/// The model; see the module docs.
#[derive(Debug)]
pub struct TextDiffusion {
    cfg: TextDiffusionConfig,
    emb: nn::Embedding,
    cond_emb: nn::Embedding,
    cond_pos: nn::Embedding,
    cond_blocks: Vec<Block>,
    cond_ln: nn::LayerNorm,
    unet: DiffusersUNet,
    schedule: NoiseSchedule,
}

impl TextDiffusion {
    /// Builds the model under `p`.
    pub fn new(p: &nn::Path, cfg: &TextDiffusionConfig) -> TextResult<Self> {
        if cfg.vocab <= 1
            || cfg.seq_len <= 0
            || cfg.emb_dim <= 0
            || cfg.cond_width % cfg.cond_heads != 0
        {
            return Err(TextError::InvalidInput(format!(
                "TextDiffusionConfig: impossible values {cfg:?}"
            )));
        }
        let init = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 1.0 },
            ..Default::default()
        };
        let c = p / "cond";
        Ok(Self {
            emb: nn::embedding(p / "emb", cfg.vocab, cfg.emb_dim, init),
            cond_emb: nn::embedding(&c / "wte", cfg.vocab + 1, cfg.cond_width, Default::default()),
            cond_pos: nn::embedding(&c / "wpe", cfg.seq_len, cfg.cond_width, Default::default()),
            cond_blocks: (0..cfg.cond_layers)
                .map(|i| {
                    Block::with_causality(&c / "h" / i, cfg.cond_width, cfg.cond_heads, 4, false)
                })
                .collect(),
            cond_ln: layer_norm(&c / "ln_f", cfg.cond_width),
            unet: DiffusersUNet::new(&(p / "unet"), &cfg.unet()?)?,
            schedule: NoiseSchedule::new(BetaSchedule::cosine(), cfg.diffusion_steps)?,
            cfg: cfg.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TextDiffusionConfig {
        &self.cfg
    }

    /// Embedding table with rows of norm √e, `[vocab, e]`.
    fn table(&self) -> Tensor {
        let w = &self.emb.ws;
        w / w.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-6)
            * (self.cfg.emb_dim as f64).sqrt()
    }

    /// `[B, L]` tokens → `[B, e, L]`.
    fn embed(&self, table: &Tensor, tokens: &Tensor) -> Tensor {
        table
            .index_select(0, &tokens.flatten(0, -1))
            .view([tokens.size()[0], tokens.size()[1], -1])
            .transpose(1, 2)
    }

    /// Conditioning states `[B, L, w]` of `tokens` with positions where `mask` is true hidden.
    fn condition(&self, tokens: &Tensor, mask: &Tensor) -> TextResult<Tensor> {
        let masked = tokens.masked_fill(mask, self.cfg.vocab);
        let pos = Tensor::arange(tokens.size()[1], (Kind::Int64, tokens.device()));
        let mut h = self.cond_emb.forward(&masked) + self.cond_pos.forward(&pos);
        for b in &self.cond_blocks {
            h = b.forward(&h)?;
        }
        Ok(self.cond_ln.forward(&h))
    }

    /// Logits `[B, L, vocab]` of embeddings `[B, e, L]` (dot products with the table).
    fn round_logits(&self, table: &Tensor, x: &Tensor) -> Tensor {
        x.transpose(1, 2).matmul(&table.tr())
    }

    /// Training loss for `tokens` `[B, L]` where `mask` (bool) marks the tokens to generate:
    /// (x₀ MSE, rounding cross-entropy).
    pub fn loss(&self, tokens: &Tensor, mask: &Tensor) -> TextResult<(Tensor, Tensor)> {
        let table = self.table();
        let x0 = self.embed(&table, tokens);
        let b = tokens.size()[0];
        let t = self.schedule.sample_timesteps(b, tokens.device());
        let noise = x0.randn_like();
        let xt = self.schedule.q_sample(&x0, &t, &noise);
        let ctx = self.condition(tokens, mask)?;
        let keep = mask.logical_not().unsqueeze(1).to_kind(Kind::Float);
        let input = Tensor::f_cat(&[&xt, &(&x0 * &keep), &keep], 1)?;
        let x0_hat = self.unet.forward(&input, &t, Some(&ctx), None)?;
        let mse = (&x0_hat - &x0).square().mean(Kind::Float);
        let v = self.cfg.vocab;
        let ce = self
            .round_logits(&table, &x0_hat)
            .view([-1, v])
            .cross_entropy_for_logits(&tokens.flatten(0, -1));
        Ok((mse, ce))
    }

    /// Generates the masked tokens of `tokens` (`[B, L]`; `mask` true where to generate) with
    /// `steps` DDIM steps; returns `[B, L]` with the known tokens unchanged.
    pub fn sample(&self, tokens: &Tensor, mask: &Tensor, steps: i64) -> TextResult<Tensor> {
        let _guard = tch::no_grad_guard();
        let table = self.table();
        let known = self.embed(&table, tokens);
        let keep = mask.logical_not().unsqueeze(1).to_kind(Kind::Float); // [B, 1, L]
        let ctx = self.condition(tokens, mask)?;
        let total = self.cfg.diffusion_steps;
        let ts: Vec<i64> = unet_core::diffusion::sampler::timesteps(total, steps.clamp(1, total))?;
        let mut x = known.randn_like();
        let mut x0 = known.zeros_like();
        let n = tokens.size()[0];
        for (i, &t) in ts.iter().enumerate() {
            let tt = Tensor::full([n], t, (Kind::Int64, tokens.device()));
            let input = Tensor::f_cat(&[&x, &(&known * &keep), &keep], 1)?;
            let pred = self.unet.forward(&input, &tt, Some(&ctx), None)?;
            // Clamping: snap x̂₀ to the nearest embedding; keep the known tokens.
            let nearest = self.round_logits(&table, &pred).argmax(-1, false);
            x0 = &keep * &known + (1.0 - &keep) * self.embed(&table, &nearest);
            let ab = self.schedule.alpha_bar(t);
            let eps = (&x - &x0 * ab.sqrt()) / (1.0 - ab).sqrt().max(1e-8);
            let ab_next = ts.get(i + 1).map(|&s| self.schedule.alpha_bar(s)).unwrap_or(1.0);
            x = &x0 * ab_next.sqrt() + eps * (1.0 - ab_next).sqrt();
        }
        let out = self.round_logits(&table, &x0).argmax(-1, false);
        Ok(tokens.where_self(&mask.logical_not(), &out))
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// The `reproduce uet` folder (tokenizer, token files, the scoring transformer).
    pub lm_dir: PathBuf,
    /// Sequence length.
    pub seq_len: i64,
    /// Embedding width.
    pub emb_dim: i64,
    /// U-Net channels.
    pub unet_channels: Vec<i64>,
    /// Conditioning encoder width.
    pub cond_width: i64,
    /// Conditioning encoder layers.
    pub cond_layers: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Tokens masked for infilling (a contiguous span).
    pub span: i64,
    /// Held-out sequences for infilling and for the LM references.
    pub eval_sequences: usize,
    /// Sampler steps.
    pub sample_steps: i64,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bars.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/text-diffusion"),
            lm_dir: PathBuf::from("target/reproduce/uet"),
            seq_len: 32,
            emb_dim: 32,
            unet_channels: vec![64, 128],
            cond_width: 128,
            cond_layers: 2,
            batch: 32,
            steps: 4000,
            lr: 1e-3,
            span: 8,
            eval_sequences: 128,
            sample_steps: 50,
            device: Device::Cpu,
            seed: 2022,
            progress: true,
        }
    }
}

/// Measured results.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Full-size preset parameters.
    pub full_params: i64,
    /// Parameters of the trained model.
    pub params: i64,
    /// Infilling token accuracy: text-diffusion, random unigram tokens, most frequent token.
    pub infill_accuracy: (f64, f64, f64),
    /// LM perplexity of: real held-out sequences, text-diffusion samples, unigram samples.
    pub perplexity: (f64, f64, f64),
    /// Distinct tokens / total in the unconditional samples.
    pub sample_diversity: f64,
    /// Training seconds.
    pub train_seconds: f64,
    /// (step, loss).
    pub losses: Vec<(f64, f64)>,
    /// Example infillings: (context with `[…]`, generated span, true span).
    pub examples: Vec<(String, String, String)>,
    /// Example unconditional samples.
    pub samples: Vec<String>,
    /// Held-out windows evaluated.
    pub eval_sequences: usize,
}

/// Perplexity of `seqs` `[N, L]` under `lm` (next-token, positions 1..L).
fn lm_perplexity(lm: &CausalLm, seqs: &Tensor) -> TextResult<f64> {
    let _guard = tch::no_grad_guard();
    let mut total = 0.0;
    let n = seqs.size()[0];
    for start in (0..n).step_by(32) {
        let b = seqs.narrow(0, start, (n - start).min(32));
        total += lm.loss(&b)?.double_value(&[]) * b.size()[0] as f64;
    }
    Ok((total / n as f64).exp())
}

/// Trains the model and measures it against the baselines; writes the report.
pub fn run(opts: &RunOptions) -> TextResult<RunResult> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|source| TextError::Io { path: out.clone(), source })?;
    let lm_ck = opts.lm_dir.join("transformer.safetensors");
    let tok = TextTokenizer::from_file(opts.lm_dir.join("tokenizer.json"))?;
    let train = TokenFile::open(opts.lm_dir.join("train.tokens"))?;
    let valid = TokenFile::open(opts.lm_dir.join("valid.tokens"))?;
    let (_lm_vs, lm, _) = CausalLm::load(&lm_ck, opts.device)?;
    let lm_cfg = lm.config().clone();

    let l = opts.seq_len as usize;
    if opts.span <= 0 || opts.span > opts.seq_len || opts.steps == 0 || opts.batch < 2 {
        return Err(TextError::InvalidInput(format!(
            "text-diffusion: need 0 < span {} ≤ seq_len {}, steps {} > 0, batch {} ≥ 2",
            opts.span, opts.seq_len, opts.steps, opts.batch
        )));
    }
    if train.len() <= l || valid.len() < l {
        return Err(TextError::EmptyCorpus {
            path: opts.lm_dir.clone(),
            reason: format!("{} / {} tokens for sequences of {l}", train.len(), valid.len()),
        });
    }
    let vocab = train.vocab() as i64;
    let cfg = TextDiffusionConfig {
        vocab,
        seq_len: opts.seq_len,
        emb_dim: opts.emb_dim,
        unet_channels: opts.unet_channels.clone(),
        unet_heads: 4,
        cond_width: opts.cond_width,
        cond_layers: opts.cond_layers,
        cond_heads: 4,
        diffusion_steps: 1000,
    };
    let full_params = {
        let vs = nn::VarStore::new(Device::Cpu);
        TextDiffusion::new(&vs.root(), &TextDiffusionConfig::base())?;
        parameter_count(&vs)
    };
    tch::manual_seed(opts.seed as i64);
    let mut vs = nn::VarStore::new(opts.device);
    let model = TextDiffusion::new(&vs.root(), &cfg)?;
    let params = parameter_count(&vs);
    let device = opts.device;
    let tcfg = TrainerConfig {
        lr: opts.lr,
        warmup_steps: opts.steps / 20,
        total_steps: opts.steps,
        grad_clip: Some(1.0),
        checkpoint_every: 250,
        seed: opts.seed,
        out_dir: out.join("train"),
        progress: opts.progress,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(&vs, tcfg)?;
    trainer.resume(&mut vs)?;
    // Masks: a random span of `span` tokens (half the batch) or everything (the other half),
    // so one model infills and generates unconditionally.
    let make_mask = |r: &mut Rng, b: usize, span: i64, all_from: usize| -> Tensor {
        let mut m = vec![false; b * l];
        for i in 0..b {
            if i >= all_from {
                m[i * l..(i + 1) * l].iter_mut().for_each(|x| *x = true);
            } else {
                let s = r.below((l as i64 - span + 1) as u64) as usize;
                m[i * l + s..i * l + s + span as usize].iter_mut().for_each(|x| *x = true);
            }
        }
        Tensor::from_slice(&m).view([b as i64, l as i64])
    };
    let t0 = Instant::now();
    trainer.run(&mut vs, |step| {
        let body = || -> TextResult<Tensor> {
            let mut r = Rng::new(opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let starts: Vec<usize> =
                (0..opts.batch).map(|_| r.below((train.len() - l) as u64) as usize).collect();
            let x = train.windows(&starts, l)?.to_device(device);
            let mask = make_mask(&mut r, opts.batch, opts.span, opts.batch / 2).to_device(device);
            let (mse, ce) = model.loss(&x, &mask)?;
            Ok(mse + ce)
        };
        body().map_err(|e| unet_core::Error::config("training step", step, e.to_string()))
    })?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let meta = HashMap::from([
        ("model".to_string(), "text-diffusion".to_string()),
        ("config".to_string(), serde_json::to_string(&cfg).unwrap_or_default()),
    ]);
    checkpoint::save(&vs, out.join("text-diffusion.safetensors"), Some(meta))?;

    // Held-out sequences (non-overlapping windows of the validation split).
    let mut r = Rng::new(opts.seed + 1);
    let n = opts.eval_sequences.min(valid.len() / l).max(1);
    let starts: Vec<usize> = (0..n).map(|i| i * (valid.len() / n)).collect();
    let real = valid.windows(&starts, l)?;
    let span_mask = make_mask(&mut r, n, opts.span, n).to_device(device);
    let infilled = model
        .sample(&real.to_device(device), &span_mask, opts.sample_steps)?
        .to_device(Device::Cpu);
    // Unigram distribution of the training tokens.
    let mut counts = vec![0f64; vocab as usize];
    for i in 0..train.len() {
        counts[train.get(i) as usize] += 1.0;
    }
    let probs = Tensor::from_slice(&counts).to_kind(Kind::Float);
    let most = probs.argmax(0, false).int64_value(&[]);
    let span_cpu = span_mask.to_device(Device::Cpu);
    let unigram = |shape: [i64; 2]| probs.multinomial(shape[0] * shape[1], true).view(shape);
    let acc = |pred: &Tensor| -> f64 {
        let hit =
            pred.eq_tensor(&real).logical_and(&span_cpu).to_kind(Kind::Float).sum(Kind::Float);
        hit.double_value(&[]) / span_cpu.to_kind(Kind::Float).sum(Kind::Float).double_value(&[])
    };
    tch::manual_seed(opts.seed as i64 + 5);
    let rand_fill = real.where_self(&span_cpu.logical_not(), &unigram([n as i64, l as i64]));
    let most_fill = real.where_self(&span_cpu.logical_not(), &real.full_like(most));
    let infill_accuracy = (acc(&infilled), acc(&rand_fill), acc(&most_fill));

    // Unconditional samples scored by the LM.
    let all = Tensor::ones([n as i64, l as i64], (Kind::Bool, device));
    let samples = model
        .sample(&real.zeros_like().to_device(device), &all, opts.sample_steps)?
        .to_device(Device::Cpu);
    let uni = unigram([n as i64, l as i64]);
    let ppl = |s: &Tensor| lm_perplexity(&lm, &s.to_device(device));
    let perplexity = (ppl(&real)?, ppl(&samples)?, ppl(&uni)?);
    let flat = Vec::<i64>::try_from(samples.flatten(0, -1))?;
    let distinct: std::collections::HashSet<i64> = flat.iter().copied().collect();
    let sample_diversity = distinct.len() as f64 / flat.len().max(1) as f64;

    let text = |row: &Tensor| -> TextResult<String> {
        let ids: Vec<u32> = Vec::<i64>::try_from(row)?.into_iter().map(|t| t as u32).collect();
        tok.decode_ids(&ids)
    };
    let mut examples = Vec::new();
    for i in 0..6.min(n) {
        let m = Vec::<bool>::try_from(span_cpu.get(i as i64))?;
        let (s, e) =
            (m.iter().position(|&b| b).unwrap_or(0), m.iter().rposition(|&b| b).unwrap_or(0) + 1);
        let row = real.get(i as i64);
        let before = text(&row.narrow(0, 0, s as i64))?;
        let after = text(&row.narrow(0, e as i64, l as i64 - e as i64))?;
        examples.push((
            format!("{before} […] {after}"),
            text(&infilled.get(i as i64).narrow(0, s as i64, (e - s) as i64))?,
            text(&row.narrow(0, s as i64, (e - s) as i64))?,
        ));
    }
    let sample_texts =
        (0..4.min(n)).map(|i| text(&samples.get(i as i64))).collect::<TextResult<Vec<_>>>()?;
    let losses = trainer.losses().to_vec();
    plot_lines(
        &out.join("loss.png"),
        "text-diffusion: x₀ MSE + rounding cross-entropy",
        "step",
        "loss",
        &[
            Series::new("loss", losses.clone()).faint(),
            Series::new("EMA 0.05", smooth(&losses, 0.05)),
        ],
        true,
    )?;
    let result = RunResult {
        full_params,
        params,
        infill_accuracy,
        perplexity,
        sample_diversity,
        train_seconds,
        losses,
        examples,
        samples: sample_texts,
        eval_sequences: n,
    };
    write_report(opts, &cfg, &lm_cfg, &result)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    cfg: &TextDiffusionConfig,
    lm: &LmConfig,
    r: &RunResult,
) -> TextResult<()> {
    let (a, ar, am) = r.infill_accuracy;
    let (pr, ps, pu) = r.perplexity;
    let acc = markdown_table(
        &["method", "infilling token accuracy"],
        &[
            vec!["text-diffusion".into(), format!("{:.1} %", 100.0 * a)],
            vec![
                "random tokens from the training unigram distribution".into(),
                format!("{:.1} %", 100.0 * ar),
            ],
            vec!["the most frequent token everywhere".into(), format!("{:.1} %", 100.0 * am)],
        ],
    );
    let ppl = markdown_table(
        &["sequences", "perplexity under the trained transformer LM"],
        &[
            vec!["real held-out text (reference)".into(), format!("{pr:.1}")],
            vec!["text-diffusion samples (unconditional)".into(), format!("{ps:.1}")],
            vec!["random tokens from the unigram distribution".into(), format!("{pu:.1}")],
        ],
    );
    let ex = r
        .examples
        .iter()
        .map(|(c, g, t)| {
            format!(
                "| {} | {} | {} |",
                c.replace('|', "/").replace('\n', " "),
                g.replace('\n', " "),
                t.replace('\n', " ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let samples = r
        .samples
        .iter()
        .map(|s| format!("> {}", s.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join("\n>\n");
    let text = format!(
        r#"# text-diffusion

Survey Fig. 10: a 1-D U-Net denoises token embeddings, a conditioning encoder feeds it through
cross-attention, and the result is rounded to tokens (the Diffusion-LM recipe, Li et al. 2022,
with the U-Net as denoiser). Reproduced with `cargo xtask reproduce text-diffusion`.

## Architecture

| preset | parameters |
|---|---|
| `TextDiffusionConfig::base()` (full size, ours: GPT-2 vocabulary, 128 tokens, e = 128, U-Net 256/512/512 with cross-attention, 6-layer 512-wide encoder) | {fp} |
| trained here | {sp} |

No U-Net text-diffusion model cited by the survey publishes a configuration or count, so the
full preset is ours and its count is computed. Trained config: `{cj}`.

Embeddings are learned with rows kept at norm √e; the denoiser is the core's diffusers-style
`UNet2DConditionModel` at rank 1 predicting x₀ (cosine schedule, 1000 steps); the loss adds
the rounding cross-entropy; sampling is DDIM with {ss} steps, clamping x̂₀ to the nearest
embedding and writing back the known tokens at each step.

## Task

KJV token windows of {l} tokens from the `reproduce uet` split and tokenizer (byte-level BPE,
{v} entries). Half of each batch masks a random span of {span} tokens (infilling), half masks
everything (unconditional generation); {steps} steps, batch {batch}, AdamW lr {lr}
({secs:.0} s). Evaluation on {n} held-out validation windows.

## Results

Infilling a span of {span} tokens:

{acc}
Perplexity under the transformer LM trained by `reproduce uet` (`{lmj}`):

{ppl}
Distinct tokens in the unconditional samples: {div:.1} % of all sampled tokens.

![training loss](loss.png)

Infilling examples (context, generated, true):

| context | generated | true |
|---|---|---|
{ex}

Unconditional samples:

{samples}

## Not reproduced here

- Diffusion-LM's own data (E2E, ROCStories) and its controllable-generation classifiers.
"#,
        fp = thousands(r.full_params),
        sp = thousands(r.params),
        cj = serde_json::to_string(cfg).unwrap_or_default(),
        ss = opts.sample_steps,
        l = opts.seq_len,
        v = cfg.vocab,
        span = opts.span,
        steps = opts.steps,
        batch = opts.batch,
        lr = opts.lr,
        secs = r.train_seconds,
        n = r.eval_sequences,
        lmj = serde_json::to_string(lm).unwrap_or_default(),
        div = 100.0 * r.sample_diversity,
    );
    checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    checkpoint::write_atomic(
        &opts.out.join("metrics.json"),
        serde_json::to_string_pretty(r).unwrap_or_default().as_bytes(),
    )?;
    Ok(())
}
