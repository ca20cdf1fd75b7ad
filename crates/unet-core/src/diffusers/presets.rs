//! diffusers configurations of the published models, and tiny ones for tests.

use serde_json::{json, Value};

use super::config::DiffusersConfig;
use crate::Result;

/// `google/ddpm-cifar10-32` `unet/config.json` (Ho, Jain & Abbeel 2020, "Denoising Diffusion
/// Probabilistic Models", CIFAR-10 model: ch 128, mult (1,2,2,2), 2 res blocks, attention at
/// 16×16). 35,746,307 parameters (the paper: 35.7M).
pub fn ddpm_cifar10_json() -> Value {
    json!({
        "_class_name": "UNet2DModel",
        "act_fn": "silu",
        "attention_head_dim": null,
        "block_out_channels": [128, 256, 256, 256],
        "center_input_sample": false,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
        "downsample_padding": 0,
        "flip_sin_to_cos": false,
        "freq_shift": 1,
        "in_channels": 3,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-06,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 32,
        "time_embedding_type": "positional",
        "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"]
    })
}

/// `runwayml/stable-diffusion-v1-5` `unet/config.json` (Rombach et al. 2022). 859,520,964
/// parameters.
pub fn sd_v1_5_json() -> Value {
    json!({
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": false,
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
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    })
}

/// The DDPM CIFAR-10 U-Net.
pub fn ddpm_cifar10() -> Result<DiffusersConfig> {
    DiffusersConfig::from_json(&ddpm_cifar10_json())
}

/// The Stable Diffusion v1.5 U-Net.
pub fn sd_v1_5() -> Result<DiffusersConfig> {
    DiffusersConfig::from_json(&sd_v1_5_json())
}

/// A small model of the same design as `name`'s preset (channels 32/64, one resnet per level,
/// 8 groups), for tests and parity checks.
pub fn tiny_json(name: &str) -> Option<Value> {
    Some(match name {
        "ddpm-cifar10" => json!({
            "_class_name": "UNet2DModel",
            "attention_head_dim": null,
            "block_out_channels": [32, 64, 64],
            "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
            "downsample_padding": 0, "flip_sin_to_cos": false, "freq_shift": 1,
            "in_channels": 3, "out_channels": 3, "layers_per_block": 1,
            "norm_eps": 1e-06, "norm_num_groups": 8, "sample_size": 16
        }),
        "ddpm-scale-shift" => json!({
            "_class_name": "UNet2DModel",
            "attention_head_dim": 8,
            "block_out_channels": [32, 64],
            "down_block_types": ["AttnDownBlock2D", "AttnDownBlock2D"],
            "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D"],
            "resnet_time_scale_shift": "scale_shift", "attn_norm_num_groups": 8,
            "mid_block_scale_factor": 1.5, "center_input_sample": true,
            "in_channels": 1, "out_channels": 2, "layers_per_block": 2,
            "norm_num_groups": 8, "num_class_embeds": 10, "sample_size": 8
        }),
        "sd-v1-5-unet" => json!({
            "_class_name": "UNet2DConditionModel",
            "attention_head_dim": 8,
            "block_out_channels": [32, 64],
            "cross_attention_dim": 32,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
            "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
            "norm_num_groups": 8, "sample_size": 8
        }),
        "sd-v2-style" => json!({
            "_class_name": "UNet2DConditionModel",
            "attention_head_dim": [2, 4, 4],
            "block_out_channels": [32, 64, 64],
            "cross_attention_dim": 24,
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            "use_linear_projection": true, "transformer_layers_per_block": 2,
            "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
            "norm_num_groups": 8, "sample_size": 8, "act_fn": "gelu"
        }),
        _ => return None,
    })
}

/// Full-size preset JSON by name (`ddpm-cifar10`, `sd-v1-5-unet`).
pub fn full_json(name: &str) -> Option<Value> {
    match name {
        "ddpm-cifar10" => Some(ddpm_cifar10_json()),
        "sd-v1-5-unet" => Some(sd_v1_5_json()),
        _ => None,
    }
}

/// Names accepted by [`full_json`].
pub const PRESETS: &[&str] = &["ddpm-cifar10", "sd-v1-5-unet"];
