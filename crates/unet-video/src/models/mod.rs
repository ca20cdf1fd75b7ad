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

/// Makes `dir` hold the run described by `identity` (written to `dir/name`): when an earlier
/// run with another identity (config, data, steps, seed) left `name` there, its `stale` files
/// (checkpoint, loss log) are removed so that the new run neither resumes from nor reports
/// them.
pub(crate) fn fresh_if_changed(
    dir: &std::path::Path,
    name: &str,
    identity: &str,
    stale: &[&std::path::Path],
) -> crate::Result<()> {
    let path = dir.join(name);
    if let Ok(old) = std::fs::read_to_string(&path) {
        if old != identity {
            tracing::warn!(dir = %dir.display(), "a different run trained here before: starting afresh");
            for f in stale {
                if f.exists() {
                    std::fs::remove_file(f).map_err(|e| crate::VideoError::io(*f, e))?;
                }
            }
        }
    }
    unet_core::checkpoint::write_atomic(&path, identity.as_bytes())?;
    Ok(())
}

/// Reads a JSON file into `T`; a missing file is `Io`, bad JSON a `Format` error with its line.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> crate::Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::VideoError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| crate::VideoError::format(path, format!("line {}: {e}", e.line())))
}
