//! Small helpers: the workspace root, the user cache, running commands with clear errors.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Per-user cache shared by all clones: `$UNET_RS_CACHE`, else `$XDG_CACHE_HOME/unet-rs`,
/// else `~/.cache/unet-rs`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("UNET_RS_CACHE") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("unet-rs"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("unet-rs"))
}

/// Prints a step header.
pub fn step(msg: &str) {
    eprintln!("\x1b[1;36m==>\x1b[0m {msg}");
}

/// Runs `cmd`, failing with its rendering when it cannot start or exits non-zero.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("command failed ({status}): {shown}");
    }
    Ok(())
}

/// Whether this process runs as root (so it may install Debian packages).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// `apt-get install`s `packages` (refreshing the package lists once when that fails). Without
/// root, an error starting with `missing` that gives the `sudo apt-get install` line.
pub fn apt_install(packages: &[&str], missing: &str) -> Result<()> {
    let list = packages.join(" ");
    if !is_root() {
        bail!("{missing}; install it with `sudo apt-get install {list}` and run again");
    }
    let mut install = Command::new("apt-get");
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages);
    if run_cmd(&mut install).is_err() {
        run_cmd(Command::new("apt-get").arg("update")).context("apt-get update failed")?;
        run_cmd(&mut install).with_context(|| format!("apt-get install {list} failed"))?;
    }
    Ok(())
}

/// A `cargo` command in the workspace root with the libtorch environment applied.
pub fn cargo(env: &crate::setup::TorchEnv) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(workspace_root());
    env.apply(&mut c);
    c
}
