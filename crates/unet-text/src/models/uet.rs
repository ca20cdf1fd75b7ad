//! `uet`: the U-Net Encapsulated Transformer language model (Ignacio et al. 2025; survey
//! Section 4.2, Figs. 5 and 10) against a plain transformer LM of the same depth, trained the
//! same way on the King James Bible.
//!
//! Both models: a byte-level BPE trained on the training chapters, the same context, batch,
//! steps, optimiser and seed. Measured: validation perplexity (per token and per character)
//! after equal steps and at equal wall time, training and generation tokens/s, peak memory
//! (resident-set growth while training), parameters.
//!
//! Run: `cargo xtask reproduce uet`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use tch::{nn, Device, Tensor};
use unet_core::autoregressive::TokenSampling;
use unet_core::report::{markdown_table, plot_lines, smooth, thousands, Series};
use unet_core::rng::Rng;
use unet_core::trainer::{Trainer, TrainerConfig};
use unet_core::{checkpoint, parameter_count};

use crate::corpus::{Corpus, CorpusKind};
use crate::error::{TextError, TextResult};
use crate::lm::{CausalLm, LmConfig, UetConfig};
use crate::tokenizer::TextTokenizer;
use crate::tokens::{write_tokens, TokenFile};

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Folder with the fetched `text` set (the embedded sample otherwise).
    pub data_dir: Option<PathBuf>,
    /// BPE vocabulary.
    pub vocab: usize,
    /// Context (tokens).
    pub ctx: i64,
    /// Embedding width of both models.
    pub d_model: i64,
    /// Transformer blocks of both models.
    pub n_layer: usize,
    /// Heads of the full-width blocks.
    pub n_head: i64,
    /// UET widths after each level.
    pub uet_widths: Vec<i64>,
    /// UET causal kernel.
    pub uet_kernel: i64,
    /// Heads of the UET's reduced-width blocks.
    pub uet_heads: i64,
    /// Sequences per batch.
    pub batch: usize,
    /// Optimiser steps of each model.
    pub steps: usize,
    /// Peak learning rate (AdamW, warm-up 5 %, cosine to 10 %).
    pub lr: f64,
    /// Validation every this many steps (for the equal-wall-time comparison).
    pub eval_every: usize,
    /// Validation windows used during training (the final number uses the whole split).
    pub eval_windows: usize,
    /// Tokens generated for the samples and the generation speed.
    pub gen_tokens: usize,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bars.
    pub progress: bool,
    /// A binary with a `mem-probe` subcommand (the `unet-text` runner): each model's peak
    /// memory is then measured in a fresh process; `None` measures in this process (the
    /// second model then reuses memory the first one freed).
    pub probe_exe: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/reproduce/uet"),
            data_dir: crate::corpus::default_cache_dir(),
            vocab: 2048,
            ctx: 128,
            d_model: 256,
            n_layer: 4,
            n_head: 4,
            uet_widths: vec![128, 64],
            uet_kernel: 5,
            uet_heads: 4,
            batch: 16,
            steps: 600,
            lr: 1e-3,
            eval_every: 50,
            eval_windows: 64,
            gen_tokens: 96,
            device: Device::Cpu,
            seed: 2025,
            progress: true,
            probe_exe: None,
        }
    }
}

impl RunOptions {
    /// The baseline and UET configurations.
    pub fn configs(&self, vocab: i64) -> (LmConfig, LmConfig) {
        let base = LmConfig {
            vocab,
            ctx: self.ctx,
            d_model: self.d_model,
            n_layer: self.n_layer,
            n_head: self.n_head,
            mlp_mult: 4,
            uet: None,
        };
        let uet = LmConfig {
            uet: Some(UetConfig {
                widths: self.uet_widths.clone(),
                kernel: self.uet_kernel,
                n_head: self.uet_heads,
            }),
            ..base.clone()
        };
        (base, uet)
    }
}

