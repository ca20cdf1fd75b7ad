//! Running enhancement models on signals of any length.
//!
//! An [`Enhancer`] maps `[B, 1, input_len(n)]` noisy samples to `[B, 1, n]` clean ones (the
//! output is the centre of the input; the extra samples are context). [`enhance_signal`] cuts
//! a long signal into chunks, gives each its real neighbouring samples as context (zeros
//! beyond the ends), runs the model in batches and concatenates the outputs, so whole files
//! are enhanced without overlap-add; [`enhance_file`] does the same while streaming a WAV
//! file from disk, in memory bounded by a few chunks, resampling to the model's rate and back
//! when the file's rate differs.

use std::path::Path;

use ndarray::{Array2, ArrayView2};
use tch::{Device, Tensor};
use unet_core::arch::{WaveUNet, WaveUNetConfig};
use unet_core::layers::resample::center_crop;

use crate::chunk::{process_file_with_context, ProcessStats};
use crate::error::{AudioError, Result};
use crate::resample::Resampler;

/// A model that enhances the centre of its input.
pub trait Enhancer {
    /// Samples read to produce `n` output samples (`≥ n`; the excess is split around the
    /// output, the larger half after it).
    fn input_len(&self, n: i64) -> i64;
    /// `[B, 1, input_len(n)]` → `[B, 1, n]`.
    fn forward_t(&self, x: &Tensor, n: i64, train: bool) -> Result<Tensor>;
}

impl Enhancer for WaveUNet {
    fn input_len(&self, n: i64) -> i64 {
        wave_input_len(self.config(), n)
    }

    fn forward_t(&self, x: &Tensor, n: i64, train: bool) -> Result<Tensor> {
        Ok(center_crop(&WaveUNet::forward_t(self, x, train)?, &[n])?)
    }
}

/// [`Enhancer::input_len`] of a Wave-U-Net: the valid-convolution geometry with context,
/// else `n` plus `2^L` samples on each side, rounded up to a multiple of `2^L`.
pub fn wave_input_len(cfg: &WaveUNetConfig, n: i64) -> i64 {
    if cfg.context {
        cfg.input_len_for(n)
    } else {
        let m = 1i64 << cfg.levels;
        ((n + 2 * m + m - 1) / m) * m
    }
}

fn window(x: &[f32], start: i64, len: i64) -> Vec<f32> {
    (start..start + len)
        .map(|i| if i >= 0 && (i as usize) < x.len() { x[i as usize] } else { 0.0 })
        .collect()
}

/// Enhances the mono signal `x` chunk by chunk (`chunk` output samples per window, `batch`
/// windows per forward pass) on `device`; the result has `x`'s length.
pub fn enhance_signal(
    model: &dyn Enhancer,
    x: &[f32],
    chunk: usize,
    batch: usize,
    device: Device,
) -> Result<Vec<f32>> {
    if chunk == 0 || batch == 0 {
        return Err(AudioError::Invalid("enhance_signal: chunk and batch must be positive".into()));
    }
    let _guard = tch::no_grad_guard();
    let mut out = Vec::with_capacity(x.len());
    let starts: Vec<usize> = (0..x.len()).step_by(chunk).collect();
    // Full chunks in batches; a shorter last chunk on its own.
    let mut i = 0;
    while i < starts.len() {
        let c = chunk.min(x.len() - starts[i]);
        let mut group = vec![starts[i]];
        while group.len() < batch && i + group.len() < starts.len() {
            let s = starts[i + group.len()];
            if chunk.min(x.len() - s) != c {
                break;
            }
            group.push(s);
        }
        let need = model.input_len(c as i64);
        let left = (need - c as i64) / 2;
        let mut flat = Vec::with_capacity(group.len() * need as usize);
        for &s in &group {
            flat.extend(window(x, s as i64 - left, need));
        }
        let input = Tensor::from_slice(&flat).view([group.len() as i64, 1, need]).to_device(device);
        let y = model.forward_t(&input, c as i64, false)?.to_device(Device::Cpu).contiguous();
        out.extend(Vec::<f32>::try_from(y.flatten(0, -1))?);
        i += group.len();
    }
    Ok(out)
}

