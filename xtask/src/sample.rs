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
