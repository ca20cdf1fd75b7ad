//! ControlNet (Zhang, Rao & Agrawala 2023, "Adding Conditional Control to Text-to-Image
//! Diffusion Models", ICCV 2023): a trainable copy of a diffusers U-Net's encoder (`conv_in`,
//! time embedding, down blocks, mid block) that also sees a control image through a small
//! convolutional `controlnet_cond_embedding`, joined to the frozen U-Net by zero-initialised
//! 1×1 convolutions (`controlnet_down_blocks.{i}`, one per skip, and `controlnet_mid_block`).
//!
//! This is diffusers' `ControlNetModel` (`diffusers/models/controlnets/controlnet.py`) with its
//! state-dict names, so the `diffusion_pytorch_model.safetensors` of a ControlNet folder (e.g.
//! `lllyasviel/sd-controlnet-canny`) loads with [`load`]. Its residuals feed
//! [`DiffusersUNet::forward_with_control`]. Besides `UNet2DConditionModel` (the only base
//! diffusers supports), the same construction applies to a `UNet2DModel` base here.
//!
//! Full size: SD v1.5's ControlNet (`cross_attention_dim` 768) has 361,279,120 parameters.
//! Run: `cargo xtask params controlnet`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use tch::{nn, Device, Tensor};

use super::config::DiffusersConfig;
use super::model::{skip_count, ControlResiduals, DiffusersUNet};
use crate::checkpoint::{assign_strict, named_variables, read};
use crate::layers::{ConvNd, ConvOptions};
use crate::skip::ZeroInjection;
use crate::{Error, Result};

/// Keys of a `ControlNetModel` `config.json` that a `UNet2DConditionModel` config lacks.
const CONTROLNET_KEYS: [&str; 5] = [
    "conditioning_channels",
    "conditioning_embedding_out_channels",
    "controlnet_conditioning_channel_order",
    "global_pool_conditions",
    "addition_embed_type_num_heads",
];

/// Configuration of a [`ControlNet`].
#[derive(Debug, Clone)]
pub struct ControlNetConfig {
    /// The encoder's configuration: that of the U-Net it controls (its decoder fields unused).
    pub unet: DiffusersConfig,
    /// Channels of the control image (`conditioning_channels`, 3 in diffusers).
    pub conditioning_channels: i64,
    /// Channels of `controlnet_cond_embedding`'s stages (`conditioning_embedding_out_channels`,
    /// diffusers: `[16, 32, 96, 256]`); each stage after the first halves the resolution, so the
    /// control image is `2^(len−1)` times larger than the sample (8× for SD's latents).
    pub conditioning_embedding_out_channels: Vec<i64>,
}

impl ControlNetConfig {
    /// diffusers `ControlNetModel.from_unet` defaults: RGB control, `[16, 32, 96, 256]`.
    pub fn from_unet(unet: &DiffusersConfig) -> Self {
        Self {
            unet: unet.clone(),
            conditioning_channels: 3,
            conditioning_embedding_out_channels: vec![16, 32, 96, 256],
        }
    }