/// One model's measurements.
#[derive(Debug, Clone, Serialize)]
pub struct LmRun {
    /// `transformer` or `uet`.
    pub name: String,
    /// Trainable parameters.
    pub params: i64,
    /// Validation loss (nats/token) over the whole validation split after training.
    pub val_loss: f64,
    /// `exp(val_loss)`.
    pub val_ppl: f64,
    /// Bits per character of the validation text.
    pub val_bpc: f64,
    /// Character-normalised perplexity `exp(total NLL / characters)`.
    pub val_char_ppl: f64,
    /// Training seconds (validation passes excluded).
    pub train_seconds: f64,
    /// Training tokens per second.
    pub train_tokens_per_s: f64,
    /// Generation tokens per second (batch 1, full recompute).
    pub gen_tokens_per_s: f64,
    /// Peak resident-set growth while training (MB).
    pub peak_mem_mb: f64,
    /// (step, training seconds so far, validation loss on the probe windows).
    pub curve: Vec<(usize, f64, f64)>,
    /// (step, training loss).
    pub losses: Vec<(f64, f64)>,
    /// A sample continuation.
    pub sample: String,
}

/// Measured results.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Full-size counts: GPT-2 small, GPT-2 small as a UET.
    pub full_params: (i64, i64),
    /// Tokens in train / validation; characters in validation.
    pub sizes: (usize, usize, usize),
    /// Baseline, then UET.
    pub runs: Vec<LmRun>,
    /// Validation loss of each model at the shorter of the two training times.
    pub equal_time: (f64, f64, f64),
}

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Peak memory of training `cfg` in this process: runs `steps` AdamW steps on random tokens
/// (batch × (ctx + 1)) and returns (resident set before, peak resident set) in MB. Meant for a
/// fresh process (`unet-text mem-probe`), so that one model's freed memory does not hide the
/// next one's.
pub fn memory_probe(
    cfg: &LmConfig,
    batch: i64,
    steps: usize,
    device: Device,
) -> TextResult<(f64, f64)> {
    let before = status_kb("VmRSS:").unwrap_or(0) as f64 / 1024.0;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let lm = CausalLm::new(&vs.root(), cfg)?;
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::AdamW::default(), &vs, 1e-4)?;
    for _ in 0..steps {
        let x = Tensor::randint(cfg.vocab, [batch, cfg.ctx + 1], (tch::Kind::Int64, device));
        opt.backward_step(&lm.loss(&x)?);
    }
    Ok((before, status_kb("VmHWM:").unwrap_or(0) as f64 / 1024.0))
}

