//! STFT/iSTFT through libtorch (`Tensor::stft` / `istft`, periodic Hann window, centre
//! padding by reflection), magnitude/phase, a mel filterbank and log-mel spectrograms.
//!
//! The mel filterbank is librosa's `librosa.filters.mel` (Slaney 1998 Auditory Toolbox):
//! [`MelScale::Slaney`] is linear below 1 kHz and logarithmic above (librosa's default,
//! `htk=False`), [`MelScale::Htk`] is `2595·log10(1 + f/700)` (`htk=True`); triangles are
//! area-normalised (`norm="slaney"`, each filter `2 / (f_{i+2} − f_i)`) unless
//! `area_norm` is false. Checked against `tests/fixtures/make_stft_fixtures.py`.
//!
//! Run its tests: `cargo test -p unet-audio --test stft`.

use ndarray::Array2;
use tch::{Device, Kind, Tensor};

use crate::convert::array2_to_tensor;
use crate::error::{AudioError, Result};

/// STFT geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StftConfig {
    /// FFT size (frequency bins `n_fft/2 + 1`).
    pub n_fft: i64,
    /// Hop between frames, in samples.
    pub hop: i64,
    /// Window length (≤ `n_fft`; the Hann window is zero-padded to `n_fft` in the centre).
    pub win: i64,
    /// Pad the signal by `n_fft/2` on both sides (reflection) so frame `t` is centred at `t·hop`.
    pub center: bool,
}

impl Default for StftConfig {
    /// 512-point FFT, hop 128, window 512 (32 ms / 8 ms at 16 kHz), centred.
    fn default() -> Self {
        Self { n_fft: 512, hop: 128, win: 512, center: true }
    }
}

/// A short-time Fourier transform with a fixed periodic Hann window.
#[derive(Debug)]
pub struct Stft {
    /// The geometry.
    pub config: StftConfig,
    window: Tensor,
}

impl Stft {
    /// Validates the geometry (`0 < hop ≤ win ≤ n_fft`).
    pub fn new(config: StftConfig) -> Result<Self> {
        let StftConfig { n_fft, hop, win, .. } = config;
        if !(hop > 0 && hop <= win && win <= n_fft) {
            return Err(AudioError::Invalid(format!(
                "Stft: need 0 < hop ≤ win ≤ n_fft, got hop {hop}, win {win}, n_fft {n_fft}"
            )));
        }
        let window = Tensor::f_hann_window(win, (Kind::Float, Device::Cpu))?;
        Ok(Self { config, window })
    }

    /// Number of frequency bins, `n_fft/2 + 1`.
    pub fn bins(&self) -> i64 {
        self.config.n_fft / 2 + 1
    }

    /// `[..., samples]` float → complex `[..., bins, frames]` (`frames = 1 + samples / hop` when
    /// centred). Centring reflects `n_fft/2` samples at each end (as `torch.stft(center=True)`),
    /// done here before a non-centred transform because libtorch 2.11 rejects the
    /// `align_to_window` flag that tch always passes to the centred overload.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.config;
        let size = x.size();
        let Some((&t, lead)) = size.split_last() else {
            return Err(AudioError::Invalid("Stft: a scalar has no samples".into()));
        };
        let flat = x.f_reshape([-1, t])?;
        let flat = if c.center {
            let p = c.n_fft / 2;
            if t <= p {
                return Err(AudioError::Invalid(format!(
                    "Stft: {t} samples are too few to reflect-pad by n_fft/2 = {p}"
                )));
            }
            flat.f_unsqueeze(1)?.f_pad([p, p], "reflect", None)?.f_squeeze_dim(1)?
        } else {
            flat
        };
        let w = self.window.to_device(x.device());
        let spec = flat.f_stft(c.n_fft, c.hop, c.win, Some(&w), false, true, true, false)?;
        let mut shape = lead.to_vec();
        shape.extend(&spec.size()[1..]);
        Ok(spec.f_reshape(shape)?)
    }

    /// Complex `[..., bins, frames]` → `[..., length]` float.
    pub fn inverse(&self, spec: &Tensor, length: i64) -> Result<Tensor> {
        let c = self.config;
        let w = self.window.to_device(spec.device());
        Ok(spec.f_istft(c.n_fft, c.hop, c.win, Some(&w), c.center, false, true, length, false)?)
    }
}

/// `|X|` of a complex spectrogram.
pub fn magnitude(spec: &Tensor) -> Result<Tensor> {
    Ok(spec.f_abs()?)
}

/// `arg X` in `(-π, π]` of a complex spectrogram.
pub fn phase(spec: &Tensor) -> Result<Tensor> {
    Ok(spec.f_angle()?)
}

/// The complex spectrogram `mag · e^{i·phase}`.
pub fn from_polar(mag: &Tensor, phase: &Tensor) -> Result<Tensor> {
    Ok(Tensor::f_polar(mag, phase)?)
}

/// The mel scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MelScale {
    /// Slaney's Auditory Toolbox: linear (200/3 Hz per mel) below 1 kHz, logarithmic above
    /// (librosa's default).
    #[default]
    Slaney,
    /// HTK: `2595·log10(1 + f/700)`.
    Htk,
}

