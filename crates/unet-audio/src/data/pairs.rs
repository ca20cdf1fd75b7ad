//! Training and evaluation pairs for enhancement and separation: clean speech plus noise at a
//! chosen SNR.
//!
//! * [`PairSampler`] draws training batches on the fly: a random crop of a random training
//!   utterance (crops that are nearly silent are redrawn), a noise type drawn from
//!   [`Noise`], an SNR uniform in a range, a random gain in [0.3, 1], and a scale so that the
//!   mixture peak stays below 0.99 (both signals scaled alike).
//! * [`eval_set`] builds a fixed list of mixtures of whole held-out utterances with every
//!   requested noise type at every requested SNR, from a seed.
//!
//! Babble for training is made of training voices, for evaluation of held-out voices, so no
//! speaker in the noise was heard in training.

use tch::{Kind, Tensor};
use unet_core::rng::Rng;

use super::noise::{babble, generate, mix_at_snr, NoiseKind};
use crate::error::{AudioError, Result};

/// A noise type of the pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Noise {
    /// White Gaussian.
    White,
    /// 1/f.
    Pink,
    /// 1/f².
    Brown,
    /// Three to six other voices.
    Babble,
    /// Plucked notes and chords ([`super::noise::music`]).
    Music,
}

impl Noise {
    /// Every type.
    pub const ALL: [Noise; 5] =
        [Noise::White, Noise::Pink, Noise::Brown, Noise::Babble, Noise::Music];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Noise::White => "white",
            Noise::Pink => "pink",
            Noise::Brown => "brown",
            Noise::Babble => "babble",
            Noise::Music => "music",
        }
    }

    /// `n` unit-RMS samples of this noise at `rate`; babble from `voices`.
    pub fn samples(
        self,
        n: usize,
        rate: u32,
        voices: &[&[f32]],
        rng: &mut Rng,
    ) -> Result<Vec<f32>> {
        let kind = match self {
            Noise::White => NoiseKind::White,
            Noise::Pink => NoiseKind::Pink,
            Noise::Brown => NoiseKind::Brown,
            Noise::Music => NoiseKind::Music,
            Noise::Babble => {
                if voices.is_empty() {
                    return Err(AudioError::Invalid("babble needs at least one voice".into()));
                }
                let k = 3 + rng.below(4) as usize;
                let mut picked = Vec::with_capacity(k);
                for _ in 0..k.min(voices.len()) {
                    picked.push(voices[rng.below(voices.len() as u64) as usize]);
                }
                return babble(&picked, n, rng);
            }
        };
        Ok(generate(&kind, n, rate, rng))
    }
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len().max(1) as f64
}

/// Scales `clean` and `noisy` alike by a gain and so that `max |noisy| ≤ 0.99`.
fn level(clean: &mut [f32], noisy: &mut [f32], gain: f64) {
    let peak = noisy.iter().fold(0f32, |m, &v| m.max(v.abs())) as f64 * gain;
    let g = if peak > 0.99 { gain * 0.99 / peak } else { gain };
    for v in clean.iter_mut().chain(noisy.iter_mut()) {
        *v = (*v as f64 * g) as f32;
    }
}

/// Draws training pairs; see the module docs.
#[derive(Debug)]
pub struct PairSampler {
    clean: Vec<Vec<f32>>,
    voices: Vec<Vec<f32>>,
    rate: u32,
    snr_db: (f64, f64),
    noises: Vec<Noise>,
    rng: Rng,
}

impl PairSampler {
    /// Pairs from `clean` utterances (and babble from `voices`, usually the same set) at
    /// `rate`, SNR uniform in `snr_db`, noise types uniform over `noises`.
    pub fn new(
        clean: Vec<Vec<f32>>,
        voices: Vec<Vec<f32>>,
        rate: u32,
        snr_db: (f64, f64),
        noises: &[Noise],
        seed: u64,
    ) -> Result<Self> {
        let mut voices = voices;
        voices.retain(|v| !v.is_empty());
        if clean.iter().all(|c| c.is_empty()) || noises.is_empty() {
            return Err(AudioError::Invalid(
                "PairSampler: need at least one non-empty utterance and one noise type".into(),
            ));
        }
        if noises.contains(&Noise::Babble) && voices.is_empty() {
            return Err(AudioError::Invalid("PairSampler: babble needs voices".into()));
        }
        if !(snr_db.0 <= snr_db.1 && snr_db.0.is_finite() && snr_db.1.is_finite()) {
            return Err(AudioError::Invalid(format!("PairSampler: bad SNR range {snr_db:?}")));
        }
        Ok(Self { clean, voices, rate, snr_db, noises: noises.to_vec(), rng: Rng::new(seed) })
    }