    /// Parses a diffusers `ControlNetModel` `config.json` value.
    pub fn from_json(v: &Value) -> Result<Self> {
        let mut u = v.clone();
        let obj = u
            .as_object_mut()
            .ok_or_else(|| Error::config("config", v.to_string(), "expected a JSON object"))?;
        match obj.get("global_pool_conditions") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(x) => return Err(Error::config("global_pool_conditions", x, "not supported")),
        }
        let cc = match obj.get("conditioning_channels") {
            None | Some(Value::Null) => 3,
            Some(x) => x
                .as_i64()
                .ok_or_else(|| Error::config("conditioning_channels", x, "expected an integer"))?,
        };
        let emb = match obj.get("conditioning_embedding_out_channels") {
            None | Some(Value::Null) => vec![16, 32, 96, 256],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_i64().ok_or_else(|| {
                        Error::config("conditioning_embedding_out_channels", x, "expected integers")
                    })
                })
                .collect::<Result<_>>()?,
            Some(x) => {
                return Err(Error::config(
                    "conditioning_embedding_out_channels",
                    x,
                    "expected a list",
                ))
            }
        };
        for k in CONTROLNET_KEYS {
            obj.remove(k);
        }
        // A ControlNetModel is the encoder of a UNet2DConditionModel, unless the config says
        // otherwise (unet-rs's UNet2DModel-based ControlNets carry `unet_rs_base_class`).
        let base = obj
            .remove("unet_rs_base_class")
            .and_then(|x| x.as_str().map(String::from))
            .unwrap_or_else(|| "UNet2DConditionModel".into());
        obj.insert("_class_name".into(), base.into());
        // The encoder needs no decoder; mirror the down blocks so that the U-Net config checks.
        if let Some(Value::Array(down)) = obj.get("down_block_types").cloned() {
            let up: Vec<Value> = down
                .iter()
                .rev()
                .map(|d| d.as_str().map(|s| s.replace("Down", "Up")).into())
                .collect();
            obj.insert("up_block_types".into(), Value::Array(up));
        }
        let cfg = Self {
            unet: DiffusersConfig::from_json(&u)?,
            conditioning_channels: cc,
            conditioning_embedding_out_channels: emb,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The `ControlNetModel` `config.json` of this configuration.
    pub fn to_json(&self) -> Value {
        let mut v = self.unet.raw.clone();
        if let Some(o) = v.as_object_mut() {
            let base = o.get("_class_name").cloned().unwrap_or(Value::Null);
            if base != json!("UNet2DConditionModel") {
                o.insert("unet_rs_base_class".into(), base);
            }
            o.insert("_class_name".into(), "ControlNetModel".into());
            for k in ["up_block_types", "out_channels", "sample_size"] {
                o.remove(k);
            }
            o.insert("conditioning_channels".into(), self.conditioning_channels.into());
            o.insert(
                "conditioning_embedding_out_channels".into(),
                json!(self.conditioning_embedding_out_channels),
            );
        }
        v
    }

    fn validate(&self) -> Result<()> {
        let e = &self.conditioning_embedding_out_channels;
        if self.conditioning_channels <= 0 || e.is_empty() || e.iter().any(|&c| c <= 0) {
            return Err(Error::config(
                "conditioning_embedding_out_channels",
                (self.conditioning_channels, e),
                "need positive conditioning channels and at least one positive stage",
            ));
        }
        Ok(())
    }

    /// Channels of every skip of the encoder, in push order (one zero conv each).
    pub fn skip_channels(&self) -> Vec<i64> {
        let c = &self.unet;
        let n = c.block_out_channels.len();
        let mut out = vec![c.block_out_channels[0]];
        for (i, &ch) in c.block_out_channels.iter().enumerate() {
            out.extend(std::iter::repeat_n(ch, c.layers_per_block[i] as usize));
            if i + 1 < n {
                out.push(ch);
            }
        }
        out
    }
}

/// diffusers `ControlNetConditioningEmbedding`: `conv_in`, then per stage a 3×3 conv and a
/// stride-2 3×3 conv (`blocks.{2i}`, `blocks.{2i+1}`), SiLU after each, and a zero-initialised
/// 3×3 `conv_out` to the U-Net's first width.
#[derive(Debug)]
pub struct ConditioningEmbedding {
    conv_in: ConvNd,
    blocks: Vec<ConvNd>,
    conv_out: ConvNd,
}

impl ConditioningEmbedding {
    /// Builds `conv_in`, `blocks.*`, `conv_out` under `path`.
    pub fn new(
        path: nn::Path,
        dims: usize,
        conditioning_channels: i64,
        channels: &[i64],
        out_channels: i64,
    ) -> Result<Self> {
        let same3 = ConvOptions::same(3);
        let down3 = ConvOptions { stride: 2, ..same3 };
        let conv_in =
            ConvNd::new(&path / "conv_in", dims, conditioning_channels, channels[0], same3)?;
        let mut blocks = Vec::new();
        for (i, w) in channels.windows(2).enumerate() {
            blocks.push(ConvNd::new(&path / "blocks" / (2 * i), dims, w[0], w[0], same3)?);
            blocks.push(ConvNd::new(&path / "blocks" / (2 * i + 1), dims, w[0], w[1], down3)?);
        }
        let last = channels[channels.len() - 1];
        let mut conv_out = ConvNd::new(&path / "conv_out", dims, last, out_channels, same3)?;
        conv_out.zero_();
        Ok(Self { conv_in, blocks, conv_out })
    }

    /// `[B, C_cond, *S·2^k]` → `[B, out_channels, *S]`.
    pub fn forward(&self, cond: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(cond)?.silu();
        for b in &self.blocks {
            h = b.forward(&h)?.silu();
        }
        self.conv_out.forward(&h)
    }
}

