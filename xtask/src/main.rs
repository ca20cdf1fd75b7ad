//! # xtask
//!
//! Project automation for unet-rs, reached through the `cargo xtask` alias
//! (`.cargo/config.toml`). It never links libtorch itself: it provisions the pinned libtorch
//! (`setup`), then starts cargo with the right environment for everything that does.
//!
//! ```text
//! cargo xtask setup                  # venv with torch==2.11.0 in the user cache (idempotent)
//! cargo xtask test                   # fmt check, clippy -D warnings, cargo test --workspace
//! cargo xtask params unet2015        # "unet2015 params 31030658"
//! cargo xtask reproduce unet2015     # train, measure, write target/reproduce/unet2015/
//! cargo xtask sample ddpm --checkpoint target/reproduce/ddpm/skips/checkpoint.safetensors
//! cargo xtask datasets fetch fashion-mnist
//! cargo xtask bench                  # criterion benches
//! cargo xtask bench-ddp --nproc 2    # training images/s, 1 process vs 2 data-parallel
//! cargo xtask bench-vs-pytorch       # unet-rs vs PyTorch eager, same weights, one table
//! cargo xtask export-diffusers sd-v1-5-unet out/sd --tiny
//! ```

mod bench;
mod bench_ddp;
mod bench_vs_pytorch;
mod datasets;
mod export;
mod generate;
mod models;
mod params;
mod reproduce;
mod sample;
mod setup;
mod test;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "unet-rs project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create (or check) the venv with the pinned libtorch (torch==2.11.0 from PyPI).
    Setup,
    /// The whole suite: `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Print `<model> params <N>` for the full-size preset of a model.
    Params {
        /// Model name, e.g. `unet2015`.
        model: String,
    },
    /// Build, train and measure a model; writes `target/reproduce/<model>/report.md`.
    Reproduce {
        /// Model name, e.g. `unet2015`.
        model: String,
        /// Extra arguments for the model's runner (`--steps N`, `--device cuda`, `--full-data`),
        /// and `--nproc N` to train data-parallel with N local worker processes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write samples from a trained checkpoint: `--checkpoint F [--n N] [--out F.png]
    /// [--prompt P] [--input in.png] [--steps S] [--seed S] [--device cuda]`.
    Sample {
        /// Model name, e.g. `ddpm`.
        model: String,
        /// Arguments for the model's sampler.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Enhance a WAV file with a trained audio checkpoint: `--checkpoint F in.wav out.wav
    /// [--chunk N] [--device cuda]` (any length, rate and channel count; bounded memory).
    Enhance {
        /// Model name, e.g. `wave-unet`.
        model: String,
        /// Arguments for `unet-audio enhance`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Continue a prompt with a trained language model: `--checkpoint F --prompt P
    /// [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]`; or generate
    /// motions: `motion-diffusion --checkpoint DIR --class C [--n N] --out PREFIX`.
    Generate {
        /// Model name, e.g. `uet`.
        model: String,
        /// Arguments for `unet-text generate` / `unet-pose generate`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Data-set recipes: `list`, `fetch <name>`, `verify <name>`.
    Datasets {
        #[command(subcommand)]
        cmd: datasets::DatasetCmd,
    },
    /// Run the criterion benches.
    Bench {
        /// Extra arguments passed to `cargo bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// unet-rs against PyTorch eager on the same weights, alternating in one launch: a table
    /// of times, ratios, GFLOP/s and peak RSS (`target/bench-vs-pytorch/<device>/`).
    BenchVsPytorch(bench_vs_pytorch::BenchVsPytorch),
    /// Write a diffusers model folder (config.json, diffusion_pytorch_model.safetensors,
    /// io.safetensors) for a preset: `ddpm-cifar10` or `sd-v1-5-unet`.
    ExportDiffusers {
        /// Preset name.
        preset: String,
        /// Output folder.
        dir: std::path::PathBuf,
        /// The small model of the same design instead of the full-size one.
        #[arg(long)]
        tiny: bool,
        /// Initialisation seed.
        #[arg(long, default_value_t = 0)]
        seed: i64,
    },
    /// Training throughput: 1 process against N data-parallel processes (c10d Gloo).
    BenchDdp(bench_ddp::Args),
    /// List the models and where they stand.
    Models,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Setup => setup::run().map(|_| ()),
        Cmd::Test { args } => test::run(&args),
        Cmd::Params { model } => params::run(&model),
        Cmd::Reproduce { model, args } => reproduce::run(&model, &args),
        Cmd::Sample { model, args } => sample::run(&model, &args),
        Cmd::Enhance { model, args } => sample::enhance(&model, &args),
        Cmd::Generate { model, args } => sample::generate(&model, &args),
        Cmd::Datasets { cmd } => datasets::run(cmd),
        Cmd::Bench { args } => bench::run(&args),
        Cmd::BenchDdp(a) => bench_ddp::run(&a),
        Cmd::BenchVsPytorch(a) => bench_vs_pytorch::run(&a),
        Cmd::ExportDiffusers { preset, dir, tiny, seed } => export::run(&preset, &dir, tiny, seed),
        Cmd::Models => {
            models::print_table();
            Ok(())
        }
    }
}
