//! `cargo xtask sample <model> --checkpoint … [--prompt …] [--input …] [--n N] [--out F]`:
//! provision libtorch, build the model's crate and write samples from a trained checkpoint.

use anyhow::Result;

use crate::util::{cargo, run_cmd, step};

/// Runs `<crate> sample <model> [args]`.
pub fn run(model: &str, args: &[String]) -> Result<()> {
    let krate = crate::models::find(model)?;
    let env = crate::setup::run()?;
    step(&format!("building {krate} and sampling `{model}`"));
    run_cmd(
        cargo(&env)
            .args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "sample", model])
            .args(args),
    )
}

/// `cargo xtask enhance <model> --checkpoint F in.wav out.wav [--chunk N] [--device D]`:
/// runs `unet-audio enhance` (streamed, bounded memory, any rate and channel count).
pub fn enhance(model: &str, args: &[String]) -> Result<()> {
    let krate = crate::models::find(model)?;
    if krate != "unet-audio" {
        anyhow::bail!("`{model}` is not an audio enhancement model (wave-unet, attn-wave-unet, deep-unet, unetgan)");
    }
    let env = crate::setup::run()?;
    step(&format!("building {krate} and enhancing with `{model}`"));
    run_cmd(
        cargo(&env)
            .args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "enhance"])
            .args(args),
    )
}

/// `cargo xtask generate <model> --checkpoint F --prompt P [--max-tokens N] [--temperature T]
/// [--top-k K] [--top-p P] [--seed S]`: runs `unet-text generate`.
pub fn generate(model: &str, args: &[String]) -> Result<()> {
    let krate = crate::models::find(model)?;
    if krate != "unet-text" && model != "motion-diffusion" {
        anyhow::bail!(
            "`{model}` does not generate (language models: uet; motions: motion-diffusion)"
        );
    }
    let env = crate::setup::run()?;
    step(&format!("building {krate} and generating with `{model}`"));
    run_cmd(
        cargo(&env)
            .args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "generate", model])
            .args(args),
    )
}