/// The residuals a [`ControlNet`] produces, owned; [`ControlOutput::residuals`] borrows them
/// for [`DiffusersUNet::forward_with_control`].
#[derive(Debug)]
pub struct ControlOutput {
    /// One per skip of the U-Net, in push order.
    pub down: Vec<Tensor>,
    /// Added to the mid block output.
    pub mid: Tensor,
}

impl ControlOutput {
    /// Borrowed view for [`DiffusersUNet::forward_with_control`].
    pub fn residuals(&self) -> ControlResiduals<'_> {
        ControlResiduals { down: &self.down, mid: Some(&self.mid) }
    }
}

/// diffusers `ControlNetModel`.
#[derive(Debug)]
pub struct ControlNet {
    cfg: ControlNetConfig,
    encoder: DiffusersUNet,
    controlnet_cond_embedding: ConditioningEmbedding,
    controlnet_down_blocks: ZeroInjection,
    controlnet_mid_block: ConvNd,
}

impl ControlNet {
    /// Builds every variable under `path` with diffusers' names: the encoder copy
    /// (`conv_in`, `time_embedding`, [`class_embedding`], `down_blocks`, `mid_block`),
    /// `controlnet_cond_embedding`, and the zero convs `controlnet_down_blocks.{i}`,
    /// `controlnet_mid_block` (weights and biases zero).
    pub fn new(path: &nn::Path, cfg: &ControlNetConfig) -> Result<Self> {
        cfg.validate()?;
        let u = &cfg.unet;
        let d = u.dims;
        let c0 = u.block_out_channels[0];
        let encoder = DiffusersUNet::new_encoder(path, u)?;
        let controlnet_cond_embedding = ConditioningEmbedding::new(
            path / "controlnet_cond_embedding",
            d,
            cfg.conditioning_channels,
            &cfg.conditioning_embedding_out_channels,
            c0,
        )?;
        let controlnet_down_blocks =
            ZeroInjection::new(path / "controlnet_down_blocks", d, &cfg.skip_channels())?;
        let c_mid = u.block_out_channels[u.block_out_channels.len() - 1];
        let mut controlnet_mid_block =
            ConvNd::new(path / "controlnet_mid_block", d, c_mid, c_mid, ConvOptions::valid(1))?;
        controlnet_mid_block.zero_();
        Ok(Self {
            cfg: cfg.clone(),
            encoder,
            controlnet_cond_embedding,
            controlnet_down_blocks,
            controlnet_mid_block,
        })
    }

    /// diffusers `ControlNetModel.from_unet(unet)`: the default conditioning (RGB,
    /// `[16, 32, 96, 256]`) and the encoder weights copied from `unet_vs` (the variables of a
    /// [`DiffusersUNet`] built at its root with `unet_cfg`).
    pub fn from_unet(
        path: &nn::Path,
        unet_cfg: &DiffusersConfig,
        unet_vs: &nn::VarStore,
    ) -> Result<Self> {
        Self::from_unet_with(path, &ControlNetConfig::from_unet(unet_cfg), unet_vs)
    }

    /// [`ControlNet::from_unet`] with a chosen conditioning (`cfg.unet` must be the U-Net's).
    pub fn from_unet_with(
        path: &nn::Path,
        cfg: &ControlNetConfig,
        unet_vs: &nn::VarStore,
    ) -> Result<Self> {
        let net = Self::new(path, cfg)?;
        net.copy_encoder_from(path, unet_vs)?;
        Ok(net)
    }

