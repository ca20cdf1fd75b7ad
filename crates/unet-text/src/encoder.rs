//! A frozen text encoder for prompt conditioning: prompts -> token states + mask (the
//! cross-attention context of a conditional U-Net, as CLIP's are in Stable Diffusion,
//! Rombach et al. 2022) and a pooled, L2-normalised sentence embedding (for
//! FiLM/adaptive-norm or class-embedding style conditioning).
//!
//! Backed by [`MiniLm`] (all-MiniLM-L6-v2, 384-wide). Fetch the weights with
//! `cargo xtask datasets fetch minilm`; test with `cargo test -p unet-text --test minilm`.

use std::path::Path;

use tch::{nn, Device, Tensor};

use crate::error::{TextError, TextResult};
use crate::minilm::{default_dir, mean_pool_normalize, MiniLm};
use crate::tokenizer::{PadTo, TextTokenizer};

/// What a batch of prompts conditions on.
#[derive(Debug)]
pub struct TextConditioning {
    /// Last-layer token states, `[B, L, hidden]` (the cross-attention context).
    pub states: Tensor,
    /// Attention mask, `[B, L]` int64, 1 on tokens and 0 on padding.
    pub mask: Tensor,
    /// Mean-pooled, L2-normalised sentence embedding, `[B, hidden]`.
    pub pooled: Tensor,
}

/// Tokenizer + frozen [`MiniLm`] on one device.
#[derive(Debug)]
pub struct TextEncoder {
    vs: nn::VarStore,
    model: MiniLm,
    tokenizer: TextTokenizer,
    max_len: usize,
}

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
pub const DEFAULT_MAX_LEN: usize = 256;

impl TextEncoder {
    /// Loads a MiniLM folder (`tokenizer.json`, `model.safetensors`, optional `config.json`
    /// and `sentence_bert_config.json`) strictly onto `device`, frozen. The maximum prompt
    /// length is `max_seq_length` of `sentence_bert_config.json`, else 256.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> TextResult<Self> {
        let dir = dir.as_ref();
        let mut vs = nn::VarStore::new(device);
        let (model, tokenizer) = MiniLm::load(&mut vs, dir)?;
        let mut max_len = DEFAULT_MAX_LEN;
        let st = dir.join("sentence_bert_config.json");
        if st.is_file() {
            let bytes =
                std::fs::read(&st).map_err(|source| TextError::Io { path: st.clone(), source })?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| TextError::InvalidJson { path: st.clone(), reason: e.to_string() })?;
            if let Some(n) = v.get("max_seq_length").and_then(|n| n.as_u64()) {
                max_len = n as usize;
            }
        }
        Self { vs, model, tokenizer, max_len: DEFAULT_MAX_LEN }.with_max_len(max_len)
    }

    /// [`load`](Self::load) from the unet-rs cache ([`default_dir`]).
    pub fn from_cache(device: Device) -> TextResult<Self> {
        Self::load(default_dir()?, device)
    }

    /// Sets the longest prompt in tokens (special tokens included); longer prompts are
    /// truncated. Must be in `2..=max_position_embeddings`.
    pub fn with_max_len(mut self, max_len: usize) -> TextResult<Self> {
        let cap = self.model.config().max_position_embeddings;
        if max_len < 2 || max_len as i64 > cap {
            return Err(TextError::InvalidInput(format!(
                "max_len {max_len} must be in 2..={cap} (max_position_embeddings)"
            )));
        }
        self.max_len = max_len;
        Ok(self)
    }

    /// Longest prompt in tokens.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Width of the token states and embeddings (384).
    pub fn hidden_size(&self) -> i64 {
        self.model.config().hidden_size
    }

    /// The encoder.
    pub fn model(&self) -> &MiniLm {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The (frozen) variables.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Encodes prompts, padded to the longest in the batch.
    ///
    /// # Shapes
    /// `B` prompts -> states `[B, L, hidden]`, mask `[B, L]`, pooled `[B, hidden]`,
    /// `L <= max_len`, all on the encoder's device.
    pub fn encode(&self, prompts: &[&str]) -> TextResult<TextConditioning> {
        self.encode_with(prompts, PadTo::Longest)
    }

    /// [`encode`](Self::encode) padded to exactly [`max_len`](Self::max_len) tokens (a fixed
    /// context length for cross-attention).
    pub fn encode_fixed(&self, prompts: &[&str]) -> TextResult<TextConditioning> {
        self.encode_with(prompts, PadTo::MaxLen)
    }

    fn encode_with(&self, prompts: &[&str], pad: PadTo) -> TextResult<TextConditioning> {
        let (ids, mask) = self.tokenizer.encode_batch_with(prompts, self.max_len, pad)?;
        let mask = mask.f_to_device(self.vs.device())?;
        let states = tch::no_grad(|| self.model.forward(&ids, &mask))?;
        let pooled = mean_pool_normalize(&states, &mask)?;
        Ok(TextConditioning { states, mask, pooled })
    }

    /// Sentence embeddings of `prompts`, `[B, hidden]`, unit norm (all-MiniLM-L6-v2's
    /// `SentenceTransformer.encode(..., normalize)` output).
    pub fn embed(&self, prompts: &[&str]) -> TextResult<Tensor> {
        Ok(self.encode(prompts)?.pooled)
    }
}