fn probe_in_child(exe: &std::path::Path, cfg: &LmConfig, batch: usize) -> TextResult<f64> {
    let out = std::process::Command::new(exe)
        .arg("mem-probe")
        .arg("--config")
        .arg(serde_json::to_string(cfg).unwrap_or_default())
        .arg("--batch")
        .arg(batch.to_string())
        .output()
        .map_err(|source| TextError::Io { path: exe.into(), source })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match (out.status.success(), nums.as_slice()) {
        (true, [before, peak]) => Ok(peak - before),
        _ => Err(TextError::InvalidInput(format!(
            "memory probe failed: {} {}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

/// Mean loss over windows of `ctx + 1` tokens starting at `starts`.
fn eval_loss(
    lm: &CausalLm,
    tf: &TokenFile,
    starts: &[usize],
    ctx: usize,
    device: Device,
) -> TextResult<f64> {
    let _guard = tch::no_grad_guard();
    let mut total = 0.0;
    for chunk in starts.chunks(16) {
        let x = tf.windows(chunk, ctx + 1)?.to_device(device);
        total += lm.loss(&x)?.double_value(&[]) * chunk.len() as f64;
    }
    Ok(total / starts.len().max(1) as f64)
}

/// Tokenises the documents joined by blank lines, with `<|endoftext|>` between documents.
fn tokenise(tok: &TextTokenizer, docs: &[crate::corpus::Document]) -> TextResult<Vec<u32>> {
    let eot = tok.token_id("<|endoftext|>").unwrap_or(0);
    let mut out = Vec::new();
    for d in docs {
        out.extend(tok.encode_ids(&d.text)?);
        out.push(eot);
    }
    Ok(out)
}

/// Trains both models, measures them and writes the report.
pub fn run(opts: &RunOptions) -> TextResult<RunResult> {
    if opts.eval_every == 0 || opts.steps == 0 || opts.batch == 0 || opts.ctx <= 0 {
        return Err(TextError::InvalidInput(format!(
            "uet: steps {}, batch {}, ctx {}, eval_every {} must all be positive",
            opts.steps, opts.batch, opts.ctx, opts.eval_every
        )));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|source| TextError::Io { path: out.clone(), source })?;
    let corpus = Corpus::load(opts.data_dir.as_deref(), CorpusKind::Kjv)?;
    let texts: Vec<&str> = corpus.train.iter().map(|d| d.text.as_str()).collect();
    let tok = TextTokenizer::train_byte_level_bpe(&texts, opts.vocab, &out.join("tokenizer.json"))?;
    let vocab = tok.vocab_size() as u32;
    let (train_ids, valid_ids) = (tokenise(&tok, &corpus.train)?, tokenise(&tok, &corpus.valid)?);
    let valid_chars: usize = corpus.valid.iter().map(|d| d.text.chars().count() + 1).sum();
    write_tokens(&out.join("train.tokens"), vocab, &train_ids)?;
    write_tokens(&out.join("valid.tokens"), vocab, &valid_ids)?;
    let train = TokenFile::open(out.join("train.tokens"))?;
    let valid = TokenFile::open(out.join("valid.tokens"))?;
    let ctx = opts.ctx as usize;
    if train.len() <= ctx + 1 || valid.len() <= ctx + 1 {
        return Err(TextError::EmptyCorpus {
            path: out.join("train.tokens"),
            reason: format!("{} / {} tokens for a context of {ctx}", train.len(), valid.len()),
        });
    }
    // Fixed probe windows for the curves; the whole split (stride ctx) for the final number.
    let mut rng = Rng::new(opts.seed);
    let probe: Vec<usize> = (0..opts.eval_windows)
        .map(|_| rng.below((valid.len() - ctx - 1) as u64) as usize)
        .collect();
    let all: Vec<usize> = (0..valid.len() - ctx - 1).step_by(ctx).collect();
    let (base_cfg, uet_cfg) = opts.configs(vocab as i64);
    let tokenizer_json = std::fs::read_to_string(out.join("tokenizer.json"))
        .map_err(|source| TextError::Io { path: out.join("tokenizer.json"), source })?;
    let full_params = {
        let count = |c: &LmConfig| -> TextResult<i64> {
            let vs = nn::VarStore::new(Device::Cpu);
            CausalLm::new(&vs.root(), c)?;
            Ok(parameter_count(&vs))
        };
        (count(&LmConfig::gpt2_small())?, count(&LmConfig::uet_gpt2_small())?)
    };
    let prompt_text = "And God said unto Moses,";
    let prompt = tok.encode_ids(prompt_text)?;
    let sampling = TokenSampling { temperature: 0.8, top_k: Some(40), top_p: Some(0.95) };

    let mut runs = Vec::new();
    for (name, cfg) in [("transformer", &base_cfg), ("uet", &uet_cfg)] {
        tch::manual_seed(opts.seed as i64);
        let mut vs = nn::VarStore::new(opts.device);
        let lm = CausalLm::new(&vs.root(), cfg)?;
        let params = parameter_count(&vs);
        let tcfg = TrainerConfig {
            lr: opts.lr,
            weight_decay: 0.1,
            warmup_steps: opts.steps / 20,
            total_steps: opts.steps,
            grad_clip: Some(1.0),
            checkpoint_every: 200,
            seed: opts.seed,
            out_dir: out.join(name),
            progress: opts.progress,
            ..TrainerConfig::default()
        };
        // A fresh run: the curve and timings describe this process.
        let _ = std::fs::remove_file(out.join(name).join(unet_core::trainer::CHECKPOINT));
        let mut trainer = Trainer::new(&vs, tcfg)?;
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss0 = status_kb("VmRSS:").unwrap_or(0);
        let mut curve = Vec::new();
        let mut eval_seconds = 0.0;
        let t0 = Instant::now();
        let device = opts.device;
        trainer.run(&mut vs, |step| {
            let mut body = || -> TextResult<Tensor> {
                if step % opts.eval_every == 0 {
                    let e0 = Instant::now();
                    let l = eval_loss(&lm, &valid, &probe, ctx, device)?;
                    eval_seconds += e0.elapsed().as_secs_f64();
                    curve.push((step, t0.elapsed().as_secs_f64() - eval_seconds, l));
                }
                let mut r = Rng::new(opts.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let starts: Vec<usize> = (0..opts.batch)
                    .map(|_| r.below((train.len() - ctx - 1) as u64) as usize)
                    .collect();
                lm.loss(&train.windows(&starts, ctx + 1)?.to_device(device))
            };
            body().map_err(|e| unet_core::Error::config("training step", step, e.to_string()))
        })?;
        let train_seconds = t0.elapsed().as_secs_f64() - eval_seconds;
        let peak_mem_mb = match &opts.probe_exe {
            Some(exe) => probe_in_child(exe, cfg, opts.batch)?,
            None => status_kb("VmHWM:").unwrap_or(0).saturating_sub(rss0) as f64 / 1024.0,
        };
        let final_loss = eval_loss(&lm, &valid, &probe, ctx, device)?;
        curve.push((opts.steps, train_seconds, final_loss));
        let val_loss = eval_loss(&lm, &valid, &all, ctx, device)?;
        let val_tokens = all.len() * ctx;
        // Characters covered by the evaluated tokens, pro rata of the split.
        let chars = valid_chars as f64 * val_tokens as f64 / valid.len() as f64;
        let total_nll = val_loss * val_tokens as f64;
        let gen = lm.generate(&prompt, opts.gen_tokens, &sampling, opts.seed as i64)?;
        let sample = tok.decode_ids(&gen.tokens)?;
        let meta = HashMap::from([
            ("model".to_string(), name.to_string()),
            ("config".to_string(), serde_json::to_string(cfg).unwrap_or_default()),
            ("tokenizer".to_string(), tokenizer_json.clone()),
        ]);
        checkpoint::save(&vs, out.join(format!("{name}.safetensors")), Some(meta))?;
        runs.push(LmRun {
            name: name.to_string(),
            params,
            val_loss,
            val_ppl: val_loss.exp(),
            val_bpc: total_nll / chars / std::f64::consts::LN_2,
            val_char_ppl: (total_nll / chars).exp(),
            train_seconds,
            train_tokens_per_s: (opts.steps * opts.batch * ctx) as f64 / train_seconds.max(1e-9),
            gen_tokens_per_s: gen.tokens_per_s,
            peak_mem_mb,
            curve,
            losses: trainer.losses().to_vec(),
            sample,
        });
    }
    // Equal wall time: each model's last probe at or before the shorter training time.
    let t = runs.iter().map(|r| r.train_seconds).fold(f64::INFINITY, f64::min);
    // Each curve linearly interpolated in time at `t` (the faster model ends exactly there).
    let at = |r: &LmRun| -> f64 {
        let c = &r.curve;
        match c.iter().position(|p| p.1 > t + 1e-9) {
            None => c.last().map(|p| p.2).unwrap_or(f64::NAN),
            Some(0) => c[0].2,
            Some(j) => {
                let (a, b) = (c[j - 1], c[j]);
                a.2 + (b.2 - a.2) * (t - a.1) / (b.1 - a.1).max(1e-9)
            }
        }
    };
    let equal_time = (t, at(&runs[0]), at(&runs[1]));
    let result =
        RunResult { full_params, sizes: (train.len(), valid.len(), valid_chars), runs, equal_time };
    let series: Vec<Series> = result
        .runs
        .iter()
        .map(|r| Series::new(format!("{} train (EMA 0.05)", r.name), smooth(&r.losses, 0.05)))
        .chain(result.runs.iter().map(|r| {
            Series::new(
                format!("{} validation", r.name),
                r.curve.iter().map(|c| (c.0.max(1) as f64, c.2)).collect(),
            )
        }))
        .collect();
    plot_lines(
        &out.join("loss.png"),
        "uet vs transformer: loss per step",
        "step",
        "nats / token",
        &series,
        false,
    )?;
    let series_t: Vec<Series> = result
        .runs
        .iter()
        .map(|r| {
            Series::new(r.name.clone(), r.curve.iter().map(|c| (c.1.max(1e-3), c.2)).collect())
        })
        .collect();
    plot_lines(
        &out.join("loss_time.png"),
        "validation loss against training time",
        "seconds",
        "nats / token",
        &series_t,
        false,
    )?;
    write_report(opts, &corpus, &base_cfg, &uet_cfg, &result, prompt_text)?;
    Ok(result)
}

fn write_report(
    opts: &RunOptions,
    corpus: &Corpus,
    base: &LmConfig,
    uet: &LmConfig,
    r: &RunResult,
    prompt: &str,
) -> TextResult<()> {
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|x| {
            vec![
                format!("`{}`", x.name),
                thousands(x.params),
                format!("{:.2}", x.val_ppl),
                format!("{:.3}", x.val_bpc),
                format!("{:.3}", x.val_char_ppl),
                format!("{:.0}", x.train_seconds),
                format!("{:.0}", x.train_tokens_per_s),
                format!("{:.1}", x.gen_tokens_per_s),
                format!("{:.0}", x.peak_mem_mb),
            ]
        })
        .collect();
    let table = markdown_table(
        &[
            "model",
            "parameters",
            "val. perplexity (token)",
            "bits/char",
            "char. perplexity",
            "training s",
            "train tokens/s",
            "generation tokens/s",
            "peak memory growth (MB)",
        ],
        &rows,
    );
    let (t, lb, lu) = r.equal_time;
    let samples = r
        .runs
        .iter()
        .map(|x| {
            format!(
                "**{}** (temperature 0.8, top-k 40, top-p 0.95):\n\n> {}\n",
                x.name,
                x.sample.replace('\n', "\n> ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        r#"# uet

U-Net Encapsulated Transformer language model (Ignacio et al. 2025; survey Section 4.2, Figs. 5
and 10) against a plain transformer LM of the same depth. Reproduced with
`cargo xtask reproduce uet`.

## Architecture

| preset | parameters | source |
|---|---|---|
| `LmConfig::gpt2_small()` (the baseline design at full size) | {g} | GPT-2 small, 124,439,808 as Hugging Face `GPT2LMHeadModel` counts it |
| `LmConfig::uet_gpt2_small()` | {u} | GPT-2 small's 12 blocks run inside a UET at 192 = 768/4 (2 causal conv levels, kernel 5); computed — the authors name UET-75M and UET-125M but publish no configuration or code for them (their `uetlm` repository holds a README only) |

The UET block follows the authors' public UET code (`uet4rec`): convolutions along the sequence
shrink the embedding width level by level (conv → norm → LeakyReLU 0.1), the transformer runs
at the reduced width, convolutions restore the width with additive skips, and a residual wraps
the U. Their block pads convolutions on both sides and uses batch norm, so a position sees
later tokens; here convolutions are causal, the norm is LayerNorm over channels and attention
is causal: a test checks that logits at position t do not change when any later token does.

Trained here: baseline `{bj}`; UET `{uj}`.

## Task

Next-token prediction on the King James Bible ({src}): chapters split 80/10/10 (every tenth
chapter to validation); a byte-level BPE of {vocab} entries trained on the training chapters;
{tt} training and {vt} validation tokens ({vc} validation characters). Both models: context
{ctx}, batch {batch}, {steps} steps of AdamW (lr {lr}, weight decay 0.1, warm-up 5 %, cosine),
gradient clipping 1, the same seed and batches.

## Results

After equal steps, on the whole validation split:

{table}
At equal wall time ({t:.0} s of training, the shorter run; validation loss on {pw} fixed
windows, each curve interpolated linearly in time): transformer {lb:.3} nats/token (perplexity {pb:.2}), UET {lu:.3} (perplexity {pu:.2}).

Peak memory: {mem_how}. Generation recomputes the last {ctx} tokens per new token (no KV
cache; see `docs/models/uet.md`). Timings on {device:?}, {threads} threads; the two cores may
have been shared with other work.

![loss per step](loss.png)

![validation loss against time](loss_time.png)

## Samples

Prompt: "{prompt}"

{samples}
## Not reproduced here

- The authors' data (TinyShakespeare, WikiText, BookCorpus, SlimPajama) and model sizes; they
  publish no perplexities to compare with.
"#,
        g = thousands(r.full_params.0),
        u = thousands(r.full_params.1),
        bj = serde_json::to_string(base).unwrap_or_default(),
        uj = serde_json::to_string(uet).unwrap_or_default(),
        src = corpus.source,
        vocab = opts.vocab,
        tt = thousands(r.sizes.0 as i64),
        vt = thousands(r.sizes.1 as i64),
        vc = thousands(r.sizes.2 as i64),
        ctx = opts.ctx,
        batch = opts.batch,
        steps = opts.steps,
        lr = opts.lr,
        pw = opts.eval_windows,
        pb = lb.exp(),
        pu = lu.exp(),
        device = opts.device,
        threads = tch::get_num_threads(),
        mem_how = if opts.probe_exe.is_some() {
            "peak resident set (VmHWM) of a fresh process running 5 training steps of the model at the same batch and context, minus its size before building the model (`unet-text mem-probe`)"
        } else {
            "growth of this process's peak resident set (VmHWM) during each model's training; the second model reuses memory the first freed, so its figure is a lower bound"
        },
    );
    let out = &opts.out;
    checkpoint::write_atomic(&out.join("report.md"), text.as_bytes())?;
    checkpoint::write_atomic(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(r).unwrap_or_default().as_bytes(),
    )?;
    Ok(())
}