impl MelScale {
    /// Hz → mel.
    pub fn hz_to_mel(self, f: f64) -> f64 {
        match self {
            MelScale::Htk => 2595.0 * (1.0 + f / 700.0).log10(),
            MelScale::Slaney => {
                let f_sp = 200.0 / 3.0;
                let min_log_mel = 1000.0 / f_sp;
                let logstep = 6.4f64.ln() / 27.0;
                if f >= 1000.0 {
                    min_log_mel + (f / 1000.0).ln() / logstep
                } else {
                    f / f_sp
                }
            }
        }
    }

    /// Mel → Hz.
    pub fn mel_to_hz(self, m: f64) -> f64 {
        match self {
            MelScale::Htk => 700.0 * (10f64.powf(m / 2595.0) - 1.0),
            MelScale::Slaney => {
                let f_sp = 200.0 / 3.0;
                let min_log_mel = 1000.0 / f_sp;
                let logstep = 6.4f64.ln() / 27.0;
                if m >= min_log_mel {
                    1000.0 * (logstep * (m - min_log_mel)).exp()
                } else {
                    f_sp * m
                }
            }
        }
    }
}

/// A mel filterbank's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelConfig {
    /// Sampling rate in Hz.
    pub rate: u32,
    /// FFT size of the spectrogram it applies to.
    pub n_fft: usize,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge in Hz.
    pub f_min: f64,
    /// Highest band edge in Hz (`None`: `rate / 2`).
    pub f_max: Option<f64>,
    /// Mel scale.
    pub scale: MelScale,
    /// Slaney area normalisation (librosa `norm="slaney"`); peak 1 otherwise.
    pub area_norm: bool,
}

impl Default for MelConfig {
    /// 80 Slaney bands over 0-8 kHz of a 512-point FFT at 16 kHz, area-normalised.
    fn default() -> Self {
        Self {
            rate: 16_000,
            n_fft: 512,
            n_mels: 80,
            f_min: 0.0,
            f_max: None,
            scale: MelScale::Slaney,
            area_norm: true,
        }
    }
}

/// The mel filterbank `[n_mels, n_fft/2 + 1]` (librosa's `filters.mel`).
pub fn mel_filterbank(cfg: &MelConfig) -> Result<Array2<f32>> {
    let f_max = cfg.f_max.unwrap_or(cfg.rate as f64 / 2.0);
    if cfg.n_mels == 0 || cfg.n_fft < 2 || !(0.0 <= cfg.f_min && cfg.f_min < f_max) {
        return Err(AudioError::Invalid(format!("mel_filterbank: invalid {cfg:?}")));
    }
    let bins = cfg.n_fft / 2 + 1;
    let freqs: Vec<f64> =
        (0..bins).map(|k| k as f64 * cfg.rate as f64 / cfg.n_fft as f64).collect();
    let (lo, hi) = (cfg.scale.hz_to_mel(cfg.f_min), cfg.scale.hz_to_mel(f_max));
    let n = cfg.n_mels + 2;
    let edges: Vec<f64> =
        (0..n).map(|i| cfg.scale.mel_to_hz(lo + (hi - lo) * i as f64 / (n - 1) as f64)).collect();
    let mut fb = Array2::zeros((cfg.n_mels, bins));
    for m in 0..cfg.n_mels {
        let (d0, d1) = (edges[m + 1] - edges[m], edges[m + 2] - edges[m + 1]);
        let norm = if cfg.area_norm { 2.0 / (edges[m + 2] - edges[m]) } else { 1.0 };
        for (k, &f) in freqs.iter().enumerate() {
            let lower = (f - edges[m]) / d0;
            let upper = (edges[m + 2] - f) / d1;
            fb[[m, k]] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    Ok(fb)
}

/// Power spectrogram → mel → natural log: `ln(max(M·|X|², floor))`.
#[derive(Debug)]
pub struct LogMel {
    /// The STFT.
    pub stft: Stft,
    /// The filterbank `[n_mels, bins]`.
    pub filterbank: Tensor,
    /// Floor before the logarithm (default `1e-10`).
    pub floor: f64,
}

impl LogMel {
    /// Builds both parts; `mel.n_fft` must equal `stft.n_fft`.
    pub fn new(stft: StftConfig, mel: &MelConfig) -> Result<Self> {
        if mel.n_fft as i64 != stft.n_fft {
            return Err(AudioError::Invalid(format!(
                "LogMel: mel n_fft {} differs from STFT n_fft {}",
                mel.n_fft, stft.n_fft
            )));
        }
        Ok(Self {
            stft: Stft::new(stft)?,
            filterbank: array2_to_tensor(&mel_filterbank(mel)?),
            floor: 1e-10,
        })
    }

    /// `[..., samples]` → mel power `[..., n_mels, frames]`.
    pub fn mel(&self, x: &Tensor) -> Result<Tensor> {
        let power = self.stft.forward(x)?.f_abs()?.f_square()?;
        let fb = self.filterbank.to_device(x.device());
        Ok(fb.f_matmul(&power)?)
    }

    /// `[..., samples]` → log-mel `[..., n_mels, frames]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.mel(x)?.f_clamp_min(self.floor)?.f_log()?)
    }
}
