//! `cargo xtask test`: the whole suite, as CI runs it.

use anyhow::{Context, Result};

use crate::util::{cargo, run_cmd, step};

/// fmt check, clippy with `-D warnings`, then `cargo test --workspace` (plus `args`).
pub fn run(args: &[String]) -> Result<()> {
    let env = crate::setup::run()?;
    step("cargo fmt --all -- --check");
    run_cmd(cargo(&env).args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs; run `cargo fmt --all`")?;
    step("cargo clippy --workspace --all-targets -- -D warnings");
    run_cmd(cargo(&env).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    step("cargo test --workspace");
    run_cmd(cargo(&env).args(["test", "--workspace"]).args(args))?;
    step("all checks passed");
    Ok(())
}
