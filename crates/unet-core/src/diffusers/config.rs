//! diffusers `config.json` of `UNet2DModel` / `UNet2DConditionModel`, parsed and checked.
//!
//! Options diffusers offers that this port does not implement (fourier/learned time
//! embeddings, addition embeddings, dual cross-attention, …) are refused with an error naming
//! the field, never silently ignored.

use serde_json::{json, Value};

use crate::embeddings::EmbedAct;
use crate::resnet::EmbeddingInjection;
use crate::{Error, Result};

/// Which diffusers class the config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `UNet2DModel` (DDPM): spatial self-attention blocks, `attention_head_dim` = width per head.
    Unconditional,
    /// `UNet2DConditionModel` (Stable Diffusion): transformer blocks with cross-attention,
    /// `attention_head_dim` = number of heads.
    Conditional,
}

/// Kind of a down or up block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `DownBlock2D` / `UpBlock2D`: residual blocks only.
    Plain,
    /// `AttnDownBlock2D` / `AttnUpBlock2D`: residual blocks each followed by spatial self-attention.
    Attn,
    /// `CrossAttnDownBlock2D` / `CrossAttnUpBlock2D`: residual blocks each followed by a transformer.
    CrossAttn,
}

/// Kind of the mid block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MidKind {
    /// `UNetMidBlock2D`: resnet, [self-attention], resnet.
    Attn {
        /// Whether the attention is present (`add_attention`).
        attention: bool,
    },
    /// `UNetMidBlock2D` inside `UNet2DConditionModel`: one resnet.
    ResnetOnly,
    /// `UNetMidBlock2DCrossAttn`: resnet, transformer, resnet.
    CrossAttn,
    /// No mid block.
    None,
}

/// A checked diffusers U-Net configuration.
#[derive(Debug, Clone)]
pub struct DiffusersConfig {
    /// The class.
    pub flavor: Flavor,
    /// Spatial rank (diffusers is 2D; `unet_rs_dims` in the JSON selects 1 or 3).
    pub dims: usize,
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Channels per level.
    pub block_out_channels: Vec<i64>,
    /// Residual blocks per down level (the up level has one more).
    pub layers_per_block: Vec<i64>,
    /// Down block kinds, finest first.
    pub down: Vec<BlockKind>,
    /// Up block kinds, coarsest first.
    pub up: Vec<BlockKind>,
    /// Mid block.
    pub mid: MidKind,
    /// 1: symmetric padding of the stride-2 conv; 0: pad right/bottom by one first (DDPM).
    pub downsample_padding: i64,
    /// Divides the mid block's residual outputs.
    pub mid_block_scale_factor: f64,
    /// Block non-linearity.
    pub act: EmbedAct,
    /// Group-norm groups.
    pub norm_num_groups: i64,
    /// Group-norm epsilon.
    pub norm_eps: f64,
    /// Sinusoid ordering.
    pub flip_sin_to_cos: bool,
    /// Sinusoid frequency shift.
    pub freq_shift: f64,
    /// `sample = 2·sample − 1` first.
    pub center_input_sample: bool,
    /// Width of the time embedding (`4 · block_out_channels[0]` by default).
    pub time_embed_dim: i64,
    /// Per level: head width (unconditional, `None` = one head) or head count (conditional).
    pub attention_head_dim: Vec<Option<i64>>,
    /// Per level cross-attention width (conditional).
    pub cross_attention_dim: Vec<i64>,
    /// Per level transformer depth (conditional).
    pub transformer_layers_per_block: Vec<i64>,
    /// Linear instead of 1×1 conv projections in transformers.
    pub use_linear_projection: bool,
    /// Per level: `attn1` attends to the context too.
    pub only_cross_attention: Vec<bool>,
    /// Class-conditional: number of classes of `class_embedding`.
    pub num_class_embeds: Option<i64>,
    /// Add or scale-shift injection of the time embedding.
    pub injection: EmbeddingInjection,
    /// Groups of the mid attention's norm (unconditional).
    pub attn_norm_num_groups: Option<i64>,
    /// Dropout in residual blocks.
    pub dropout: f64,
    /// The JSON it was parsed from (written back by exports).
    pub raw: Value,
}

fn bad(field: &'static str, v: &Value, why: &str) -> Error {
    Error::config(field, v.to_string(), why)
}

