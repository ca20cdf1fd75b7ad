//! Band-limited resampling between arbitrary integer rates by a rational-ratio polyphase FIR.
//!
//! The ratio `to / from` is reduced to `L / M` (`g = gcd(from, to)`, `L = to / g`,
//! `M = from / g`). Conceptually the signal is upsampled by `L` (zeros inserted), low-pass
//! filtered and decimated by `M`; only the non-zero products are computed (polyphase form).
//!
//! The filter is the design of `scipy.signal.resample_poly` with its defaults, so the two agree
//! to float precision (checked by `tests/resample.rs` against a fixture from
//! `tests/fixtures/make_resample_fixtures.py`):
//!
//! * a windowed sinc with `2·10·max(L, M) + 1` taps (half length `10·max(L, M)` at the
//!   upsampled rate, i.e. ten zero-crossings of the sinc each side);
//! * cut-off at the lower of the two Nyquist frequencies, `fc = 1 / max(L, M)` of the upsampled
//!   Nyquist;
//! * a Kaiser window with `β = 5` (about 50 dB stop-band attenuation);
//! * normalised to unit DC gain, times `L` to make up for the inserted zeros;
//! * output sample `k` sits at input time `k·M/L` (no delay): `y[k] = Σₙ x[n]·h[k·M − n·L + half]`,
//!   with zeros outside the signal. The output has `ceil(N·L/M)` frames.
//!
//! Run its tests: `cargo test -p unet-audio --test resample`.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::error::{AudioError, Result};
use crate::wav::Audio;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// A rational-ratio resampler; build once per rate pair and reuse.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Upsampling factor `L`.
    pub up: usize,
    /// Downsampling factor `M`.
    pub down: usize,
    half: usize,
    taps: Vec<f64>,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both positive).
    pub fn new(from: u32, to: u32) -> Result<Self> {
        if from == 0 || to == 0 {
            return Err(AudioError::Invalid(format!(
                "resample: rates must be positive (from {from} Hz to {to} Hz)"
            )));
        }
        let g = gcd(from as u64, to as u64);
        let (up, down) = ((to as u64 / g) as usize, (from as u64 / g) as usize);
        let max = up.max(down);
        let half = 10 * max;
        let n = 2 * half + 1;
        let fc = 1.0 / max as f64;
        let beta = 5.0;
        let i0b = bessel_i0(beta);
        let mut taps: Vec<f64> = (0..n)
            .map(|j| {
                let m = j as f64 - half as f64;
                let x = fc * m;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let r = 2.0 * j as f64 / (n - 1) as f64 - 1.0;
                let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0b;
                fc * sinc * w
            })
            .collect();
        let sum: f64 = taps.iter().sum();
        for t in &mut taps {
            *t *= up as f64 / sum;
        }
        Ok(Self { up, down, half, taps })
    }

    /// The filter taps at the upsampled rate (`2·half + 1` of them).
    pub fn taps(&self) -> &[f64] {
        &self.taps
    }

    /// Output length for `n` input frames: `ceil(n·L/M)`.
    pub fn output_len(&self, n: usize) -> usize {
        (n * self.up).div_ceil(self.down)
    }

    /// Resamples one channel.
    pub fn process(&self, x: ArrayView1<f32>) -> Vec<f32> {
        if self.up == 1 && self.down == 1 {
            return x.to_vec();
        }
        let n_in = x.len() as i64;
        let (up, down, half) = (self.up as i64, self.down as i64, self.half as i64);
        let xs = x.as_slice().map(|s| s.to_vec()).unwrap_or_else(|| x.to_vec());
        (0..self.output_len(x.len()) as i64)
            .map(|k| {
                let t = k * down + half; // filter index of input 0 is t, of input n is t − n·L
                let n_lo =
                    (t - 2 * half).div_euclid(up) + i64::from((t - 2 * half).rem_euclid(up) != 0);
                let n_lo = n_lo.max(0);
                let n_hi = (t / up).min(n_in - 1);
                let mut acc = 0.0f64;
                let mut n = n_lo;
                while n <= n_hi {
                    acc += xs[n as usize] as f64 * self.taps[(t - n * up) as usize];
                    n += 1;
                }
                acc as f32
            })
            .collect()
    }

    /// Resamples every channel of `[channels, frames]`.
    pub fn process_channels(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let n_out = self.output_len(x.ncols());
        let mut out = Array2::zeros((x.nrows(), n_out));
        for (row, mut dst) in x.rows().into_iter().zip(out.rows_mut()) {
            dst.assign(&ArrayView1::from(&self.process(row)));
        }
        out
    }
}

/// Resamples `audio` to `rate` Hz (a copy when the rate is already `rate`).
pub fn resample(audio: &Audio, rate: u32) -> Result<Audio> {
    if audio.rate == rate {
        return Ok(audio.clone());
    }
    let r = Resampler::new(audio.rate, rate)?;
    Audio::new(r.process_channels(audio.samples.view()), rate)
}
