//! ControlNet (Zhang et al. 2023) as diffusers' `ControlNetModel`: full-size parameter counts,
//! the zero-convolution property, `from_unet` copying, config round trip, and parity with
//! diffusers 0.42.1 on a tiny SD-style configuration (‖a−b‖/‖b‖ < 1e-4).
//!
//! Run: `cargo xtask test -p unet-core --test controlnet`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tch::{nn, Device, Kind, Tensor};
use unet_core::checkpoint::{self, named_variables};
use unet_core::diffusers::{
    controlnet, folder, presets, skip_count, ControlNet, ControlNetConfig, DiffusersConfig,
    DiffusersUNet,
};
use unet_core::parameter_count;

/// `lllyasviel/sd-controlnet-canny` `config.json` (diffusers ControlNetModel for SD v1.5).
fn sd_controlnet_canny_json() -> serde_json::Value {
    json!({
        "_class_name": "ControlNetModel",
        "_diffusers_version": "0.16.0.dev0",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "class_embed_type": null,
        "conditioning_embedding_out_channels": [16, 32, 96, 256],
        "controlnet_conditioning_channel_order": "rgb",
        "cross_attention_dim": 768,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_class_embeds": null,
        "only_cross_attention": false,
        "projection_class_embeddings_input_dim": null,
        "resnet_time_scale_shift": "default",
        "upcast_attention": false,
        "use_linear_projection": false
    })
}

fn count(cfg: &ControlNetConfig) -> (i64, i64, i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    ControlNet::new(&vs.root(), cfg).unwrap();
    let part = |p: &[&str]| -> i64 {
        named_variables(&vs)
            .iter()
            .filter(|(k, _)| p.iter().any(|q| k.starts_with(q)))
            .map(|(_, t)| t.numel() as i64)
            .sum()
    };
    (
        parameter_count(&vs),
        part(&["controlnet_down_blocks.", "controlnet_mid_block."]),
        part(&["controlnet_cond_embedding."]),
    )
}

#[test]
fn full_size_parameter_counts_match_diffusers() {
    tch::set_num_threads(1);
    // SD v1.5 ControlNet: the canny config equals from_unet(SD v1.5) …
    let canny = ControlNetConfig::from_json(&sd_controlnet_canny_json()).unwrap();
    let from_unet = ControlNetConfig::from_unet(&presets::sd_v1_5().unwrap());
    assert_eq!(canny.skip_channels(), from_unet.skip_channels());
    assert_eq!(canny.unet.cross_attention_dim, from_unet.unet.cross_attention_dim);
    assert_eq!(canny.skip_channels().len(), 12);
    // … and has diffusers' ControlNetModel(cross_attention_dim=768) count.
    assert_eq!(count(&canny), (361_279_120, 11_479_680, 1_086_480));
    // diffusers' defaults (cross_attention_dim 1280).
    let default = ControlNetConfig::from_json(&json!({"_class_name": "ControlNetModel"})).unwrap();
    assert_eq!(count(&default).0, 367_177_360);
}

fn tiny(name: &str) -> DiffusersConfig {
    DiffusersConfig::from_json(&presets::tiny_json(name).unwrap()).unwrap()
}

/// Untrained, a ControlNet copied from the U-Net leaves its output bit-for-bit unchanged; its
/// encoder equals the U-Net's; once the zero convs move, the output changes.
#[test]
fn zero_convs_leave_the_base_model_unchanged() {
    tch::set_num_threads(1);
    for (i, name) in ["ddpm-cifar10", "sd-v1-5-unet", "ddpm-scale-shift"].iter().enumerate() {
        let ucfg = tiny(name);
        tch::manual_seed(i as i64);
        let uvs = nn::VarStore::new(Device::Cpu);
        let unet = DiffusersUNet::new(&uvs.root(), &ucfg).unwrap();
        folder::perturb_vectors(&uvs, 0.1);
        let cfg = ControlNetConfig {
            conditioning_channels: 2,
            conditioning_embedding_out_channels: vec![8, 16],
            ..ControlNetConfig::from_unet(&ucfg)
        };
        let cvs = nn::VarStore::new(Device::Cpu);
        let cn = ControlNet::from_unet_with(&cvs.root(), &cfg, &uvs).unwrap();
        let (uvars, cvars) = (named_variables(&uvs), named_variables(&cvs));
        let mut copied = 0;
        for (k, t) in &cvars {
            if let Some(u) = uvars.get(k) {
                assert!(t.equal(u), "{name}: {k} not copied");
                copied += 1;
            } else {
                assert!(k.starts_with("controlnet_"), "{name}: unexpected {k}");
            }
        }
        let enc = uvars
            .keys()
            .filter(|k| {
                !k.starts_with("up_blocks.")
                    && !k.starts_with("conv_out")
                    && !k.starts_with("conv_norm_out")
            })
            .count();
        assert_eq!(copied, enc, "{name}: every encoder variable copied");

        let io = folder::parity_inputs(&ucfg, 8);
        let cond = Tensor::rand([2, 2, 16, 16], (Kind::Float, Device::Cpu));
        let run = |cn: &ControlNet| {
            tch::no_grad(|| {
                let r = cn
                    .forward(
                        &io["sample"],
                        &io["timestep"],
                        io.get("encoder_hidden_states"),
                        io.get("class_labels"),
                        &cond,
                        1.0,
                    )
                    .unwrap();
                assert_eq!(r.down.len(), skip_count(&ucfg));
                unet.forward_with_control(
                    &io["sample"],
                    &io["timestep"],
                    io.get("encoder_hidden_states"),
                    io.get("class_labels"),
                    Some(r.residuals()),
                )
                .unwrap()
            })
        };
        let plain = folder::run_on(&unet, &io).unwrap();
        assert!(run(&cn).equal(&plain), "{name}: zero convs must leave the output unchanged");
        tch::no_grad(|| {
            for (k, t) in &cvars {
                if k.starts_with("controlnet_down_blocks") || k.starts_with("controlnet_mid_block")
                {
                    let mut t = t.shallow_clone();
                    let _ = t.normal_(0.0, 0.05);
                }
            }
        });
        let moved = (run(&cn) - &plain).abs().max().double_value(&[]);
        assert!(moved > 1e-4, "{name}: output must depend on the control ({moved})");
    }
}

