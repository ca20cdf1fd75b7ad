//! `cargo xtask export-diffusers <preset> <dir> [--tiny] [--seed N]`.

use std::path::Path;

use anyhow::Result;

use crate::util::{cargo, run_cmd};

/// Runs `unet-core export-diffusers` with the libtorch environment.
pub fn run(preset: &str, dir: &Path, tiny: bool, seed: i64) -> Result<()> {
    let env = crate::setup::run()?;
    let dir = std::path::absolute(dir)?;
    let mut c = cargo(&env);
    c.args([
        "run",
        "--quiet",
        "-p",
        "unet-core",
        "--bin",
        "unet-core",
        "--",
        "export-diffusers",
        preset,
    ])
    .arg(&dir)
    .args(["--seed", &seed.to_string()]);
    if tiny {
        c.arg("--tiny");
    }
    run_cmd(&mut c)
}
