//! What the audio reproductions share: the speech split (synthetic speech to train on, real
//! recordings to test on), training of an [`Enhancer`] by regression with the core trainer,
//! scoring (SNR, SSNR, SI-SDR of noisy input and outputs against the clean reference), tables,
//! and the listening artefacts (WAVs and a spectrogram PNG).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::ArrayView1;
use tch::{nn, Device, Kind};
use unet_core::report::markdown_table;
use unet_core::trainer::{Trainer, TrainerConfig};

use crate::data::pairs::{EvalItem, PairSampler};
use crate::data::speech::SpeechSet;
use crate::enhance::Enhancer;
use crate::error::{AudioError, Result};
use crate::metrics::{seg_snr, si_sdr, snr};
use crate::spectrogram::write_spectrograms;
use crate::wav::{write_wav, Audio, WavFormat};
use unet_core::layers::resample::center_crop;

/// Held-out synthesised verses (their voices make the evaluation babble).
pub const TEST_VERSES: usize = 6;

/// The speech of a reproduction at one rate.
#[derive(Debug)]
pub struct SpeechData {
    /// Sampling rate.
    pub rate: u32,
    /// Synthesised training utterances (verses 1..=25, all eight voices).
    pub train: Vec<Vec<f32>>,
    /// Real clean recordings (codec2), for testing only: (name, samples).
    pub test: Vec<(String, Vec<f32>)>,
    /// Held-out synthesised utterances (verses 26..=31), the voices of evaluation babble.
    pub test_voices: Vec<Vec<f32>>,
    /// Where the speech came from.
    pub source: String,
}

impl SpeechData {
    /// Loads `cache` (or the embedded sample) at `rate`: trains on synthesised speech, tests
    /// on every clean real recording (never heard in training).
    pub fn load(cache: Option<&Path>, rate: u32) -> Result<Self> {
        let set = SpeechSet::load(cache, rate)?;
        let (mut train, mut test, mut test_voices) = (Vec::new(), Vec::new(), Vec::new());
        for u in set.clean() {
            let x = u.audio.mono_samples();
            match (u.recorded, u.verse) {
                (true, _) => test.push((u.name.clone(), x)),
                (false, Some(v)) if v + TEST_VERSES > 31 => test_voices.push(x),
                (false, _) => train.push(x),
            }
        }
        if train.is_empty() || test.is_empty() {
            return Err(AudioError::Invalid(format!(
                "speech set {}: need synthesised and recorded clean speech",
                set.source
            )));
        }
        if test_voices.is_empty() {
            // The embedded sample holds verse 1 only: babble from the training voices.
            test_voices = train.clone();
        }
        Ok(Self { rate, train, test, test_voices, source: set.source })
    }

    /// Seconds of training speech.
    pub fn train_seconds(&self) -> f64 {
        self.train.iter().map(|x| x.len()).sum::<usize>() as f64 / self.rate as f64
    }

    /// Seconds of test speech.
    pub fn test_seconds(&self) -> f64 {
        self.test.iter().map(|x| x.1.len()).sum::<usize>() as f64 / self.rate as f64
    }
}

/// How to train an enhancer by regression.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    /// Optimiser steps.
    pub steps: usize,
    /// Pairs per batch.
    pub batch: usize,
    /// Output samples per pair.
    pub out_len: i64,
    /// Peak learning rate (Adam, warm-up 5 %, cosine to 10 %).
    pub lr: f64,
    /// Seed (model init, data).
    pub seed: u64,
    /// Trainer folder (checkpoint, metrics.jsonl, loss.png).
    pub dir: PathBuf,
    /// Show a progress bar.
    pub progress: bool,
}

