//! The `generate` step of a data-set recipe: data synthesised by Debian tools rather than
//! copied from a package (speech from espeak-ng/flite reading KJV verses).
//!
//! A recipe's `generate` object names the Debian packages and versions the output was recorded
//! with, a command printing one text line per item, and voices (command templates with `{text}`
//! and `{out}`); every line × voice becomes `synth/<prefix><line:02>-<voice>.wav`. The outputs
//! are deterministic for fixed package versions, so their SHA-256 sums sit in `files`.
//! A `capture` list stores the standard output of commands as files (the KJV text printed by
//! `bible`).
//! Run: `cargo xtask datasets fetch speech` / `cargo xtask datasets fetch text`.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util::{run_cmd, step};

fn installed_version(pkg: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Version}", pkg]).output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// Installs the packages that are missing; warns when a version differs from the recipe's.
fn ensure_packages(spec: &Value) -> Result<()> {
    let pkgs = spec["packages"].as_object().context("generate.packages must be an object")?;
    let missing: Vec<&str> =
        pkgs.keys().filter(|p| installed_version(p).is_none()).map(|s| s.as_str()).collect();
    if !missing.is_empty() {
        step(&format!("installing Debian packages {}", missing.join(" ")));
        crate::util::apt_install(&missing, "missing packages")?;
    }
    for (p, want) in pkgs {
        let want = want.as_str().unwrap_or_default();
        match installed_version(p) {
            Some(v) if v == want => {}
            Some(v) => eprintln!(
                "warning: {p} {v} is installed, the recipe was recorded with {want}; synthesised files may differ"
            ),
            None => bail!("{p} is still not installed"),
        }
    }
    Ok(())
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    v.as_array()
        .with_context(|| format!("generate: {what} must be an array of strings"))?
        .iter()
        .map(|s| s.as_str().map(String::from).with_context(|| format!("generate: {what}")))
        .collect()
}

/// Files a recipe's `capture` list writes (the standard output of a command each).
pub fn captured_files(spec: &Value) -> Vec<String> {
    spec["capture"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["file"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Runs each `capture` entry (`{"file": …, "command": [...]}`) and stores its standard output.
fn capture(spec: &Value, dst: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for c in spec["capture"].as_array().into_iter().flatten() {
        let file = c["file"].as_str().context("generate.capture[].file")?;
        let cmd = strings(&c["command"], "capture[].command")?;
        step(&format!("writing {file} from `{}`", cmd.join(" ")));
        let out = Command::new(&cmd[0])
            .args(&cmd[1..])
            .output()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let path = dst.join(file);
        std::fs::write(&path, &out.stdout)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(file.to_string());
    }
    Ok(written)
}

/// Runs the generator into `dst`; returns the relative paths it wrote.
pub fn run(spec: &Value, dst: &Path) -> Result<Vec<String>> {
    ensure_packages(spec)?;
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let mut written = capture(spec, dst)?;
    if spec.get("text").is_none() {
        return Ok(written);
    }
    let text_cmd = strings(&spec["text"]["command"], "text.command")?;
    let prefix = spec["text"]["prefix"].as_str().unwrap_or("item");
    let out = Command::new(&text_cmd[0])
        .args(&text_cmd[1..])
        .output()
        .with_context(|| format!("cannot run {text_cmd:?}"))?;
    if !out.status.success() {
        bail!("{text_cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let strip = spec["text"]["strip_reference"].as_bool().unwrap_or(false);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| if strip { l.split_once(' ').map_or(l, |x| x.1) } else { l }.trim().to_string())
        .collect();
    let voices = spec["voices"].as_array().context("generate.voices must be an array")?;
    std::fs::create_dir_all(dst.join("synth"))
        .with_context(|| format!("cannot create {}", dst.join("synth").display()))?;
    step(&format!("synthesising {} lines × {} voices", lines.len(), voices.len()));
    for v in voices {
        let name = v["name"].as_str().context("generate.voices[].name")?;
        let template = strings(&v["command"], "voices[].command")?;
        for (i, text) in lines.iter().enumerate() {
            let rel = format!("synth/{prefix}{:02}-{name}.wav", i + 1);
            let out = dst.join(&rel);
            let args: Vec<String> = template
                .iter()
                .map(|a| a.replace("{text}", text).replace("{out}", &out.to_string_lossy()))
                .collect();
            let mut cmd = Command::new(&args[0]);
            cmd.args(&args[1..]).stdout(Stdio::null());
            run_cmd(&mut cmd)?;
            written.push(rel);
        }
    }
    Ok(written)
}
