//! The video reproductions and what they share.
//!
//! * [`video_unet`]: the one network (image / Latent-Shift / Space-Time / Upscale-A-Video
//!   configurations);
//! * [`clip_diffusion`]: `lumiere` and `latent-shift` — diffusion on moving Fashion-MNIST clips
//!   against the frame-independent image U-Net, and sampling from a trained run;
//! * [`upscale`]: `upscale-a-video` — ×4 video super-resolution of real clips against bicubic
//!   and a per-frame U-Net;
//! * [`artefacts`]: PNG frame strips and MP4 grids.

pub mod artefacts;
pub mod clip_diffusion;
pub mod upscale;
pub mod video_unet;

/// Seconds since `t0`.
pub(crate) fn secs(t0: std::time::Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}
