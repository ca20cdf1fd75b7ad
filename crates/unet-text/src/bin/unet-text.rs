//! `unet-text`: the runner behind `cargo xtask params|reproduce|generate <text model>`.
//!
//! ```text
//! unet-text params uet
//! unet-text reproduce uet --out target/reproduce/uet [--steps N] [--device cuda]
//! unet-text generate uet --checkpoint target/reproduce/uet/uet.safetensors --prompt "And God said"
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tch::{nn, Device};
use unet_text::autoregressive::TokenSampling;
use unet_text::lm::{CausalLm, LmConfig};
use unet_text::models::{text_diffusion, uet};
use unet_text::{TextError, TextResult, TextTokenizer};

#[derive(Parser)]
#[command(name = "unet-text", about = "Text U-Net reproductions of unet-rs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print `<model> params <N>` for the full-size preset.
    Params { model: String },
    /// Train, evaluate and write the report of a model.
    Reproduce {
        model: String,
        /// Output folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Data cache with fetched data sets (`text/`; the embedded sample otherwise).
        #[arg(long)]
        data_cache: Option<PathBuf>,
        /// Optimiser steps of each model.
        #[arg(long)]
        steps: Option<usize>,
        /// Sequences per batch.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Hide the progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Peak memory of 5 training steps of a model config in this fresh process (used by
    /// `reproduce uet`); prints "<MB before> <peak MB>".
    #[command(hide = true)]
    MemProbe {
        /// `LmConfig` as JSON.
        #[arg(long)]
        config: String,
        /// Sequences per batch.
        #[arg(long)]
        batch: i64,
    },
    /// Continue a prompt with a trained checkpoint.
    Generate {
        model: String,
        /// Checkpoint written by the reproduction (`uet.safetensors`, `transformer.safetensors`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Text to continue.
        #[arg(long)]
        prompt: String,
        /// New tokens.
        #[arg(long, default_value_t = 100)]
        max_tokens: usize,
        /// Softmax temperature.
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        /// Keep the k most likely tokens (0: all).
        #[arg(long, default_value_t = 40)]
        top_k: i64,
        /// Nucleus mass (1: off).
        #[arg(long, default_value_t = 0.95)]
        top_p: f64,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// `cpu`, `cuda`, `cuda:N` or `auto`.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

const MODELS: [&str; 2] = ["uet", "text-diffusion"];

fn params(model: &str) -> Result<(), String> {
    let count = |cfg: &LmConfig| -> Result<i64, String> {
        let vs = nn::VarStore::new(Device::Cpu);
        CausalLm::new(&vs.root(), cfg).map_err(|e| e.to_string())?;
        Ok(unet_text::parameter_count(&vs))
    };
    match model {
        "uet" => {
            let u = count(&LmConfig::uet_gpt2_small())?;
            let g = count(&LmConfig::gpt2_small())?;
            println!(
                "uet params {u} (GPT-2 small geometry as a UET; the GPT-2 small baseline: {g})"
            );
            Ok(())
        }
        "text-diffusion" => {
            let vs = nn::VarStore::new(Device::Cpu);
            text_diffusion::TextDiffusion::new(
                &vs.root(),
                &text_diffusion::TextDiffusionConfig::base(),
            )
            .map_err(|e| e.to_string())?;
            println!("text-diffusion params {}", unet_text::parameter_count(&vs));
            Ok(())
        }
        m => Err(format!("unknown text model `{m}`; available: {}", MODELS.join(", "))),
    }
}

/// Loads a reproduction checkpoint (config and tokenizer from its metadata).
fn load(path: &Path, device: Device) -> TextResult<(nn::VarStore, CausalLm, TextTokenizer)> {
    let (vs, lm, meta) = CausalLm::load(path, device)?;
    let tok_json = meta.get("tokenizer").ok_or_else(|| TextError::InvalidModelConfig {
        path: path.into(),
        field: "metadata",
        value: "tokenizer".into(),
        reason: "missing (not written by `reproduce uet`?)".into(),
    })?;
    let tok = TextTokenizer::from_bytes(tok_json.as_bytes(), path)?;
    Ok((vs, lm, tok))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res: Result<(), String> = match cli.cmd {
        Cmd::Params { model } => params(&model),
        Cmd::Reproduce { model, out, data_cache, steps, batch_size, lr, device, seed, quiet } => {
            (|| {
                let device = unet_text::parse_device(&device).map_err(|e| e.to_string())?;
                let out = out.unwrap_or_else(|| PathBuf::from("target/reproduce").join(&model));
                let uet_opts = |out: PathBuf| {
                    let mut o = uet::RunOptions {
                        device,
                        progress: !quiet,
                        probe_exe: std::env::current_exe().ok(),
                        out,
                        ..Default::default()
                    };
                    if let Some(d) = &data_cache {
                        o.data_dir = Some(d.join("text"));
                    }
                    o
                };
                match model.as_str() {
                    "uet" => {
                        let mut o = uet_opts(out);
                        o.steps = steps.unwrap_or(o.steps);
                        o.batch = batch_size.unwrap_or(o.batch);
                        o.lr = lr.unwrap_or(o.lr);
                        o.seed = seed.unwrap_or(o.seed);
                        uet::run(&o).map(|_| ()).map_err(|e| e.to_string())
                    }
                    "text-diffusion" => {
                        // Scored by the transformer of `reproduce uet`, with its tokenizer and
                        // split: run it first when its folder is missing.
                        let lm_dir = out.with_file_name("uet");
                        if !lm_dir.join("transformer.safetensors").exists() {
                            eprintln!(
                                "text-diffusion: no {}; running `reproduce uet` first",
                                lm_dir.display()
                            );
                            uet::run(&uet_opts(lm_dir.clone())).map_err(|e| e.to_string())?;
                        }
                        let mut o = text_diffusion::RunOptions {
                            out,
                            lm_dir,
                            device,
                            progress: !quiet,
                            ..Default::default()
                        };
                        o.steps = steps.unwrap_or(o.steps);
                        o.batch = batch_size.unwrap_or(o.batch);
                        o.lr = lr.unwrap_or(o.lr);
                        o.seed = seed.unwrap_or(o.seed);
                        text_diffusion::run(&o).map(|_| ()).map_err(|e| e.to_string())
                    }
                    m => Err(format!("unknown text model `{m}`; available: {}", MODELS.join(", "))),
                }
            })()
        }
        Cmd::MemProbe { config, batch } => (|| {
            let cfg: LmConfig = serde_json::from_str(&config).map_err(|e| e.to_string())?;
            let (before, peak) =
                uet::memory_probe(&cfg, batch, 5, Device::Cpu).map_err(|e| e.to_string())?;
            println!("{before:.1} {peak:.1}");
            Ok(())
        })(),
        Cmd::Generate {
            model,
            checkpoint,
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            device,
        } => (|| {
            if model != "uet" {
                return Err(format!(
                    "unknown text model `{model}`; available: {}",
                    MODELS.join(", ")
                ));
            }
            let device = unet_text::parse_device(&device).map_err(|e| e.to_string())?;
            let (_vs, lm, tok) = load(&checkpoint, device).map_err(|e| e.to_string())?;
            let ids = tok.encode_ids(&prompt).map_err(|e| e.to_string())?;
            let sampling = TokenSampling {
                temperature,
                top_k: (top_k > 0).then_some(top_k),
                top_p: (top_p < 1.0).then_some(top_p),
            };
            let g = lm.generate(&ids, max_tokens, &sampling, seed).map_err(|e| e.to_string())?;
            println!("{}", tok.decode_ids(&g.tokens).map_err(|e| e.to_string())?);
            eprintln!("{max_tokens} tokens at {:.1} tokens/s", g.tokens_per_s);
            Ok(())
        })(),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
