//! `wave-unet` (Stoller et al. 2018; Macartney & Weyde 2018) and `attn-wave-unet` (Giri et
//! al. 2019): time-domain speech enhancement, trained on synthesised speech mixed with noise
//! at 0-10 dB and tested on real recorded speech (codec2) mixed with held-out noise.
//!
//! `attn-wave-unet` trains the attention-gated network and the plain one from the same seed
//! for the same steps, so the report compares them at equal steps.
//!
//! Run: `cargo xtask reproduce wave-unet` / `cargo xtask reproduce attn-wave-unet`.

use std::collections::HashMap;
use std::path::PathBuf;

use tch::{nn, Device};
use unet_core::arch::{WaveUNet, WaveUNetConfig};
use unet_core::report::{plot_lines, smooth, thousands, Series};
use unet_core::{checkpoint, parameter_count};

use super::harness::{
    enhance_items, listen_markdown, mean_quality, quality_tables, score, train_regression,
    write_example, ItemScores, SpeechData, TrainSpec,
};
use crate::data::pairs::{eval_set, Noise, PairSampler};
use crate::error::{AudioError, Result};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Plain Wave-U-Net.
    Plain,
    /// Attention-gated skips, compared with the plain one.
    Attention,
}

impl Variant {
    /// Model name in the registry.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "wave-unet",
            Variant::Attention => "attn-wave-unet",
        }
    }
}

/// Options of the reproduction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Data cache (`speech/`).
    pub data_cache: Option<PathBuf>,
    /// Sampling rate of the models (8 kHz: the rate of the real recordings).
    pub rate: u32,
    /// Steps of each model.
    pub steps: usize,
    /// Pairs per batch.
    pub batch: usize,
    /// Output samples per training pair (the input adds the valid-convolution context).
    pub out_len: i64,
    /// Levels `L` of the small model.
    pub levels: usize,
    /// Filters per level `Fc` of the small model.
    pub filters: i64,
    /// Peak learning rate.
    pub lr: f64,
    /// Training SNR range (dB).
    pub train_snr: (f64, f64),
    /// Evaluation SNRs (dB).
    pub eval_snrs: Vec<f64>,
    /// Device.
    pub device: Device,
    /// Seed.
    pub seed: u64,
    /// Progress bars.
    pub progress: bool,
}

impl RunOptions {
    /// Defaults for `variant` (output folder `target/reproduce/<name>`).
    pub fn new(variant: Variant) -> Self {
        Self {
            out: PathBuf::from("target/reproduce").join(variant.name()),
            data_cache: crate::data::speech::default_cache_dir(),
            rate: 8000,
            steps: 1000,
            batch: 16,
            out_len: 4096,
            levels: 8,
            filters: 16,
            lr: 5e-4,
            train_snr: (0.0, 10.0),
            eval_snrs: vec![0.0, 5.0, 10.0],
            device: Device::Cpu,
            seed: 2018,
            progress: true,
        }
    }
}

/// The small network of the run.
pub fn small_config(opts: &RunOptions, attention: bool) -> WaveUNetConfig {
    WaveUNetConfig {
        levels: opts.levels,
        filters_per_level: opts.filters,
        skip_attention: attention.then_some(0),
        ..WaveUNetConfig::stoller2018()
    }
}

/// Parameter counts of the full-size presets: (Stoller mono, Macartney 2 outputs, Giri).
pub fn full_params() -> Result<(i64, i64, i64)> {
    let count = |cfg: WaveUNetConfig| -> Result<i64> {
        let vs = nn::VarStore::new(Device::Cpu);
        WaveUNet::new(&vs.root(), &cfg)?;
        Ok(parameter_count(&vs))
    };
    Ok((
        count(WaveUNetConfig::stoller2018())?,
        count(WaveUNetConfig::macartney2018())?,
        count(WaveUNetConfig::giri2019())?,
    ))
}

/// One trained model's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelRun {
    /// Label in tables.
    pub label: String,
    /// Parameters of the small model.
    pub params: i64,
    /// Training seconds (this process; 0 when the run was already complete).
    pub train_seconds: f64,
    /// (step, loss).
    pub losses: Vec<(f64, f64)>,
}

/// Measured results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Full-size counts (Stoller mono, Macartney, Giri).
    pub full_params: (i64, i64, i64),
    /// Trained models, in table order after the noisy input.
    pub models: Vec<ModelRun>,
    /// Per-mixture scores (method 0: noisy input).
    pub scores: Vec<ItemScores>,
    /// Seconds of training / test speech.
    pub speech_seconds: (f64, f64),
    /// Enhancement speed: seconds of audio per second of compute, per model.
    pub realtime_factor: Vec<f64>,
}