/// Trains `model` (variables in `vs`) to map noisy to clean with the MSE of the official
/// Wave-U-Net code. Resumes from `spec.dir` when a checkpoint is there (the pair sampler is
/// reseeded per step, so a resumed run sees the same batches). Returns the loss curve and the
/// seconds spent.
pub fn train_regression(
    vs: &mut nn::VarStore,
    model: &dyn Enhancer,
    sampler: &mut PairSampler,
    spec: &TrainSpec,
) -> Result<(Vec<(f64, f64)>, f64)> {
    let cfg = TrainerConfig {
        lr: spec.lr,
        optimizer: unet_core::trainer::OptimizerKind::Adam,
        warmup_steps: spec.steps / 20,
        total_steps: spec.steps,
        grad_clip: Some(1.0),
        checkpoint_every: 100,
        seed: spec.seed,
        out_dir: spec.dir.clone(),
        progress: spec.progress,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(vs, cfg)?;
    trainer.resume(vs)?;
    let device = vs.device();
    let need = model.input_len(spec.out_len);
    let t0 = Instant::now();
    trainer.run(vs, |step| {
        sampler.reseed(spec.seed.wrapping_mul(1_000_003).wrapping_add(step as u64));
        let mut loss = || -> Result<tch::Tensor> {
            let (noisy, clean) = sampler.batch(spec.batch, need as usize)?;
            let target = center_crop(&clean, &[spec.out_len])?.to_device(device);
            let y = model.forward_t(&noisy.to_device(device), spec.out_len, true)?;
            Ok((y - target).square().mean(Kind::Float))
        };
        loss().map_err(|e| unet_core::Error::config("training step", step, e.to_string()))
    })?;
    Ok((trainer.losses().to_vec(), t0.elapsed().as_secs_f64()))
}

/// SNR, SSNR and SI-SDR of an estimate (dB).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Quality {
    /// SNR.
    pub snr: f64,
    /// Segmental SNR (256-sample frames, clamped to [−10, 35] dB).
    pub ssnr: f64,
    /// Scale-invariant SDR.
    pub si_sdr: f64,
}

impl Quality {
    /// Scores `estimate` against `reference` (same length).
    pub fn of(reference: &[f32], estimate: &[f32]) -> Result<Self> {
        let (r, e) = (ArrayView1::from(reference), ArrayView1::from(estimate));
        Ok(Self { snr: snr(r, e)?, ssnr: seg_snr(r, e)?, si_sdr: si_sdr(r, e)? })
    }

    fn mean(qs: &[Quality]) -> Quality {
        let n = qs.len().max(1) as f64;
        Quality {
            snr: qs.iter().map(|q| q.snr).sum::<f64>() / n,
            ssnr: qs.iter().map(|q| q.ssnr).sum::<f64>() / n,
            si_sdr: qs.iter().map(|q| q.si_sdr).sum::<f64>() / n,
        }
    }
}

/// One evaluation mixture's scores for every method (`[0]` is the noisy input).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemScores {
    /// Utterance.
    pub utterance: String,
    /// Noise type.
    pub noise: &'static str,
    /// Input SNR (dB).
    pub snr_db: f64,
    /// Per method, in the order of the method labels.
    pub quality: Vec<Quality>,
}

/// Scores of every method on every item: `outputs[m][i]` is method `m`'s output for item `i`;
/// the noisy input is prepended as method 0.
pub fn score(items: &[EvalItem], outputs: &[Vec<Vec<f32>>]) -> Result<Vec<ItemScores>> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut quality = vec![Quality::of(&it.clean, &it.noisy)?];
            for m in outputs {
                quality.push(Quality::of(&it.clean, &m[i])?);
            }
            Ok(ItemScores {
                utterance: it.utterance.clone(),
                noise: it.noise.name(),
                snr_db: it.snr_db,
                quality,
            })
        })
        .collect()
}

/// Mean quality per method over the items selected by `keep`.
pub fn mean_quality(scores: &[ItemScores], keep: impl Fn(&ItemScores) -> bool) -> Vec<Quality> {
    let picked: Vec<&ItemScores> = scores.iter().filter(|s| keep(s)).collect();
    let methods = scores.first().map(|s| s.quality.len()).unwrap_or(0);
    (0..methods)
        .map(|m| Quality::mean(&picked.iter().map(|s| s.quality[m]).collect::<Vec<_>>()))
        .collect()
}

