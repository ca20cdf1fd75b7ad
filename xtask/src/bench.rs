//! `cargo xtask bench`: criterion benches with the libtorch environment.

use anyhow::Result;

use crate::util::{cargo, run_cmd, step};

/// Runs `cargo bench -p unet-benches` with `args`.
pub fn run(args: &[String]) -> Result<()> {
    let env = crate::setup::run()?;
    step("cargo bench -p unet-benches");
    run_cmd(
        cargo(&env).args(["bench", "-p", "unet-benches", "--bench", "bench_main", "--"]).args(args),
    )
}
