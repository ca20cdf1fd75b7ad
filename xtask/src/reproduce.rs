//! `cargo xtask reproduce <model>`: provision libtorch, build, run the model's reproduction.

use anyhow::Result;

use crate::util::{cargo, run_cmd, step, workspace_root};

/// Runs `<crate> reproduce <model> --out target/reproduce/<model> [args]`.
pub fn run(model: &str, args: &[String]) -> Result<()> {
    let krate = crate::models::find(model)?;
    let env = crate::setup::run()?;
    let out = workspace_root().join("target").join("reproduce").join(model);
    let data = crate::util::cache_dir()?.join("datasets");
    step(&format!("building {krate} and running the `{model}` reproduction"));
    run_cmd(
        cargo(&env)
            .args(["run", "--quiet", "-p", krate, "--bin", krate, "--", "reproduce", model])
            .arg("--out")
            .arg(&out)
            .arg("--data-cache")
            .arg(&data)
            .args(args),
    )?;
    step(&format!("report: {}", out.join("report.md").display()));
    Ok(())
}