/// Markdown tables: overall means (with improvements over the noisy input), then SI-SDR and
/// SSNR improvement by input SNR and by noise type.
pub fn quality_tables(labels: &[String], scores: &[ItemScores]) -> String {
    let all = mean_quality(scores, |_| true);
    let mut rows = Vec::new();
    for (m, label) in labels.iter().enumerate() {
        let q = all[m];
        let d = |a: f64, b: f64| if m == 0 { "—".to_string() } else { format!("{:+.2}", a - b) };
        rows.push(vec![
            label.clone(),
            format!("{:.2}", q.snr),
            format!("{:.2}", q.ssnr),
            format!("{:.2}", q.si_sdr),
            d(q.snr, all[0].snr),
            d(q.ssnr, all[0].ssnr),
            d(q.si_sdr, all[0].si_sdr),
        ]);
    }
    let overall =
        markdown_table(&["method", "SNR", "SSNR", "SI-SDR", "ΔSNR", "ΔSSNR", "ΔSI-SDR"], &rows);
    let mut snrs: Vec<f64> = scores.iter().map(|s| s.snr_db).collect();
    snrs.sort_by(f64::total_cmp);
    snrs.dedup();
    let mut noises: Vec<&str> = scores.iter().map(|s| s.noise).collect();
    noises.sort();
    noises.dedup();
    let breakdown = |groups: Vec<(String, Vec<Quality>)>, title: &str| {
        let mut header = vec![title.to_string()];
        for l in labels.iter().skip(1) {
            header.push(format!("{l}: ΔSI-SDR / ΔSSNR"));
        }
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|(g, q)| {
                let mut r = vec![g.clone()];
                for m in 1..labels.len() {
                    r.push(format!(
                        "{:+.2} / {:+.2}",
                        q[m].si_sdr - q[0].si_sdr,
                        q[m].ssnr - q[0].ssnr
                    ));
                }
                r
            })
            .collect();
        let h: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
        markdown_table(&h, &rows)
    };
    let by_snr = breakdown(
        snrs.iter()
            .map(|&s| (format!("{s:+.0} dB"), mean_quality(scores, |x| x.snr_db == s)))
            .collect(),
        "input SNR",
    );
    let by_noise = breakdown(
        noises.iter().map(|&n| (n.to_string(), mean_quality(scores, |x| x.noise == n))).collect(),
        "noise",
    );
    format!(
        "Means over {} mixtures (dB):\n\n{overall}\nImprovement over the noisy input by input SNR:\n\n{by_snr}\nBy noise type:\n\n{by_noise}",
        scores.len()
    )
}

/// Writes `<stem>_noisy.wav`, one WAV per method output, `<stem>_clean.wav` and
/// `<stem>_spectrograms.png` (panels in that order) for item `i`; returns the file names.
pub fn write_example(
    dir: &Path,
    stem: &str,
    item: &EvalItem,
    outputs: &[(String, &[f32])],
    rate: u32,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut panels: Vec<&[f32]> = vec![&item.noisy];
    let mut write = |name: String, x: &[f32]| -> Result<()> {
        write_wav(dir.join(&name), &Audio::from_mono(x.to_vec(), rate)?, WavFormat::Int16)?;
        names.push(name);
        Ok(())
    };
    write(format!("{stem}_noisy.wav"), &item.noisy)?;
    for (label, x) in outputs {
        write(format!("{stem}_{label}.wav"), x)?;
        panels.push(x);
    }
    write(format!("{stem}_clean.wav"), &item.clean)?;
    panels.push(&item.clean);
    let png = format!("{stem}_spectrograms.png");
    write_spectrograms(&dir.join(&png), &panels, 256)?;
    names.push(png);
    Ok(names)
}

/// The report's "Listen" entries: for each example, links to its WAVs and its spectrogram PNG.
pub fn listen_markdown(examples: &[(String, Vec<String>)]) -> String {
    examples
        .iter()
        .map(|(stem, files)| {
            let wavs = files
                .iter()
                .filter(|f| f.ends_with(".wav"))
                .map(|f| format!("[`{f}`]({f})"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("**{stem}**: {wavs}\n\n![spectrograms of {stem}]({stem}_spectrograms.png)\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Enhances every item (whole utterances, chunked with real context).
pub fn enhance_items(
    model: &dyn Enhancer,
    items: &[EvalItem],
    chunk: usize,
    device: Device,
) -> Result<Vec<Vec<f32>>> {
    items
        .iter()
        .map(|it| crate::enhance::enhance_signal(model, &it.noisy, chunk, 8, device))
        .collect()
}