/// Trains the model(s) of `variant`, scores them on real speech and writes the report.
pub fn run(variant: Variant, opts: &RunOptions) -> Result<RunResult> {
    if opts.eval_snrs.is_empty() || opts.steps == 0 || opts.batch == 0 {
        return Err(AudioError::Invalid(
            "wave-unet: need evaluation SNRs, steps and a batch".into(),
        ));
    }
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|e| AudioError::io(out, e))?;
    let data = SpeechData::load(opts.data_cache.as_deref(), opts.rate)?;
    let voices: Vec<&[f32]> = data.test_voices.iter().map(|v| v.as_slice()).collect();
    let items =
        eval_set(&data.test, &voices, opts.rate, &Noise::ALL, &opts.eval_snrs, opts.seed + 7)?;
    let eval_seconds: f64 =
        items.iter().map(|i| i.noisy.len()).sum::<usize>() as f64 / opts.rate as f64;

    let kinds: Vec<bool> = match variant {
        Variant::Plain => vec![false],
        Variant::Attention => vec![true, false],
    };
    let mut models = Vec::new();
    let mut outputs = Vec::new();
    let mut realtime_factor = Vec::new();
    for attention in kinds {
        let label = if attention { "attn-wave-unet" } else { "wave-unet" };
        let cfg = small_config(opts, attention);
        tch::manual_seed(opts.seed as i64);
        let mut vs = nn::VarStore::new(opts.device);
        let net = WaveUNet::new(&vs.root(), &cfg)?;
        let mut sampler = PairSampler::new(
            data.train.clone(),
            data.train.clone(),
            opts.rate,
            opts.train_snr,
            &Noise::ALL,
            opts.seed,
        )?;
        let spec = TrainSpec {
            steps: opts.steps,
            batch: opts.batch,
            out_len: opts.out_len,
            lr: opts.lr,
            seed: opts.seed,
            dir: out.join(label),
            progress: opts.progress,
        };
        let (losses, train_seconds) = train_regression(&mut vs, &net, &mut sampler, &spec)?;
        let meta = HashMap::from([
            ("model".to_string(), label.to_string()),
            ("config".to_string(), serde_json::to_string(&cfg).unwrap_or_default()),
            ("rate".to_string(), opts.rate.to_string()),
        ]);
        checkpoint::save(&vs, out.join(format!("{label}.safetensors")), Some(meta))?;
        let t0 = std::time::Instant::now();
        outputs.push(enhance_items(&net, &items, 16_384, opts.device)?);
        realtime_factor.push(eval_seconds / t0.elapsed().as_secs_f64().max(1e-9));
        models.push(ModelRun {
            label: label.to_string(),
            params: parameter_count(&vs),
            train_seconds,
            losses,
        });
    }
    let scores = score(&items, &outputs)?;

    // Artefacts: one mixture per noise type at 5 dB (or the first SNR) of the first recording.
    let snr = if opts.eval_snrs.contains(&5.0) { 5.0 } else { opts.eval_snrs[0] };
    let mut examples = Vec::new();
    for noise in [Noise::Babble, Noise::White, Noise::Music] {
        if let Some(i) = items.iter().position(|it| it.noise == noise && it.snr_db == snr) {
            let outs: Vec<(String, &[f32])> = models
                .iter()
                .zip(&outputs)
                .map(|(m, o)| (m.label.clone(), o[i].as_slice()))
                .collect();
            let stem = format!("{}_{}_{snr:.0}dB", items[i].utterance, noise.name());
            examples.push((stem.clone(), write_example(out, &stem, &items[i], &outs, opts.rate)?));
        }
    }
    let series: Vec<Series> = models
        .iter()
        .map(|m| Series::new(format!("{} (EMA 0.05)", m.label), smooth(&m.losses, 0.05)))
        .collect();
    plot_lines(&out.join("loss.png"), "training MSE", "step", "MSE", &series, true)?;

    let result = RunResult {
        full_params: full_params()?,
        models,
        scores,
        speech_seconds: (data.train_seconds(), data.test_seconds()),
        realtime_factor,
    };
    write_report(variant, opts, &data, &result, &examples)?;
    Ok(result)
}