    /// Copies every encoder variable (`conv_in.*`, `time_embedding.*`, `class_embedding.*`,
    /// `down_blocks.*`, `mid_block.*`) of `unet_vs` into this ControlNet's copy under `path`.
    /// A U-Net encoder variable the copy lacks, or has with another shape, is an error naming
    /// it (the copy is built from the same configuration, so the two sets then agree).
    pub fn copy_encoder_from(&self, path: &nn::Path, unet_vs: &nn::VarStore) -> Result<()> {
        let is_encoder = |k: &str| {
            ["conv_in.", "time_embedding.", "class_embedding.", "down_blocks.", "mid_block."]
                .iter()
                .any(|p| k.starts_with(p))
        };
        let src: BTreeMap<String, Tensor> =
            named_variables(unet_vs).into_iter().filter(|(k, _)| is_encoder(k)).collect();
        let mut pairs = Vec::with_capacity(src.len());
        let mut unexpected = Vec::new();
        let mut shape_mismatch = Vec::new();
        for (k, s) in &src {
            let parts: Vec<&str> = k.split('.').collect();
            let (last, dirs) = parts.split_last().unwrap_or((&"", &[]));
            match path_get(path, dirs, last) {
                None => unexpected.push(k.clone()),
                Some(t) if t.size() != s.size() => shape_mismatch.push((
                    k.clone(),
                    format!("{:?}", t.size()),
                    format!("{:?}", s.size()),
                )),
                Some(t) => pairs.push((t, s)),
            }
        }
        if src.is_empty() || !unexpected.is_empty() || !shape_mismatch.is_empty() {
            return Err(Error::CheckpointMismatch {
                path: "<U-Net variable store>".into(),
                missing: if src.is_empty() { vec!["conv_in.weight".into()] } else { vec![] },
                unexpected,
                shape_mismatch,
            });
        }
        tch::no_grad(|| -> Result<()> {
            for (t, s) in pairs {
                let mut t = t;
                t.f_copy_(&s.f_to_device(t.device())?)?;
            }
            Ok(())
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ControlNetConfig {
        &self.cfg
    }

    /// Residuals for the U-Net, scaled by `conditioning_scale` (1.0 in diffusers by default).
    ///
    /// # Shapes
    /// - `sample`: `[B, in_channels, *S]`; `timesteps`: `[]` or `[B]`;
    /// - `cond`: `[B, conditioning_channels, *S·2^(k−1)]` with `k` embedding stages;
    /// - `context`, `class_labels`: as [`DiffusersUNet::forward`];
    /// - returns one `[B, C_i, *S_i]` per skip and `[B, C_mid, *S_mid]`.
    pub fn forward(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        context: Option<&Tensor>,
        class_labels: Option<&Tensor>,
        cond: &Tensor,
        conditioning_scale: f64,
    ) -> Result<ControlOutput> {
        // 1. Time (and class) embedding, as the U-Net.
        let (sample, emb) = self.encoder.embed(sample, timesteps, context, class_labels)?;
        // 2. conv_in(sample) + controlnet_cond_embedding(cond).
        let h = self.encoder.apply_conv_in(&sample)?;
        let c = self.controlnet_cond_embedding.forward(cond)?;
        if c.size() != h.size() {
            return Err(Error::InputShape {
                shape: cond.size(),
                expected: format!(
                    "a control image whose embedding matches conv_in's output {:?} (got {:?})",
                    h.size(),
                    c.size()
                ),
            });
        }
        let h = h.f_add(&c)?;
        // 3. Down path (skips in push order) and mid block.
        let (h, skips) = self.encoder.down(h, &emb, context)?;
        let h = self.encoder.mid(h, &emb, context)?;
        // 4. Zero convs.
        debug_assert_eq!(skips.len(), skip_count(&self.cfg.unet));
        let mut down = self.controlnet_down_blocks.forward(&skips)?;
        let mut mid = self.controlnet_mid_block.forward(&h)?;
        if conditioning_scale != 1.0 {
            down = down.into_iter().map(|t| t * conditioning_scale).collect();
            mid *= conditioning_scale;
        }
        Ok(ControlOutput { down, mid })
    }
}

/// The variable `dirs.….last` under `path` (tch's `Path::get` takes one component).
fn path_get(path: &nn::Path, dirs: &[&str], last: &str) -> Option<Tensor> {
    dirs.iter().fold(path.clone(), |p, d| p / *d).get(last)
}

/// Loads a diffusers `ControlNetModel` folder (`config.json` +
/// `diffusion_pytorch_model.safetensors`) with the strict two-way key and shape check.
pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<(nn::VarStore, ControlNet)> {
    let dir = dir.as_ref();
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| Error::Io { path: cfg_path.clone(), source: e })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::CorruptCheckpoint {
        path: cfg_path.clone(),
        reason: format!("invalid JSON: {e}"),
    })?;
    let cfg = ControlNetConfig::from_json(&v)?;
    let mut vs = nn::VarStore::new(device);
    let net = ControlNet::new(&vs.root(), &cfg)?;
    let weights = dir.join(super::folder::WEIGHTS);
    let ckpt = read(&weights)?;
    assign_strict(&mut vs, &super::folder::rename_legacy_keys(ckpt.tensors), &weights, true)?;
    Ok((vs, net))
}
