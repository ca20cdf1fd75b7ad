//! Speech-enhancement metrics: SNR, segmental SNR and SI-SDR, computed in f64 on 1-D signals
//! (`reference` = clean, `estimate` = processed). Checked against numpy implementations of the
//! same definitions in `tests/fixtures/make_metrics_fixtures.py`.
//!
//! * **SNR** `= 10·log10(Σ s² / Σ (s − ŝ)²)`.
//! * **Segmental SNR** (Quackenbush, Barnwell & Clements 1988, *Objective Measures of Speech
//!   Quality*; Hansen & Pellom 1998, "An effective quality evaluation protocol for speech
//!   enhancement algorithms", ICSLP; Loizou 2013, *Speech Enhancement: Theory and Practice*,
//!   §11.1.1): the SNR of each frame, `10·log10(Σ s² / (Σ e² + ε) + ε)` with `ε = 2.2·10⁻¹⁶`,
//!   clamped to `[−10, 35]` dB, averaged over frames. Defaults: non-overlapping rectangular
//!   frames of 256 samples (32 ms at 8 kHz, 16 ms at 16 kHz); a trailing partial frame is
//!   dropped. The clamp keeps silent frames (SNR → −∞) and perfect frames (→ +∞) from
//!   dominating the mean.
//! * **SI-SDR** (Le Roux, Wisdom, Erdogan & Hershey 2019, "SDR – half-baked or well done?",
//!   ICASSP, eqs. 4-5): `α = ⟨ŝ, s⟩ / ‖s‖²`, `SI-SDR = 10·log10(‖α s‖² / ‖α s − ŝ‖²)`; no mean
//!   removal (subtract the means first if wanted).
//!
//! PESQ (ITU-T P.862) is not implemented here. For a later step: the PyPI package `pesq` 0.0.4
//! (C sources, built with gcc) installs and imports in a venv made from the xtask one
//! (`python -m venv --system-site-packages … && pip install pesq`), so a fixture script can
//! produce reference PESQ scores for a port or for a subprocess-based evaluator.
//!
//! Run its tests: `cargo test -p unet-audio --test metrics`.

use ndarray::ArrayView1;

use crate::error::{AudioError, Result};

const EPS: f64 = 2.220_446_049_250_313e-16;

fn check(reference: ArrayView1<f32>, estimate: ArrayView1<f32>, what: &str) -> Result<()> {
    if reference.len() != estimate.len() || reference.is_empty() {
        return Err(AudioError::Invalid(format!(
            "{what}: reference has {} samples, estimate {} (need equal, non-zero lengths)",
            reference.len(),
            estimate.len()
        )));
    }
    Ok(())
}

fn energies(reference: ArrayView1<f32>, estimate: ArrayView1<f32>) -> (f64, f64) {
    reference.iter().zip(estimate).fold((0.0, 0.0), |(s, e), (&r, &x)| {
        let (r, x) = (r as f64, x as f64);
        (s + r * r, e + (r - x) * (r - x))
    })
}

/// Signal-to-noise ratio in dB (`+∞` for a perfect estimate).
pub fn snr(reference: ArrayView1<f32>, estimate: ArrayView1<f32>) -> Result<f64> {
    check(reference, estimate, "snr")?;
    let (s, e) = energies(reference, estimate);
    Ok(10.0 * (s / e).log10())
}

/// Segmental SNR frame layout and clamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegSnrConfig {
    /// Frame length in samples.
    pub frame: usize,
    /// Hop between frames (= `frame`: non-overlapping).
    pub hop: usize,
    /// Lower clamp in dB.
    pub min_db: f64,
    /// Upper clamp in dB.
    pub max_db: f64,
}

impl Default for SegSnrConfig {
    /// 256-sample non-overlapping frames, clamp `[−10, 35]` dB.
    fn default() -> Self {
        Self { frame: 256, hop: 256, min_db: -10.0, max_db: 35.0 }
    }
}

/// Segmental SNR in dB with the default frames (256 samples) and clamp (`[−10, 35]`).
pub fn seg_snr(reference: ArrayView1<f32>, estimate: ArrayView1<f32>) -> Result<f64> {
    seg_snr_with(reference, estimate, &SegSnrConfig::default())
}

/// Segmental SNR in dB with explicit frames and clamp.
pub fn seg_snr_with(
    reference: ArrayView1<f32>,
    estimate: ArrayView1<f32>,
    cfg: &SegSnrConfig,
) -> Result<f64> {
    check(reference, estimate, "seg_snr")?;
    if cfg.frame == 0 || cfg.hop == 0 || reference.len() < cfg.frame {
        return Err(AudioError::Invalid(format!(
            "seg_snr: {} samples cannot hold one frame of {} (hop {})",
            reference.len(),
            cfg.frame,
            cfg.hop
        )));
    }
    let frames = (reference.len() - cfg.frame) / cfg.hop + 1;
    let total: f64 = (0..frames)
        .map(|i| {
            let r = i * cfg.hop..i * cfg.hop + cfg.frame;
            let (s, e) =
                energies(reference.slice(ndarray::s![r.clone()]), estimate.slice(ndarray::s![r]));
            (10.0 * (s / (e + EPS) + EPS).log10()).clamp(cfg.min_db, cfg.max_db)
        })
        .sum();
    Ok(total / frames as f64)
}

/// Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).
pub fn si_sdr(reference: ArrayView1<f32>, estimate: ArrayView1<f32>) -> Result<f64> {
    check(reference, estimate, "si_sdr")?;
    let (mut ss, mut sx) = (0.0f64, 0.0f64);
    for (&r, &x) in reference.iter().zip(estimate) {
        ss += r as f64 * r as f64;
        sx += r as f64 * x as f64;
    }
    if ss == 0.0 {
        return Err(AudioError::Invalid("si_sdr: the reference is silent".into()));
    }
    let alpha = sx / ss;
    let (mut t, mut e) = (0.0f64, 0.0f64);
    for (&r, &x) in reference.iter().zip(estimate) {
        let target = alpha * r as f64;
        t += target * target;
        e += (target - x as f64) * (target - x as f64);
    }
    Ok(10.0 * (t / e).log10())
}