fn write_report(
    variant: Variant,
    opts: &RunOptions,
    data: &SpeechData,
    r: &RunResult,
    examples: &[(String, Vec<String>)],
) -> Result<()> {
    let mut labels = vec!["noisy input".to_string()];
    labels.extend(r.models.iter().map(|m| m.label.clone()));
    let tables = quality_tables(&labels, &r.scores);
    let all = mean_quality(&r.scores, |_| true);
    let verdict = r
        .models
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let q = all[k + 1];
            format!(
                "- `{}`: SI-SDR {:+.2} dB, SSNR {:+.2} dB, SNR {:+.2} dB over the noisy input.",
                m.label,
                q.si_sdr - all[0].si_sdr,
                q.ssnr - all[0].ssnr,
                q.snr - all[0].snr
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let compare = if r.models.len() == 2 {
        let (a, p) = (all[1], all[2]);
        format!(
            "\nAt equal steps ({} each, same seed and batches), attention minus plain: SI-SDR {:+.2} dB, SSNR {:+.2} dB.\n",
            opts.steps,
            a.si_sdr - p.si_sdr,
            a.ssnr - p.ssnr
        )
    } else {
        String::new()
    };
    let model_rows = r
        .models
        .iter()
        .zip(&r.realtime_factor)
        .map(|(m, rt)| {
            format!(
                "| `{}` | {} | {:.0} | {:.1}× |",
                m.label,
                thousands(m.params),
                m.train_seconds,
                rt
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ex = listen_markdown(examples);
    let cfg = small_config(opts, variant == Variant::Attention);
    let text = format!(
        r#"# {name}

{title}. Reproduced with `cargo xtask reproduce {name}`.

## Architecture

| preset | parameters | what |
|---|---|---|
| `WaveUNetConfig::stoller2018()` | {p_st} | L = 12 levels, Fc = 24, fd = 15, fu = 5, valid convolutions with crop-and-concat, decimation, linear up-sampling, LeakyReLU 0.2, 1×1 conv + tanh, mono → 1 source; input 147,443 → output 16,389 samples, as the official `get_padding` |
| `WaveUNetConfig::macartney2018()` | {p_mc} | the speech-enhancement release: same network, zero-padded, 2 direct outputs (speech, noise) |
| `WaveUNetConfig::giri2019()` | {p_gi} | Stoller's network with an additive attention gate (Oktay 2018, F_int = C/2) on every skip, gated by the up-sampled decoder feature |
| trained here | {small} | L = {levels}, Fc = {filters}, otherwise the Stoller preset: `{cfg}` |

None of the three papers prints a parameter count; the figures are computed (arithmetic in
`crates/unet-core/tests/audio_arch.rs`) and asserted by tests.

## Task

Train on speech synthesised by espeak-ng and flite (8 voices reading Genesis 1:1-25, {train_s:.0} s
at {rate} Hz) mixed on the fly with white, pink, brown, babble (3-6 training voices) or music-like
noise at an SNR uniform in [{s0}, {s1}] dB; each pair is {out_len} output samples with the
network's context around them. Test on **real recorded speech** never heard in training (the
clean codec2 recordings, {test_s:.0} s) mixed with each noise type at {snrs} dB, babble made of
held-out voices (verses 26-31). MSE loss (official code), Adam, lr {lr} with warm-up and cosine,
batch {batch}, {steps} steps. Data: {source}.

## Results on real speech

{tables}
{verdict}
{compare}
SSNR: 256-sample frames, each clamped to [−10, 35] dB; SI-SDR: Le Roux et al. 2019. PESQ is
not computed (not implemented here; see `docs/audio.md`).

| model | parameters | training s | enhancement speed (audio s / compute s) |
|---|---|---|---|
{model_rows}

![training loss](loss.png)

## Listen

Noisy input, the model output(s), the clean recording; spectrogram panels in the same order
top to bottom (256-point STFT, 80 dB range):

{ex}
## Not reproduced here

- The papers' data (MUSDB18 / CCMixter, the Valentini VCTK noisy speech set) and their
  sampling rates (22.05 kHz / 16 kHz) are not available offline; the real test speech here is
  8 kHz, so the models run at 8 kHz.
- Full size (L = 12, Fc = 24) for hundreds of thousands of steps: out of reach on two CPU
  cores; the full presets are built and counted, the small model trains.
"#,
        name = variant.name(),
        title = match variant {
            Variant::Plain => "Stoller, Ewert & Dixon, *Wave-U-Net: A Multi-Scale Neural Network for End-to-End Audio Source Separation*, ISMIR 2018, used for speech enhancement as in Macartney & Weyde, *Improved Speech Enhancement with the Wave-U-Net*, 2018",
            Variant::Attention => "Giri, Isik & Krishnaswamy, *Attention Wave-U-Net for Speech Enhancement*, WASPAA 2019, against the plain Wave-U-Net of Stoller et al. 2018",
        },
        p_st = thousands(r.full_params.0),
        p_mc = thousands(r.full_params.1),
        p_gi = thousands(r.full_params.2),
        small = r.models.iter().map(|m| format!("{} (`{}`)", thousands(m.params), m.label)).collect::<Vec<_>>().join(", "),
        levels = opts.levels,
        filters = opts.filters,
        cfg = serde_json::to_string(&cfg).unwrap_or_default(),
        train_s = r.speech_seconds.0,
        test_s = r.speech_seconds.1,
        rate = opts.rate,
        s0 = opts.train_snr.0,
        s1 = opts.train_snr.1,
        out_len = opts.out_len,
        snrs = opts.eval_snrs.iter().map(|s| format!("{s}")).collect::<Vec<_>>().join(", "),
        lr = opts.lr,
        batch = opts.batch,
        steps = opts.steps,
        source = data.source,
    );
    checkpoint::write_atomic(&opts.out.join("report.md"), text.as_bytes())?;
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    checkpoint::write_atomic(&opts.out.join("metrics.json"), json.as_bytes())?;
    Ok(())
}
