//! Noise for speech enhancement, generated deterministically from a seed
//! ([`unet_core::rng::Rng`]), each scaled to unit RMS, and [`mix_at_snr`].
//!
//! * white: i.i.d. standard normal;
//! * pink (1/f power): Voss-McCartney, 16 rows of held random values where row `r` is
//!   redrawn every `2^r` samples (trailing-zero schedule), plus a white row;
//! * brown (1/f² power): a leaky integrator `y[n] = 0.999·y[n−1] + w[n]` (leak keeps it from
//!   drifting), mean removed;
//! * babble: other utterances summed at random offsets (looped to length);
//! * tones: sines at the given frequencies with random phases.
//!
//! Run its tests: `cargo test -p unet-audio --test data`.

use unet_core::rng::Rng;

use crate::error::{AudioError, Result};

/// A kind of noise.
#[derive(Debug, Clone, PartialEq)]
pub enum NoiseKind {
    /// Flat spectrum.
    White,
    /// 1/f power spectrum.
    Pink,
    /// 1/f² power spectrum.
    Brown,
    /// Tones at these frequencies in Hz.
    Tones(Vec<f64>),
    /// Music-like accompaniment: plucked harmonic notes and chords ([`music`]).
    Music,
}

fn unit_rms(mut v: Vec<f32>) -> Vec<f32> {
    let rms = (v.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / v.len().max(1) as f64).sqrt();
    if rms > 0.0 {
        for x in &mut v {
            *x = (*x as f64 / rms) as f32;
        }
    }
    v
}

/// White Gaussian noise, unit RMS.
pub fn white(n: usize, rng: &mut Rng) -> Vec<f32> {
    unit_rms((0..n).map(|_| rng.normal() as f32).collect())
}

/// Pink noise (Voss-McCartney), unit RMS.
pub fn pink(n: usize, rng: &mut Rng) -> Vec<f32> {
    const ROWS: usize = 16;
    let mut rows: Vec<f64> = (0..ROWS).map(|_| rng.normal()).collect();
    let mut sum: f64 = rows.iter().sum();
    let v = (0..n)
        .map(|i| {
            if i > 0 {
                let r = (i.trailing_zeros() as usize).min(ROWS - 1);
                let new = rng.normal();
                sum += new - rows[r];
                rows[r] = new;
            }
            (sum + rng.normal()) as f32
        })
        .collect();
    unit_rms(v)
}

/// Brown (red) noise, unit RMS.
pub fn brown(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut y = 0.0f64;
    let v: Vec<f64> = (0..n)
        .map(|_| {
            y = 0.999 * y + rng.normal();
            y
        })
        .collect();
    let mean = v.iter().sum::<f64>() / n.max(1) as f64;
    unit_rms(v.into_iter().map(|x| (x - mean) as f32).collect())
}

/// Tones with random phases, unit RMS.
pub fn tones(n: usize, rate: u32, freqs: &[f64], rng: &mut Rng) -> Vec<f32> {
    let phases: Vec<f64> =
        freqs.iter().map(|_| rng.range_f64(0.0, std::f64::consts::TAU)).collect();
    let v = (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            freqs
                .iter()
                .zip(&phases)
                .map(|(f, p)| (std::f64::consts::TAU * f * t + p).sin())
                .sum::<f64>() as f32
        })
        .collect();
    unit_rms(v)
}

/// Music-like accompaniment, unit RMS: consecutive events of 0.12-0.6 s, each a chord of one
/// to three notes of a two-octave A-minor pentatonic scale (110-440 Hz fundamentals), every
/// note five harmonics with amplitudes `1/k` and an exponential decay (time constant 0.1-0.5
/// s), like a plucked or struck instrument.
pub fn music(n: usize, rate: u32, rng: &mut Rng) -> Vec<f32> {
    const SCALE: [f64; 5] = [0.0, 3.0, 5.0, 7.0, 10.0]; // semitones above A
    let mut v = vec![0f64; n];
    let mut start = 0usize;
    while start < n {
        let len = (rng.range_f64(0.12, 0.6) * rate as f64) as usize + 1;
        let tau = rng.range_f64(0.1, 0.5) * rate as f64;
        let notes = 1 + rng.below(3) as usize;
        for _ in 0..notes {
            let step = SCALE[rng.below(5) as usize] + 12.0 * rng.below(3) as f64;
            let f0 = 110.0 * 2f64.powf(step / 12.0);
            for k in 1..=5 {
                let f = f0 * k as f64;
                if f >= rate as f64 / 2.0 {
                    break;
                }
                let phase = rng.range_f64(0.0, std::f64::consts::TAU);
                let w = std::f64::consts::TAU * f / rate as f64;
                for (i, x) in v.iter_mut().skip(start).take(len).enumerate() {
                    *x += (w * i as f64 + phase).sin() * (-(i as f64) / tau).exp() / k as f64;
                }
            }
        }
        start += len;
    }
    unit_rms(v.into_iter().map(|x| x as f32).collect())
}

/// Babble: each voice (unit-RMS normalised) starts at a random offset and loops to `n`
/// samples; the sum is unit RMS.
pub fn babble(voices: &[&[f32]], n: usize, rng: &mut Rng) -> Result<Vec<f32>> {
    if voices.is_empty() || voices.iter().any(|v| v.is_empty()) {
        return Err(AudioError::Invalid("babble: need at least one non-empty voice".into()));
    }
    let mut acc = vec![0.0f64; n];
    for v in voices {
        let norm = unit_rms(v.to_vec());
        let off = rng.below(norm.len() as u64) as usize;
        for (i, a) in acc.iter_mut().enumerate() {
            *a += norm[(off + i) % norm.len()] as f64;
        }
    }
    Ok(unit_rms(acc.into_iter().map(|x| x as f32).collect()))
}

/// Generates `n` samples of `kind` at `rate` Hz.
pub fn generate(kind: &NoiseKind, n: usize, rate: u32, rng: &mut Rng) -> Vec<f32> {
    match kind {
        NoiseKind::White => white(n, rng),
        NoiseKind::Pink => pink(n, rng),
        NoiseKind::Brown => brown(n, rng),
        NoiseKind::Tones(f) => tones(n, rate, f, rng),
        NoiseKind::Music => music(n, rate, rng),
    }
}

/// `clean + g·noise` with `g` chosen so that `10·log10(Σ clean² / Σ (g·noise)²) = snr_db`
/// (computed in f64; `noise` must be at least as long as `clean`, its head is used).
pub fn mix_at_snr(clean: &[f32], noise: &[f32], snr_db: f64) -> Result<Vec<f32>> {
    if noise.len() < clean.len() || clean.is_empty() {
        return Err(AudioError::Invalid(format!(
            "mix_at_snr: {} noise samples for {} clean ones (need at least as many, and some)",
            noise.len(),
            clean.len()
        )));
    }
    let noise = &noise[..clean.len()];
    let ps: f64 = clean.iter().map(|&x| x as f64 * x as f64).sum();
    let pn: f64 = noise.iter().map(|&x| x as f64 * x as f64).sum();
    if ps == 0.0 || pn == 0.0 || !snr_db.is_finite() {
        return Err(AudioError::Invalid(format!(
            "mix_at_snr: clean energy {ps}, noise energy {pn}, SNR {snr_db} dB (need non-zero and finite)"
        )));
    }
    let g = (ps / (pn * 10f64.powf(snr_db / 10.0))).sqrt();
    Ok(clean.iter().zip(noise).map(|(&c, &n)| (c as f64 + g * n as f64) as f32).collect())
}
