//! `cargo xtask params <model>`: the full-size parameter count, printed as one line.

use anyhow::Result;

use crate::util::{cargo, run_cmd};

/// Runs the model's crate binary with `params <model>`; it prints `<model> params <N>`.
pub fn run(model: &str) -> Result<()> {
    let krate = crate::models::params_crate(model)?;
    let env = crate::setup::run()?;
    run_cmd(
        cargo(&env).args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "params", model]),
    )
}
