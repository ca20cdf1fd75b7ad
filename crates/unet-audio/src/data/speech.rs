//! The `speech` data set (recipe `datasets/speech/recipe.json`): Genesis 1:1-31 read by four
//! espeak-ng and four flite voices (`synth/gen1_NN-<voice>.wav`), and real recorded speech from
//! Debian `codec2-examples` (`codec2/wav/*.wav`, 8 kHz). Every utterance is loaded as mono and
//! resampled to one rate.
//!
//! Fill the cache with `cargo xtask datasets fetch speech`; without it the embedded sample
//! (three files of the set, in `datasets/speech/sample/`) is used.

use std::path::{Path, PathBuf};

use crate::error::{AudioError, Result};
use crate::resample::resample;
use crate::wav::{read_wav, read_wav_bytes, Audio};

/// The embedded sample: (file name, WAV bytes).
pub const SAMPLE: [(&str, &[u8]); 3] = [
    (
        "synth/gen1_01-espeak-en-us.wav",
        include_bytes!("../../../../datasets/speech/sample/gen1_01-espeak-en-us.wav"),
    ),
    (
        "synth/gen1_01-flite-slt.wav",
        include_bytes!("../../../../datasets/speech/sample/gen1_01-flite-slt.wav"),
    ),
    ("codec2/wav/hts1a.wav", include_bytes!("../../../../datasets/speech/sample/hts1a.wav")),
];

/// The codec2 recordings that are noisy HF-radio captures (no clean reference).
pub const NOISY_RECORDINGS: [&str; 3] = ["ve9qrp", "vk5qi", "vk2tpm_004"];

/// One utterance.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// File stem (`gen1_01-flite-slt`, `hts1a`).
    pub name: String,
    /// Voice (`espeak-en-us`, `flite-slt`) or `codec2` for recordings.
    pub voice: String,
    /// Verse number (1-31) of synthesised speech; `None` for recordings.
    pub verse: Option<usize>,
    /// `true` for real recordings (codec2), `false` for synthesised speech.
    pub recorded: bool,
    /// `true` for recordings made over a noisy radio channel (no clean reference).
    pub noisy: bool,
    /// Mono samples at the set's rate.
    pub audio: Audio,
}

/// A loaded speech set.
#[derive(Debug, Clone)]
pub struct SpeechSet {
    /// Utterances in name order.
    pub utterances: Vec<Utterance>,
    /// Sampling rate of every utterance.
    pub rate: u32,
    /// Where it came from (cache folder or embedded sample).
    pub source: String,
}

/// `<cache>/datasets/speech`, the folder `cargo xtask datasets fetch speech` fills
/// (`$UNET_RS_CACHE`, else `$XDG_CACHE_HOME/unet-rs`, else `~/.cache/unet-rs`).
pub fn default_cache_dir() -> Option<PathBuf> {
    unet_core::checkpoint::dataset_dir("speech")
}

fn describe(rel: &str, audio: Audio) -> Utterance {
    let stem =
        Path::new(rel).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let recorded = rel.starts_with("codec2/");
    let (verse, voice) = if recorded {
        (None, "codec2".to_string())
    } else {
        // gen1_NN-<voice>
        let (head, voice) = stem.split_once('-').unwrap_or((stem.as_str(), ""));
        (head.rsplit('_').next().and_then(|n| n.parse().ok()), voice.to_string())
    };
    let noisy = NOISY_RECORDINGS.contains(&stem.as_str());
    Utterance { name: stem, voice, verse, recorded, noisy, audio }
}

fn prepare(audio: Audio, rate: u32) -> Result<Audio> {
    resample(&audio.to_mono(), rate)
}

impl SpeechSet {
    /// The cache folder when it holds the set (`synth/` and `codec2/wav/` with WAVs), else the
    /// embedded sample; every utterance mono at `rate` Hz.
    pub fn load(cache: Option<&Path>, rate: u32) -> Result<Self> {
        if let Some(dir) = cache {
            let complete = ["synth", "codec2/wav"].iter().all(|d| {
                std::fs::read_dir(dir.join(d)).map(|mut r| r.next().is_some()).unwrap_or(false)
            });
            if complete {
                return Self::from_dir(dir, rate);
            }
        }
        Self::embedded(rate)
    }

    /// The embedded sample (three utterances).
    pub fn embedded(rate: u32) -> Result<Self> {
        let utterances = SAMPLE
            .iter()
            .map(|(rel, bytes)| {
                let name = format!("datasets/speech/sample/{rel} (embedded)");
                Ok(describe(rel, prepare(read_wav_bytes(bytes, name)?, rate)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { utterances, rate, source: "embedded sample (datasets/speech/sample)".into() })
    }

    /// Every WAV under `dir/synth` and `dir/codec2/wav`.
    pub fn from_dir(dir: &Path, rate: u32) -> Result<Self> {
        let mut rels = Vec::new();
        for sub in ["synth", "codec2/wav"] {
            let d = dir.join(sub);
            let entries = std::fs::read_dir(&d).map_err(|e| AudioError::io(&d, e))?;
            for e in entries {
                let e = e.map_err(|err| AudioError::io(&d, err))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".wav") {
                    rels.push(format!("{sub}/{name}"));
                }
            }
        }
        rels.sort();
        if rels.is_empty() {
            return Err(AudioError::format(dir, "no WAV files under synth/ or codec2/wav/"));
        }
        let utterances = rels
            .iter()
            .map(|rel| Ok(describe(rel, prepare(read_wav(dir.join(rel))?, rate)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { utterances, rate, source: dir.display().to_string() })
    }

    /// Clean utterances (everything but the noisy radio recordings).
    pub fn clean(&self) -> impl Iterator<Item = &Utterance> {
        self.utterances.iter().filter(|u| !u.noisy)
    }

    /// A deterministic split of the clean utterances: synthesised verses `> 31 − test_verses`
    /// and every third clean recording go to the test side.
    pub fn split(&self, test_verses: usize) -> (Vec<&Utterance>, Vec<&Utterance>) {
        let mut recorded = 0usize;
        self.clean().partition(|u| match u.verse {
            Some(v) => v + test_verses <= 31,
            None => {
                recorded += 1;
                recorded % 3 != 0
            }
        })
    }

    /// Total duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.utterances.iter().map(|u| u.audio.duration_s()).sum()
    }
}