fn get_i64(v: &Value, field: &'static str, default: i64) -> Result<i64> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x.as_i64().ok_or_else(|| bad(field, x, "expected an integer")),
    }
}

fn get_f64(v: &Value, field: &'static str, default: f64) -> Result<f64> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x.as_f64().ok_or_else(|| bad(field, x, "expected a number")),
    }
}

fn get_bool(v: &Value, field: &'static str, default: bool) -> Result<bool> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x.as_bool().ok_or_else(|| bad(field, x, "expected true or false")),
    }
}

fn get_str<'a>(v: &'a Value, field: &'static str, default: &'a str) -> Result<&'a str> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => x.as_str().ok_or_else(|| bad(field, x, "expected a string")),
    }
}

fn str_list(v: &Value, field: &'static str, default: &[&str]) -> Result<Vec<String>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(String::from).ok_or_else(|| bad(field, x, "expected strings")))
            .collect(),
        Some(x) => Err(bad(field, x, "expected a list of strings")),
    }
}

/// An int or a per-level list of ints (`None` entries allowed when `nullable`).
fn per_level(
    v: &Value,
    field: &'static str,
    n: usize,
    default: Option<i64>,
) -> Result<Vec<Option<i64>>> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(vec![default; n]),
        Some(Value::Array(a)) => {
            if a.len() != n {
                return Err(bad(field, &v[field], &format!("needs one entry per level ({n})")));
            }
            a.iter()
                .map(|x| {
                    if x.is_null() {
                        Ok(None)
                    } else {
                        x.as_i64().map(Some).ok_or_else(|| bad(field, x, "expected integers"))
                    }
                })
                .collect()
        }
        Some(x) => x
            .as_i64()
            .map(|i| vec![Some(i); n])
            .ok_or_else(|| bad(field, x, "expected an integer or a list")),
    }
}

fn reject_if_set(v: &Value, field: &'static str, allowed_default: &Value) -> Result<()> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(x) if x == allowed_default => Ok(()),
        Some(x) => Err(bad(field, x, "is not supported by unet-rs's diffusers port")),
    }
}

