//! The models of the side-by-side table: our network, its inputs, and the spec the PyTorch
//! worker builds the same architecture from.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tch::{nn, Device, Kind, Tensor};
use unet_core::arch::{UNet3d, UNet3dConfig, WaveUNet, WaveUNetConfig};
use unet_core::diffusers::{presets, DiffusersConfig, DiffusersUNet};
use unet_core::{UNet, UNetConfig};

/// Every model of the table, in table order.
pub const ALL: &[&str] = &["algorithm1", "wave-unet", "unet3d", "ddpm", "sd-cond"];

/// A small-but-real text-conditional latent U-Net (the Stable Diffusion v1.5 design at reduced
/// width): channels 64/128/256, two resnets per level, cross-attention at the two finer levels
/// and in the mid block, 8 heads, a 256-wide context.
pub fn sd_cond_json() -> Value {
    json!({
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [64, 128, 256],
        "cross_attention_dim": 256,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 2,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "sample_size": 32
    })
}

enum Net {
    Plain(UNet),
    Wave(WaveUNet),
    Volume(UNet3d),
    Diffusers(DiffusersUNet),
}

/// One model of the table, built on a device with its fixed batch.
pub struct Subject {
    /// What was built and at which size (for the table's notes).
    pub note: String,
    /// Our variables (written to safetensors for the PyTorch side).
    pub vs: nn::VarStore,
    /// What `benches/pytorch/worker.py` builds.
    pub spec: Value,
    /// `x`, `y` and, for diffusers models, `timestep` and `encoder_hidden_states`.
    pub inputs: BTreeMap<String, Tensor>,
    net: Net,
}

fn batch(shape: &[i64], device: Device) -> Tensor {
    Tensor::randn(shape, (Kind::Float, device))
}

fn shape_text(s: &[i64]) -> String {
    s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("×")
}

