//! The text reproductions of `../shared/MODELS.md` (`cargo xtask reproduce <name>`).

pub mod text_diffusion;
pub mod uet;