/// Enhances the WAV `input` into `output` (same rate, channels and length; each channel on
/// its own) with a model trained at `model_rate`, streaming `chunk` output samples at a time
/// with the model's context read from the file. Memory stays bounded by a few chunks plus
/// context, whatever the file's length.
pub fn enhance_file(
    model: &dyn Enhancer,
    model_rate: u32,
    input: &Path,
    output: &Path,
    chunk: usize,
    device: Device,
) -> Result<ProcessStats> {
    let info = crate::wav::wav_info(input)?;
    let rate = info.rate;
    let (to_model, from_model) = if rate == model_rate {
        (None, None)
    } else {
        (Some(Resampler::new(rate, model_rate)?), Some(Resampler::new(model_rate, rate)?))
    };
    // Context at the file's rate: the model's own context, plus room for the resampler's
    // filter transients, which then fall outside the kept centre.
    let model_chunk = (chunk as u64 * model_rate as u64).div_ceil(rate as u64) as i64;
    let model_ctx = (model.input_len(model_chunk) - model_chunk + 1) / 2;
    // Each resampling direction's filter reaches about 10 samples at the lower rate, so the
    // round trip needs about 20 · rate / model_rate file samples beyond the kept centre.
    let context = if to_model.is_some() {
        let margin = 20 * (rate as usize).div_ceil(model_rate as usize) + 4;
        (model_ctx as u64 * rate as u64).div_ceil(model_rate as u64) as usize + margin.max(64)
    } else {
        model_ctx as usize
    };
    process_file_with_context(input, output, chunk, context, |w: ArrayView2<f32>| {
        let mut out = Array2::zeros((w.nrows(), chunk));
        for (ch, row) in w.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let y = match (&to_model, &from_model) {
                (Some(down), Some(up)) => {
                    let m = down.process(ndarray::ArrayView1::from(&row));
                    let e = enhance_signal(model, &m, m.len(), 1, device)?;
                    up.process(ndarray::ArrayView1::from(&e))
                }
                _ => {
                    // The window holds the model's whole input: run it once.
                    let need = model.input_len(chunk as i64) as usize;
                    let left = (need - chunk) / 2;
                    let x = Tensor::from_slice(&row[context - left..context - left + need])
                        .view([1, 1, need as i64])
                        .to_device(device);
                    let _guard = tch::no_grad_guard();
                    let y = model.forward_t(&x, chunk as i64, false)?.to_device(Device::Cpu);
                    let y = Vec::<f32>::try_from(y.flatten(0, -1))?;
                    let mut padded = vec![0f32; context];
                    padded.extend(y);
                    padded
                }
            };
            for t in 0..chunk {
                out[[ch, t]] = y.get(context + t).copied().unwrap_or(0.0);
            }
        }
        Ok(out)
    })
}

/// A trained enhancer loaded from a checkpoint written by a reproduction.
pub struct LoadedEnhancer {
    /// Model name (`wave-unet`, `attn-wave-unet`, `unetgan`, `deep-unet`).
    pub name: String,
    /// Sampling rate it was trained at.
    pub rate: u32,
    /// The network.
    pub model: Box<dyn Enhancer>,
    /// Its variables (kept alive with it).
    pub vs: tch::nn::VarStore,
}

impl std::fmt::Debug for LoadedEnhancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedEnhancer")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .finish()
    }
}

/// Loads `path` (safetensors with `model`, `config` and `rate` in its metadata, as the
/// reproductions write them) on `device`. Errors name the file and what is missing or wrong.
pub fn load_enhancer(path: &Path, device: Device) -> Result<LoadedEnhancer> {
    let ck = unet_core::checkpoint::read(path)?;
    let meta = |key: &str| {
        ck.metadata.get(key).cloned().ok_or_else(|| {
            AudioError::format(
                path,
                format!(
                    "no `{key}` in the checkpoint metadata (not written by an audio reproduction?)"
                ),
            )
        })
    };
    let name = meta("model")?;
    let rate: u32 = meta("rate")?
        .parse()
        .map_err(|_| AudioError::format(path, "`rate` in the metadata is not a number"))?;
    let config = meta("config")?;
    let bad_config = |e: serde_json::Error| AudioError::format(path, format!("bad `config`: {e}"));
    let mut vs = tch::nn::VarStore::new(device);
    let model: Box<dyn Enhancer> = match name.as_str() {
        "wave-unet" | "attn-wave-unet" | "unetgan" => {
            let cfg: WaveUNetConfig = serde_json::from_str(&config).map_err(bad_config)?;
            Box::new(WaveUNet::new(&vs.root(), &cfg)?)
        }
        "deep-unet" => {
            let cfg: crate::models::deep_unet::SpectrogramConfig =
                serde_json::from_str(&config).map_err(bad_config)?;
            Box::new(crate::models::deep_unet::SpectrogramUNet::new(&vs.root(), &cfg)?)
        }
        other => {
            return Err(AudioError::format(
                path,
                format!("unknown model `{other}` (wave-unet, attn-wave-unet, unetgan, deep-unet)"),
            ))
        }
    };
    unet_core::checkpoint::assign_strict(&mut vs, &ck.tensors, path, false)?;
    Ok(LoadedEnhancer { name, rate, model, vs })
}