    /// Restarts the random stream from `seed` (so a resumed training run sees the same pairs).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    /// One pair of `len` samples: (noisy, clean, noise type, SNR).
    pub fn pair(&mut self, len: usize) -> Result<(Vec<f32>, Vec<f32>, Noise, f64)> {
        let mut crop = vec![0f32; len];
        for attempt in 0..50 {
            let u = &self.clean[self.rng.below(self.clean.len() as u64) as usize];
            if u.is_empty() {
                continue;
            }
            crop.iter_mut().for_each(|v| *v = 0.0);
            if u.len() >= len {
                let off = self.rng.below((u.len() - len + 1) as u64) as usize;
                crop.copy_from_slice(&u[off..off + len]);
            } else {
                let off = self.rng.below((len - u.len() + 1) as u64) as usize;
                crop[off..off + u.len()].copy_from_slice(u);
            }
            // Mostly speech: at least a tenth of the utterance's mean power (any crop after
            // many attempts, as long as it is not silent).
            let mean = energy(u);
            if energy(&crop) > 0.1 * mean || (attempt > 40 && energy(&crop) > 0.0) {
                break;
            }
        }
        if energy(&crop) == 0.0 {
            return Err(AudioError::Invalid("PairSampler: only silent crops found".into()));
        }
        let kind = self.noises[self.rng.below(self.noises.len() as u64) as usize];
        let voices: Vec<&[f32]> = match kind {
            Noise::Babble => self.voices.iter().map(|v| v.as_slice()).collect(),
            _ => Vec::new(),
        };
        let noise = kind.samples(len, self.rate, &voices, &mut self.rng)?;
        let snr = self.rng.range_f64(self.snr_db.0, self.snr_db.1);
        let mut noisy = mix_at_snr(&crop, &noise, snr)?;
        let gain = self.rng.range_f64(0.3, 1.0);
        level(&mut crop, &mut noisy, gain);
        Ok((noisy, crop, kind, snr))
    }

    /// A batch `(noisy, clean)`, each `[b, 1, len]`.
    pub fn batch(&mut self, b: usize, len: usize) -> Result<(Tensor, Tensor)> {
        let (mut xs, mut ys) = (Vec::with_capacity(b * len), Vec::with_capacity(b * len));
        for _ in 0..b {
            let (x, y, _, _) = self.pair(len)?;
            xs.extend(x);
            ys.extend(y);
        }
        let shape = [b as i64, 1, len as i64];
        Ok((Tensor::from_slice(&xs).view(shape), Tensor::from_slice(&ys).view(shape)))
    }
}

/// One evaluation mixture.
#[derive(Debug, Clone)]
pub struct EvalItem {
    /// Utterance name.
    pub utterance: String,
    /// Noise type.
    pub noise: Noise,
    /// SNR of the mixture in dB.
    pub snr_db: f64,
    /// Clean reference (levelled like the mixture).
    pub clean: Vec<f32>,
    /// The mixture.
    pub noisy: Vec<f32>,
}

/// Every utterance of `clean` (name, samples) mixed with every noise type at every SNR;
/// babble from `voices`. Deterministic for a seed.
pub fn eval_set(
    clean: &[(String, Vec<f32>)],
    voices: &[&[f32]],
    rate: u32,
    noises: &[Noise],
    snrs_db: &[f64],
    seed: u64,
) -> Result<Vec<EvalItem>> {
    let mut rng = Rng::new(seed);
    let voices: Vec<&[f32]> = voices.iter().copied().filter(|v| !v.is_empty()).collect();
    let voices = voices.as_slice();
    let mut out = Vec::new();
    for (name, x) in clean {
        for &noise in noises {
            for &snr in snrs_db {
                let n = noise.samples(x.len(), rate, voices, &mut rng)?;
                let mut noisy = mix_at_snr(x, &n, snr)?;
                let mut c = x.clone();
                level(&mut c, &mut noisy, 0.7);
                out.push(EvalItem { utterance: name.clone(), noise, snr_db: snr, clean: c, noisy });
            }
        }
    }
    Ok(out)
}

/// `[1, 1, n]` tensor of a signal.
pub fn signal_tensor(x: &[f32]) -> Tensor {
    Tensor::from_slice(x).view([1, 1, x.len() as i64]).to_kind(Kind::Float)
}