#[test]
fn config_round_trips_and_wrong_control_sizes_are_errors() {
    let cfg = ControlNetConfig {
        conditioning_channels: 1,
        conditioning_embedding_out_channels: vec![16],
        ..ControlNetConfig::from_unet(&tiny("ddpm-cifar10"))
    };
    let back = ControlNetConfig::from_json(&cfg.to_json()).unwrap();
    assert_eq!(back.unet.flavor, cfg.unet.flavor);
    assert_eq!(back.skip_channels(), cfg.skip_channels());
    assert_eq!(back.conditioning_embedding_out_channels, vec![16]);
    assert_eq!(back.conditioning_channels, 1);
    assert!(
        ControlNetConfig::from_json(&json!({"conditioning_embedding_out_channels": "x"})).is_err()
    );
    assert!(ControlNetConfig::from_json(&json!({"global_pool_conditions": true})).is_err());

    let vs = nn::VarStore::new(Device::Cpu);
    let cn = ControlNet::new(&vs.root(), &cfg).unwrap();
    let x = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
    let t = Tensor::from_slice(&[3i64]);
    let bad = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert!(cn.forward(&x, &t, None, None, &bad, 1.0).is_err());
    let bad_ch = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
    assert!(cn.forward(&x, &t, None, None, &bad_ch, 1.0).is_err());
    // A U-Net of another design cannot seed the copy.
    let other = nn::VarStore::new(Device::Cpu);
    DiffusersUNet::new(&other.root(), &tiny("ddpm-scale-shift")).unwrap();
    let vs2 = nn::VarStore::new(Device::Cpu);
    assert!(ControlNet::from_unet_with(&vs2.root(), &cfg, &other).is_err());
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNET_RS_PYTHON") {
        return PathBuf::from(p);
    }
    let lt = std::env::var_os("LIBTORCH").expect("run through `cargo xtask test` (LIBTORCH unset)");
    let venv = Path::new(&lt).ancestors().nth(4).expect("LIBTORCH inside a venv").to_path_buf();
    venv.join("bin").join("python")
}

#[test]
fn residuals_and_output_match_diffusers_controlnetmodel() {
    tch::set_num_threads(1);
    let py = python();
    let has = Command::new(&py).args(["-c", "import diffusers"]).status().map(|s| s.success());
    if !matches!(has, Ok(true)) {
        let st = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "diffusers==0.42.1"])
            .status()
            .expect("pip runs");
        assert!(st.success(), "pip install diffusers==0.42.1 failed");
    }
    let tmp = tempfile::tempdir().unwrap();
    for name in ["sd-v1-5-unet", "sd-v2-style"] {
        let cfg_path = tmp.path().join(format!("{name}.json"));
        std::fs::write(&cfg_path, presets::tiny_json(name).unwrap().to_string()).unwrap();
        let dir = tmp.path().join(name);
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/controlnet_parity.py");
        let st =
            Command::new(&py).arg(script).arg("make").arg(&cfg_path).arg(&dir).status().unwrap();
        assert!(st.success(), "diffusers could not build the {name} ControlNet");
        let (_uvs, unet) = folder::load(dir.join("unet"), Device::Cpu).unwrap();
        let (_cvs, cn) = controlnet::load(dir.join("controlnet"), Device::Cpu).unwrap();
        let io = checkpoint::read(dir.join("io.safetensors")).unwrap().tensors;
        let rel = |a: &Tensor, b: &Tensor| {
            (a - b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-30)
        };
        let (ctx, cond) = (&io["encoder_hidden_states"], &io["controlnet_cond"]);
        let (worst, out) = tch::no_grad(|| {
            let r = cn.forward(&io["sample"], &io["timestep"], Some(ctx), None, cond, 0.8).unwrap();
            let mut worst = rel(&r.mid, &io["mid"]);
            for (i, d) in r.down.iter().enumerate() {
                worst = worst.max(rel(d, &io[&format!("down.{i}")]));
            }
            let out = unet
                .forward_with_control(
                    &io["sample"],
                    &io["timestep"],
                    Some(ctx),
                    None,
                    Some(r.residuals()),
                )
                .unwrap();
            (worst, rel(&out, &io["output"]))
        });
        eprintln!("{name}: residuals rel {worst:.3e}, U-Net output rel {out:.3e}");
        assert!(worst < 1e-4 && out < 1e-4, "{name}: {worst} / {out}");
    }
}