impl Subject {
    /// Builds `name`; `tiny` selects a minimal model of the same design (smoke tests);
    /// `side` overrides the spatial size (algorithm1, unet3d: for the scaling curves).
    pub fn new(name: &str, tiny: bool, side: Option<i64>, device: Device) -> Result<Self> {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut inputs = BTreeMap::new();
        let (net, spec, x_shape, y_shape, note) = match name {
            "algorithm1" => {
                let (base, depth, b, s) = if tiny { (8, 2, 1, 16) } else { (32, 4, 4, 128) };
                let s = side.unwrap_or(s);
                let cfg = UNetConfig::algorithm1(2, base, depth);
                let net = UNet::new(&root, &cfg)?;
                let spec = json!({"kind": "algorithm1", "in_channels": cfg.in_channels,
                    "out_channels": cfg.out_channels, "base": base, "depth": depth});
                let x = vec![b, cfg.in_channels, s, s];
                let note =
                    format!("UNetConfig::algorithm1(2, {base}, {depth}), x {}", shape_text(&x));
                let y = vec![b, cfg.out_channels, s, s];
                (Net::Plain(net), spec, x, y, note)
            }
            "wave-unet" => {
                let cfg = if tiny {
                    WaveUNetConfig {
                        levels: 3,
                        filters_per_level: 4,
                        ..WaveUNetConfig::stoller2018()
                    }
                } else {
                    WaveUNetConfig::stoller2018()
                };
                let (b, out_len) = if tiny { (1, 64) } else { (4, 16384) };
                let n = cfg.input_len_for(side.unwrap_or(out_len));
                let out = cfg.output_len(n).context("wave-unet geometry")?;
                let net = WaveUNet::new(&root, &cfg)?;
                let spec = json!({"kind": "wave_unet", "in_channels": cfg.in_channels,
                    "out_channels": cfg.out_channels, "levels": cfg.levels,
                    "filters_per_level": cfg.filters_per_level, "down_kernel": cfg.down_kernel,
                    "up_kernel": cfg.up_kernel, "slope": cfg.slope});
                let x = vec![b, cfg.in_channels, n];
                let note = format!(
                    "WaveUNetConfig {{ levels: {}, filters_per_level: {} }} (stoller2018 otherwise), x {} → {out}",
                    cfg.levels,
                    cfg.filters_per_level,
                    shape_text(&x)
                );
                (Net::Wave(net), spec, x, vec![b, cfg.out_channels, out], note)
            }
            "unet3d" => {
                let cfg = if tiny {
                    UNet3dConfig { base: 4, depth: 2, ..UNet3dConfig::cicek2016() }
                } else {
                    UNet3dConfig::cicek2016()
                };
                let s = side.unwrap_or(if tiny { 8 } else { 32 });
                let net = UNet3d::new(&root, &cfg)?;
                let spec = json!({"kind": "unet3d", "in_channels": cfg.in_channels,
                    "out_channels": cfg.out_channels, "base": cfg.base, "depth": cfg.depth});
                let x = vec![1, cfg.in_channels, s, s, s];
                let note = format!(
                    "UNet3dConfig {{ base: {}, depth: {} }} (cicek2016 otherwise), x {}",
                    cfg.base,
                    cfg.depth,
                    shape_text(&x)
                );
                (Net::Volume(net), spec, x, vec![1, cfg.out_channels, s, s, s], note)
            }
            "ddpm" | "sd-cond" => {
                let json = match (name, tiny) {
                    ("ddpm", false) => presets::ddpm_cifar10_json(),
                    ("ddpm", true) => presets::tiny_json("ddpm-cifar10").context("tiny preset")?,
                    (_, false) => sd_cond_json(),
                    (_, true) => presets::tiny_json("sd-v1-5-unet").context("tiny preset")?,
                };
                let cfg = DiffusersConfig::from_json(&json)?;
                let net = DiffusersUNet::new(&root, &cfg)?;
                let s = side.unwrap_or(if tiny { 8 } else { 32 });
                let b = if tiny {
                    1
                } else if name == "ddpm" {
                    4
                } else {
                    2
                };
                let x = vec![b, cfg.in_channels, s, s];
                let t: Vec<i64> = (0..b).map(|i| 10 + 490 * i).collect();
                inputs.insert("timestep".into(), Tensor::from_slice(&t).to_device(device));
                let mut note = format!(
                    "diffusers {} {}, x {}",
                    json["_class_name"].as_str().unwrap_or("?"),
                    json["block_out_channels"],
                    shape_text(&x)
                );
                if name == "sd-cond" {
                    let tokens = if tiny { 7 } else { 77 };
                    let ctx = vec![b, tokens, cfg.cross_attention_dim[0]];
                    note.push_str(&format!(", context {}", shape_text(&ctx)));
                    inputs.insert("encoder_hidden_states".into(), batch(&ctx, device));
                }
                let spec = json!({"kind": "diffusers", "config": json});
                let y = vec![b, cfg.out_channels, s, s];
                (Net::Diffusers(net), spec, x, y, note)
            }
            _ => bail!("unknown model `{name}` (known: {})", ALL.join(", ")),
        };
        inputs.insert("x".into(), batch(&x_shape, device));
        inputs.insert("y".into(), batch(&y_shape, device));
        Ok(Self { note, vs, spec, inputs, net })
    }

    /// The network on the fixed batch (`train` selects batch statistics for batch norm).
    pub fn run(&self, train: bool) -> Result<Tensor> {
        let x = &self.inputs["x"];
        Ok(match &self.net {
            Net::Plain(n) => n.forward_t(x, train)?,
            Net::Wave(n) => n.forward_t(x, train)?,
            Net::Volume(n) => n.forward_t(x, train)?,
            Net::Diffusers(n) => n.forward(
                x,
                &self.inputs["timestep"],
                self.inputs.get("encoder_hidden_states"),
                None,
            )?,
        })
    }

    /// Mean squared error of the network's output against `y`.
    pub fn loss(&self) -> Result<Tensor> {
        let out = self.run(true)?.to_kind(Kind::Float);
        Ok(out.mse_loss(&self.inputs["y"], tch::Reduction::Mean))
    }
}
