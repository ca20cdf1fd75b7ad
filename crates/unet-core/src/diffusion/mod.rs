//! Diffusion (survey Section 3.2.1), modality-agnostic: schedules and closed-form noising,
//! ε/v/x₀ objectives with min-SNR weighting, DDPM / DDIM / DPM-Solver++(2M) sampling,
//! classifier-free guidance, in-/out-painting, and a KL autoencoder for latent diffusion.
//! Any denoiser works: samplers take a closure `(x_t, t) → output`.

pub mod autoencoder;
pub mod objective;
pub mod sampler;
pub mod schedule;

pub use objective::{loss, Prediction};
pub use sampler::{drop_labels, guidance, sample, Inpaint, SampleOptions, Sampler, Spacing};
pub use schedule::{BetaSchedule, NoiseSchedule};
