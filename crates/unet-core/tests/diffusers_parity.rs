//! Parity with diffusers on the same weights and inputs, both directions: folders exported by
//! unet-core load in diffusers and give the same output; folders saved by diffusers load in
//! unet-core and give the same output. Two unconditional (`UNet2DModel`) and two conditional
//! (`UNet2DConditionModel`) configurations; float32; ‖a−b‖/‖b‖ < 1e-4.
//!
//! Python comes from the venv `cargo xtask setup` makes (`UNET_RS_PYTHON`, or derived from
//! `LIBTORCH`); diffusers is installed into it when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{nn, Device};
use unet_core::checkpoint;
use unet_core::diffusers::{folder, presets, DiffusersConfig, DiffusersUNet};

const CONFIGS: [&str; 4] = ["ddpm-cifar10", "ddpm-scale-shift", "sd-v1-5-unet", "sd-v2-style"];

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNET_RS_PYTHON") {
        return PathBuf::from(p);
    }
    let lt = std::env::var_os("LIBTORCH").expect("run through `cargo xtask test` (LIBTORCH unset)");
    // <venv>/lib/python3.X/site-packages/torch -> <venv>/bin/python
    let venv = Path::new(&lt).ancestors().nth(4).expect("LIBTORCH inside a venv").to_path_buf();
    venv.join("bin").join("python")
}

fn ensure_diffusers(py: &Path) {
    let has = Command::new(py).args(["-c", "import diffusers"]).status().map(|s| s.success());
    if !matches!(has, Ok(true)) {
        let st = Command::new(py)
            .args(["-m", "pip", "install", "--quiet", "diffusers==0.42.1"])
            .status()
            .expect("pip runs");
        assert!(st.success(), "pip install diffusers==0.42.1 failed");
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diffusers_parity.py")
}

#[test]
fn outputs_match_diffusers_in_both_directions() {
    tch::set_num_threads(1);
    let py = python();
    ensure_diffusers(&py);
    let tmp = tempfile::tempdir().unwrap();

    // unet-core -> diffusers.
    let mut dirs = Vec::new();
    for (i, name) in CONFIGS.iter().enumerate() {
        let cfg = DiffusersConfig::from_json(&presets::tiny_json(name).unwrap()).unwrap();
        tch::manual_seed(i as i64);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = DiffusersUNet::new(&vs.root(), &cfg).unwrap();
        folder::perturb_vectors(&vs, 0.1);
        let dir = tmp.path().join(format!("rust-{name}"));
        let side = cfg.raw["sample_size"].as_i64().unwrap_or(8);
        folder::export_with_io(&vs, &model, &dir, side).unwrap();
        dirs.push(dir);
    }
    let out = Command::new(&py).arg(script()).arg("check").args(&dirs).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "diffusers disagrees with unet-core:\n{text}");
    assert_eq!(text.lines().count(), CONFIGS.len());

    // diffusers -> unet-core.
    for name in CONFIGS {
        let cfg_path = tmp.path().join(format!("{name}.json"));
        std::fs::write(&cfg_path, presets::tiny_json(name).unwrap().to_string()).unwrap();
        let dir = tmp.path().join(format!("py-{name}"));
        let st =
            Command::new(&py).arg(script()).arg("make").arg(&cfg_path).arg(&dir).status().unwrap();
        assert!(st.success(), "diffusers could not build {name}");
        let (_vs, model) = folder::load(&dir, Device::Cpu).unwrap();
        let io = checkpoint::read(dir.join("io.safetensors")).unwrap().tensors;
        let ours = folder::run_on(&model, &io).unwrap();
        let want = &io["output"];
        let rel = (&ours - want).norm().double_value(&[]) / want.norm().double_value(&[]);
        eprintln!("{name}: diffusers -> unet-core relative difference {rel:.3e}");
        assert!(rel < 1e-4, "{name}: relative difference {rel}");
    }
}
