//! The model registry: which crate's runner reproduces which model (see `../shared/MODELS.md`).

use anyhow::{bail, Result};

/// A model of MODELS.md and the crate whose binary runs it.
pub struct Model {
    /// `cargo xtask reproduce <name>`.
    pub name: &'static str,
    /// Crate (and binary) that implements it; `None` while not implemented.
    pub krate: Option<&'static str>,
    /// One line on what it is.
    pub summary: &'static str,
}

/// Every model of MODELS.md, implemented or planned.
pub const MODELS: &[Model] = &[
    Model {
        name: "unet2015",
        krate: Some("unet-image"),
        summary: "Ronneberger 2015 U-Net, segmentation of Fashion-MNIST items on textures",
    },
    Model {
        name: "resunet",
        krate: Some("unet-image"),
        summary: "Zhang 2018 residual U-Net, same task as unet2015, Dice vs the unet2015 design",
    },
    Model {
        name: "multiresunet",
        krate: Some("unet-image"),
        summary: "Ibtehaz 2020 MultiResUNet, same task as unet2015, Dice vs the unet2015 design",
    },
    Model {
        name: "ddpm",
        krate: Some("unet-image"),
        summary: "Ho 2020 DDPM U-Net, Fashion-MNIST generation, FD-FMNIST vs the no-skip ablation",
    },
    Model {
        name: "ldm",
        krate: Some("unet-image"),
        summary: "Rombach 2022 latent diffusion (SD v1.5 U-Net), MiniLM-prompted Fashion-MNIST",
    },
    Model {
        name: "controlnet",
        krate: Some("unet-image"),
        summary: "Zhang 2023 ControlNet on the trained ddpm U-Net, edge F1 with vs without control",
    },
    Model {
        name: "freeu",
        krate: Some("unet-image"),
        summary: "Si 2023 FreeU re-weighting of the trained ddpm U-Net, FD-FMNIST with and without",
    },
    Model {
        name: "inpainting",
        krate: Some("unet-image"),
        summary: "mask-conditioned diffusion inpainting, PSNR/SSIM vs mean fill",
    },
    Model {
        name: "pix2pix",
        krate: Some("unet-image"),
        summary:
            "Isola 2017 U-Net-256 + PatchGAN, degraded → clean FMNIST, vs L1-only and identity",
    },
    Model {
        name: "pixelcnnpp",
        krate: Some("unet-image"),
        summary: "Salimans 2017 PixelCNN++, FMNIST test bits/dim vs independent pixels and uniform",
    },
    Model {
        name: "wave-unet",
        krate: Some("unet-audio"),
        summary: "Stoller 2018 Wave-U-Net, speech enhancement, tested on real codec2 speech",
    },
    Model {
        name: "attn-wave-unet",
        krate: Some("unet-audio"),
        summary: "Giri 2019 attention Wave-U-Net vs the plain one at equal steps",
    },
    Model {
        name: "deep-unet",
        krate: Some("unet-audio"),
        summary: "Jansson 2017 spectrogram U-Net, speech/accompaniment separation, SI-SDR",
    },
    Model {
        name: "unetgan",
        krate: Some("unet-audio"),
        summary: "Hao 2020 U-Net GAN, speech at -15..0 dB, SSNR vs its L1-only generator",
    },
    Model {
        name: "uet",
        krate: Some("unet-text"),
        summary:
            "Ignacio 2025 U-Net Encapsulated Transformer LM vs a transformer of equal depth, KJV",
    },
    Model {
        name: "text-diffusion",
        krate: Some("unet-text"),
        summary: "1D U-Net embedding diffusion with cross-attention: KJV infilling accuracy, sample perplexity",
    },
    Model {
        name: "lumiere",
        krate: Some("unet-video"),
        summary: "Bar-Tal 2024 Space-Time U-Net, moving FMNIST clips vs the frame-independent U-Net",
    },
    Model {
        name: "latent-shift",
        krate: Some("unet-video"),
        summary: "An 2023 temporal shift in the image U-Net (same parameters), same task as lumiere",
    },
    Model {
        name: "upscale-a-video",
        krate: Some("unet-video"),
        summary: "Zhou 2024 temporal layers for ×4 video super-resolution vs bicubic and per-frame",
    },
    Model {
        name: "unet3d",
        krate: Some("unet-3d"),
        summary: "Çiçek 2016 3D U-Net, liver labels, sliding-window Dice/HD95 vs thresholds",
    },
    Model {
        name: "s3d-unet",
        krate: Some("unet-3d"),
        summary: "Chen 2018 S3D-UNet: the same task, parameters/MACs/time saved vs unet3d",
    },
    Model {
        name: "3dgaunet",
        krate: Some("unet-3d"),
        summary: "Shi 2023 3DGAUnet: 3D U-Net generator GAN on voxelised CGAL meshes, COV/MMD, PLY",
    },
    Model {
        name: "voxel-diffusion",
        krate: Some("unet-3d"),
        summary: "3D diffusers U-Net voxel diffusion, COV/MMD by IoU and Chamfer, PLY",
    },
    Model {
        name: "motion-diffusion",
        krate: Some("unet-pose"),
        summary: "1D temporal U-Net diffusion with classifier-free guidance, DeepMimic clips, motion FD",
    },
    Model {
        name: "hourglass-unet",
        krate: Some("unet-pose"),
        summary: "Bulat 2020 HourGlass/U-Net hybrid, soft gates, keypoints of rendered views, PCK",
    },
];

/// Architecture presets that `cargo xtask params` also knows (crate, name).
pub const PARAM_PRESETS: &[(&str, &str)] =
    &[("ddpm-cifar10", "unet-core"), ("sd-v1-5-unet", "unet-core"), ("dresunet", "unet-3d")];

/// The crate whose binary prints the parameter count of `name` (a model or a preset).
pub fn params_crate(name: &str) -> Result<&'static str> {
    if let Some((_, k)) = PARAM_PRESETS.iter().find(|(n, _)| *n == name) {
        return Ok(k);
    }
    find(name).map_err(|e| {
        anyhow::anyhow!(
            "{e}; architecture presets: {}",
            PARAM_PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Looks a model up; unknown and not-yet-implemented names are clear errors.
pub fn find(name: &str) -> Result<&'static str> {
    match MODELS.iter().find(|m| m.name == name) {
        Some(Model { krate: Some(k), .. }) => Ok(k),
        Some(m) => bail!(
            "model `{}` ({}) is listed in MODELS.md but not implemented yet; implemented: {}",
            m.name,
            m.summary,
            implemented().join(", ")
        ),
        None => bail!(
            "unknown model `{name}`; known models: {}",
            MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn implemented() -> Vec<&'static str> {
    MODELS.iter().filter(|m| m.krate.is_some()).map(|m| m.name).collect()
}

/// Prints the registry.
pub fn print_table() {
    for m in MODELS {
        let state = m.krate.map_or("planned".to_string(), |k| format!("ready ({k})"));
        println!("{:<18} {:<18} {}", m.name, state, m.summary);
    }
}