impl DiffusersConfig {
    /// Parses a diffusers `config.json` value.
    pub fn from_json(v: &Value) -> Result<Self> {
        let class = get_str(v, "_class_name", "")?;
        let flavor = match class {
            "UNet2DModel" => Flavor::Unconditional,
            "UNet2DConditionModel" => Flavor::Conditional,
            "" if v.get("cross_attention_dim").is_some() => Flavor::Conditional,
            "" => Flavor::Unconditional,
            other => {
                return Err(Error::config(
                    "_class_name",
                    other,
                    "expected UNet2DModel or UNet2DConditionModel",
                ))
            }
        };
        let cond = flavor == Flavor::Conditional;
        for f in [
            "addition_embed_type",
            "encoder_hid_dim",
            "encoder_hid_dim_type",
            "time_cond_proj_dim",
            "timestep_post_act",
            "time_embedding_act_fn",
            "class_embed_type",
            "num_train_timesteps",
            "reverse_transformer_layers_per_block",
        ] {
            reject_if_set(v, f, &Value::Null)?;
        }
        reject_if_set(v, "time_embedding_type", &json!("positional"))?;
        reject_if_set(v, "dual_cross_attention", &json!(false))?;
        reject_if_set(v, "class_embeddings_concat", &json!(false))?;
        reject_if_set(v, "conv_in_kernel", &json!(3))?;
        reject_if_set(v, "conv_out_kernel", &json!(3))?;
        reject_if_set(v, "attention_type", &json!("default"))?;
        reject_if_set(v, "downsample_type", &json!("conv"))?;
        reject_if_set(v, "upsample_type", &json!("conv"))?;
        reject_if_set(v, "num_attention_heads", &Value::Null)?;

        let block_out_channels: Vec<i64> = match v.get("block_out_channels") {
            None | Some(Value::Null) => {
                if cond {
                    vec![320, 640, 1280, 1280]
                } else {
                    vec![224, 448, 672, 896]
                }
            }
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_i64().ok_or_else(|| bad("block_out_channels", x, "expected integers"))
                })
                .collect::<Result<_>>()?,
            Some(x) => return Err(bad("block_out_channels", x, "expected a list")),
        };
        let n = block_out_channels.len();
        if n == 0 || block_out_channels.iter().any(|&c| c <= 0) {
            return Err(Error::config(
                "block_out_channels",
                &block_out_channels,
                "needs at least one positive entry",
            ));
        }
        let down_default: &[&str] = if cond {
            &["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
        } else {
            &["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]
        };
        let up_default: &[&str] = if cond {
            &["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
        } else {
            &["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]
        };
        let kind = |s: &str, field: &'static str| -> Result<BlockKind> {
            Ok(match s {
                "DownBlock2D" | "UpBlock2D" => BlockKind::Plain,
                "AttnDownBlock2D" | "AttnUpBlock2D" => BlockKind::Attn,
                "CrossAttnDownBlock2D" | "CrossAttnUpBlock2D" => BlockKind::CrossAttn,
                other => return Err(Error::config(field, other, "unsupported block type")),
            })
        };
        let down = str_list(v, "down_block_types", down_default)?
            .iter()
            .map(|s| kind(s, "down_block_types"))
            .collect::<Result<Vec<_>>>()?;
        let up = str_list(v, "up_block_types", up_default)?
            .iter()
            .map(|s| kind(s, "up_block_types"))
            .collect::<Result<Vec<_>>>()?;
        if down.len() != n || up.len() != n {
            return Err(Error::config(
                "down_block_types",
                (down.len(), up.len()),
                format!("need {n} down and {n} up blocks, one per block_out_channels entry"),
            ));
        }
        let mid_default = if cond { "UNetMidBlock2DCrossAttn" } else { "UNetMidBlock2D" };
        let mid = match v.get("mid_block_type") {
            Some(Value::Null) => MidKind::None,
            _ => match get_str(v, "mid_block_type", mid_default)? {
                "UNetMidBlock2D" if cond => MidKind::ResnetOnly,
                "UNetMidBlock2D" => {
                    MidKind::Attn { attention: get_bool(v, "add_attention", true)? }
                }
                "UNetMidBlock2DCrossAttn" if cond => MidKind::CrossAttn,
                other => {
                    return Err(Error::config("mid_block_type", other, "unsupported mid block"))
                }
            },
        };
        let layers_per_block = per_level(v, "layers_per_block", n, Some(2))?
            .into_iter()
            .map(|x| x.unwrap_or(2))
            .collect::<Vec<_>>();
        // An explicit `null` means "one head of full width" in UNet2DModel, unlike a missing key.
        let attention_head_dim = match v.get("attention_head_dim") {
            Some(Value::Null) => vec![None; n],
            _ => per_level(v, "attention_head_dim", n, Some(8))?,
        };
        let cross_attention_dim = per_level(v, "cross_attention_dim", n, Some(1280))?
            .into_iter()
            .map(|x| x.unwrap_or(1280))
            .collect();
        let transformer_layers_per_block =
            per_level(v, "transformer_layers_per_block", n, Some(1))?
                .into_iter()
                .map(|x| x.unwrap_or(1))
                .collect();
        let only_cross_attention = match v.get("only_cross_attention") {
            None | Some(Value::Null) => vec![false; n],
            Some(Value::Bool(b)) => vec![*b; n],
            Some(Value::Array(a)) if a.len() == n => a
                .iter()
                .map(|x| {
                    x.as_bool().ok_or_else(|| bad("only_cross_attention", x, "expected booleans"))
                })
                .collect::<Result<_>>()?,
            Some(x) => {
                return Err(bad("only_cross_attention", x, "expected a bool or one per level"))
            }
        };
        let injection = match get_str(v, "resnet_time_scale_shift", "default")? {
            "default" => EmbeddingInjection::Add,
            "scale_shift" => EmbeddingInjection::ScaleShift,
            other => {
                return Err(Error::config(
                    "resnet_time_scale_shift",
                    other,
                    "use default or scale_shift",
                ))
            }
        };
        let c0 = block_out_channels[0];
        let dims = get_i64(v, "unet_rs_dims", 2)? as usize;
        let cfg = Self {
            flavor,
            dims,
            in_channels: get_i64(v, "in_channels", if cond { 4 } else { 3 })?,
            out_channels: get_i64(v, "out_channels", if cond { 4 } else { 3 })?,
            layers_per_block,
            down,
            up,
            mid,
            downsample_padding: get_i64(v, "downsample_padding", 1)?,
            mid_block_scale_factor: get_f64(v, "mid_block_scale_factor", 1.0)?,
            act: EmbedAct::from_name(get_str(v, "act_fn", "silu")?)?,
            norm_num_groups: get_i64(v, "norm_num_groups", 32)?,
            norm_eps: get_f64(v, "norm_eps", 1e-5)?,
            flip_sin_to_cos: get_bool(v, "flip_sin_to_cos", true)?,
            freq_shift: get_f64(v, "freq_shift", 0.0)?,
            center_input_sample: get_bool(v, "center_input_sample", false)?,
            time_embed_dim: get_i64(v, "time_embedding_dim", 4 * c0)?,
            attention_head_dim,
            cross_attention_dim,
            transformer_layers_per_block,
            use_linear_projection: get_bool(v, "use_linear_projection", false)?,
            only_cross_attention,
            num_class_embeds: match v.get("num_class_embeds") {
                None | Some(Value::Null) => None,
                Some(x) => Some(
                    x.as_i64().ok_or_else(|| bad("num_class_embeds", x, "expected an integer"))?,
                ),
            },
            injection,
            attn_norm_num_groups: match v.get("attn_norm_num_groups") {
                None | Some(Value::Null) => None,
                Some(x) => Some(
                    x.as_i64()
                        .ok_or_else(|| bad("attn_norm_num_groups", x, "expected an integer"))?,
                ),
            },
            dropout: get_f64(v, "dropout", 0.0)?,
            block_out_channels,
            raw: v.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses `config.json` at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io { path: path.into(), source: e })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::CorruptCheckpoint {
            path: path.into(),
            reason: format!("invalid JSON: {e}"),
        })?;
        Self::from_json(&v)
    }

    fn validate(&self) -> Result<()> {
        crate::layers::check_dims(self.dims)?;
        if self.in_channels <= 0 || self.out_channels <= 0 {
            return Err(Error::config(
                "in_channels/out_channels",
                (self.in_channels, self.out_channels),
                "must be positive",
            ));
        }
        if self.downsample_padding != 0 && self.downsample_padding != 1 {
            return Err(Error::config("downsample_padding", self.downsample_padding, "use 0 or 1"));
        }
        if self.layers_per_block.iter().any(|&l| l <= 0) {
            return Err(Error::config(
                "layers_per_block",
                &self.layers_per_block,
                "must be positive",
            ));
        }
        for &c in &self.block_out_channels {
            if c % self.norm_num_groups != 0 {
                return Err(Error::config(
                    "norm_num_groups",
                    self.norm_num_groups,
                    format!("{c} channels are not divisible by {} groups", self.norm_num_groups),
                ));
            }
        }
        let uses = |k: BlockKind| self.down.contains(&k) || self.up.contains(&k);
        if self.flavor == Flavor::Unconditional
            && (uses(BlockKind::CrossAttn) || self.mid == MidKind::CrossAttn)
        {
            return Err(Error::config(
                "down_block_types",
                "CrossAttn*",
                "cross-attention blocks need UNet2DConditionModel",
            ));
        }
        if self.flavor == Flavor::Conditional && uses(BlockKind::Attn) {
            return Err(Error::config(
                "down_block_types",
                "Attn*Block2D",
                "spatial attention blocks belong to UNet2DModel",
            ));
        }
        for (i, (&c, h)) in self.block_out_channels.iter().zip(&self.attention_head_dim).enumerate()
        {
            if let Some(h) = h {
                if *h <= 0 || c % h != 0 {
                    return Err(Error::config(
                        "attention_head_dim",
                        h,
                        format!("level {i}: must divide its {c} channels"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Heads and head width of level `i`'s attention.
    pub fn heads(&self, level: usize) -> (i64, i64) {
        let c = self.block_out_channels[level];
        match (self.flavor, self.attention_head_dim[level]) {
            (Flavor::Unconditional, Some(d)) => (c / d, d),
            (Flavor::Unconditional, None) => (1, c),
            (Flavor::Conditional, Some(h)) => (h, c / h),
            (Flavor::Conditional, None) => (8, c / 8),
        }
    }
}
