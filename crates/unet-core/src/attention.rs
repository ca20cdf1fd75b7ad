//! Attention for U-Nets (survey Section 3.1.2), dimension-generic over the flattened spatial or
//! temporal axes, multi-head, on libtorch's scaled-dot-product attention:
//!
//! - [`Attention`]: self- or cross-attention with diffusers' names (`to_q`, `to_k`, `to_v`,
//!   `to_out.0`, optional `group_norm`), on tokens `[B, L, C]` or feature maps `[B, C, *S]`;
//! - [`FeedForward`] with GEGLU and [`BasicTransformerBlock`] (norm → self-attn → norm →
//!   cross-attn → norm → feed-forward), and [`Transformer`], Stable Diffusion's
//!   `Transformer2DModel` for any rank (group norm, linear or 1×…×1 conv projection);
//! - [`AxisAttention`]: attention along one chosen axis only (temporal attention for video);
//! - [`AttentionGate`]: the additive attention gate of Attention U-Net (Oktay 2018) on skips.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

use crate::embeddings::{timestep_embedding, SinusoidalConfig};
use crate::layers::{check_dims, ConvNd, ConvOptions, Norm, NormLayer};
use crate::{Error, Result};

/// Configuration of an [`Attention`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttentionConfig {
    /// Number of heads.
    pub heads: i64,
    /// Width of each head; the inner width is `heads · dim_head`.
    pub dim_head: i64,
    /// Width of the context for cross-attention; `None` for self-attention.
    pub cross_dim: Option<i64>,
    /// Bias on `to_q`, `to_k`, `to_v` (`to_out.0` always has one).
    pub qkv_bias: bool,
    /// Group norm (`group_norm`) on the input before the projections, with this many groups.
    pub norm_groups: Option<i64>,
    /// Epsilon of that group norm.
    pub eps: f64,
    /// Add the input back (`residual_connection`).
    pub residual: bool,
    /// Divide the output by this (`rescale_output_factor`). Default 1.
    pub rescale_output_factor: f64,
}

impl AttentionConfig {
    /// Self-attention with `heads` heads of `dim_head` channels, no bias, no norm, no residual
    /// (the attention inside a transformer block).
    pub fn new(heads: i64, dim_head: i64) -> Self {
        Self {
            heads,
            dim_head,
            cross_dim: None,
            qkv_bias: false,
            norm_groups: None,
            eps: 1e-5,
            residual: false,
            rescale_output_factor: 1.0,
        }
    }

    /// The spatial self-attention block of DDPM (diffusers `UNet2DModel`): group norm, q/k/v
    /// bias, residual connection.
    pub fn spatial(channels: i64, dim_head: i64, groups: i64, eps: f64) -> Self {
        Self {
            heads: channels / dim_head.max(1),
            dim_head,
            cross_dim: None,
            qkv_bias: true,
            norm_groups: Some(groups),
            eps,
            residual: true,
            rescale_output_factor: 1.0,
        }
    }
}

/// Multi-head (cross-)attention.
#[derive(Debug)]
pub struct Attention {
    group_norm: Option<NormLayer>,
    to_q: nn::Linear,
    to_k: nn::Linear,
    to_v: nn::Linear,
    to_out: nn::Linear,
    cfg: AttentionConfig,
}

impl Attention {
    /// Zeroes the output projection, so the layer adds nothing at first (the zero-initialised
    /// temporal layers of video models inflated from image models).
    pub fn zero_output_(&mut self) {
        tch::no_grad(|| {
            let _ = self.to_out.ws.zero_();
            if let Some(b) = self.to_out.bs.as_mut() {
                let _ = b.zero_();
            }
        });
    }

    /// Builds the layer under `path` for queries of width `query_dim`.
    pub fn new(path: nn::Path, query_dim: i64, cfg: &AttentionConfig) -> Result<Self> {
        if cfg.heads <= 0 || cfg.dim_head <= 0 {
            return Err(Error::config(
                "attention",
                (cfg.heads, cfg.dim_head),
                "heads and dim_head must be positive",
            ));
        }
        if query_dim <= 0 {
            return Err(Error::config("query_dim", query_dim, "must be positive"));
        }
        let inner = cfg.heads * cfg.dim_head;
        let kv_dim = cfg.cross_dim.unwrap_or(query_dim);
        let lin = |bias: bool| nn::LinearConfig { bias, ..Default::default() };
        let group_norm = match cfg.norm_groups {
            Some(g) => Some(NormLayer::with_eps(
                &path / "group_norm",
                Norm::Group { groups: g },
                query_dim,
                cfg.eps,
            )?),
            None => None,
        };
        Ok(Self {
            group_norm,
            to_q: nn::linear(&path / "to_q", query_dim, inner, lin(cfg.qkv_bias)),
            to_k: nn::linear(&path / "to_k", kv_dim, inner, lin(cfg.qkv_bias)),
            to_v: nn::linear(&path / "to_v", kv_dim, inner, lin(cfg.qkv_bias)),
            to_out: nn::linear(&path / "to_out" / 0, inner, query_dim, lin(true)),
            cfg: *cfg,
        })
    }

    /// The attention proper on already-normalised tokens: `x` `[B, L, C]`, `context`
    /// `[B, M, C_ctx]` (self-attention when `None`), optional additive `mask` broadcastable to
    /// `[B, heads, L, M]`, `causal` for autoregressive models. Returns `[B, L, C]`.
    pub fn attend(
        &self,
        x: &Tensor,
        context: Option<&Tensor>,
        mask: Option<&Tensor>,
        causal: bool,
    ) -> Result<Tensor> {
        let (b, l) = (x.size()[0], x.size()[1]);
        let ctx = context.unwrap_or(x);
        let h = self.cfg.heads;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.f_view([b, -1, h, self.cfg.dim_head])?.transpose(1, 2)) // [B, heads, L, d]
        };
        let q = split(self.to_q.forward(x))?;
        let k = split(self.to_k.forward(ctx))?;
        let v = split(self.to_v.forward(ctx))?;
        let o = Tensor::f_scaled_dot_product_attention(&q, &k, &v, mask, 0.0, causal, None, false)?;
        let o = o.transpose(1, 2).f_reshape([b, l, h * self.cfg.dim_head])?; // [B, L, inner]
        Ok(self.to_out.forward(&o))
    }

    /// Full layer on tokens `[B, L, C]`: optional group norm, attention, residual, rescale.
    pub fn forward_tokens(
        &self,
        x: &Tensor,
        context: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let normed = match &self.group_norm {
            Some(n) => n.forward_t(&x.transpose(1, 2), false)?.transpose(1, 2),
            None => x.shallow_clone(),
        };
        let mut out = self.attend(&normed, context, mask, false)?;
        if self.cfg.residual {
            out = &out + x;
        }
        Ok(self.rescale(out))
    }

    /// Full layer on a feature map `[B, C, *S]`, attending over all `prod(S)` positions.
    pub fn forward_map(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let size = x.size();
        let tokens = x.flatten(2, -1).transpose(1, 2); // [B, L, C]
        let normed = match &self.group_norm {
            Some(n) => n.forward_t(&tokens.transpose(1, 2), false)?.transpose(1, 2),
            None => tokens,
        };
        let mut out =
            self.attend(&normed, context, None, false)?.transpose(1, 2).f_reshape(&size)?; // [B, C, *S]
        if self.cfg.residual {
            out = &out + x;
        }
        Ok(self.rescale(out))
    }

    fn rescale(&self, t: Tensor) -> Tensor {
        if self.cfg.rescale_output_factor == 1.0 {
            t
        } else {
            t / self.cfg.rescale_output_factor
        }
    }
}

/// Position-wise feed-forward with GEGLU (Shazeer 2020): `net.0.proj` (to 2·inner), value ·
/// GELU(gate), `net.2` (back to `dim`).
#[derive(Debug)]
pub struct FeedForward {
    proj: nn::Linear,
    out: nn::Linear,
}

impl FeedForward {
    /// `dim` → `mult · dim` → `dim` under `path` (`path/net/0/proj`, `path/net/2`).
    pub fn new(path: nn::Path, dim: i64, mult: i64) -> Result<Self> {
        if dim <= 0 || mult <= 0 {
            return Err(Error::config("feed_forward", (dim, mult), "widths must be positive"));
        }
        let inner = dim * mult;
        Ok(Self {
            proj: nn::linear(&path / "net" / 0 / "proj", dim, 2 * inner, Default::default()),
            out: nn::linear(&path / "net" / 2, inner, dim, Default::default()),
        })
    }

    /// `[…, dim]` → `[…, dim]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let parts = self.proj.forward(x).f_chunk(2, -1)?;
        Ok(self.out.forward(&(&parts[0] * parts[1].gelu("none"))))
    }
}

/// Stable Diffusion's transformer block: `x += attn1(norm1(x))`, `x += attn2(norm2(x), ctx)`,
/// `x += ff(norm3(x))`.
#[derive(Debug)]
pub struct BasicTransformerBlock {
    norm1: nn::LayerNorm,
    attn1: Attention,
    norm2: nn::LayerNorm,
    attn2: Option<Attention>,
    norm3: nn::LayerNorm,
    ff: FeedForward,
    only_cross_attention: bool,
}

impl BasicTransformerBlock {
    /// `dim`-wide block with `heads × dim_head` attention; `cross_dim` adds the cross-attention
    /// (`attn2`); `only_cross_attention` makes `attn1` attend to the context too.
    pub fn new(
        path: nn::Path,
        dim: i64,
        heads: i64,
        dim_head: i64,
        cross_dim: Option<i64>,
        only_cross_attention: bool,
    ) -> Result<Self> {
        let ln = || nn::LayerNormConfig { eps: 1e-5, ..Default::default() };
        let a1 = AttentionConfig {
            cross_dim: if only_cross_attention { cross_dim } else { None },
            ..AttentionConfig::new(heads, dim_head)
        };
        let attn2 = match cross_dim {
            Some(c) => Some(Attention::new(
                &path / "attn2",
                dim,
                &AttentionConfig { cross_dim: Some(c), ..AttentionConfig::new(heads, dim_head) },
            )?),
            None => None,
        };
        Ok(Self {
            norm1: nn::layer_norm(&path / "norm1", vec![dim], ln()),
            attn1: Attention::new(&path / "attn1", dim, &a1)?,
            norm2: nn::layer_norm(&path / "norm2", vec![dim], ln()),
            attn2,
            norm3: nn::layer_norm(&path / "norm3", vec![dim], ln()),
            ff: FeedForward::new(&path / "ff", dim, 4)?,
            only_cross_attention,
        })
    }

    /// Tokens `[B, L, dim]`, context `[B, M, cross_dim]` → `[B, L, dim]`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let ctx1 = if self.only_cross_attention { context } else { None };
        let x = self.attn1.attend(&self.norm1.forward(x), ctx1, None, false)? + x;
        let x = match &self.attn2 {
            Some(a) => a.attend(&self.norm2.forward(&x), context, None, false)? + &x,
            None => x,
        };
        Ok(self.ff.forward(&self.norm3.forward(&x))? + &x)
    }
}

/// Configuration of a [`Transformer`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Attention heads.
    pub heads: i64,
    /// Width per head (`heads · dim_head` is the inner width).
    pub dim_head: i64,
    /// Transformer blocks. Default 1.
    pub layers: i64,
    /// Context width for cross-attention (`None`: self-attention only).
    pub cross_dim: Option<i64>,
    /// Groups of the input group norm. Default 32.
    pub norm_groups: i64,
    /// Linear (`true`, SD 2) or 1×…×1 conv (`false`, SD 1) projections in and out.
    pub use_linear_projection: bool,
    /// Make `attn1` a cross-attention as well.
    pub only_cross_attention: bool,
}

#[derive(Debug)]
enum Proj {
    Conv(ConvNd),
    Linear(nn::Linear),
}

/// Stable Diffusion's `Transformer2DModel` for any rank: group norm (eps 1e-6), projection in,
/// transformer blocks over the flattened positions, projection out, residual.
#[derive(Debug)]
pub struct Transformer {
    norm: NormLayer,
    proj_in: Proj,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Proj,
}

impl Transformer {
    /// Builds the transformer over `channels`-wide feature maps of rank `dims` under `path`.
    pub fn new(
        path: nn::Path,
        dims: usize,
        channels: i64,
        cfg: &TransformerConfig,
    ) -> Result<Self> {
        check_dims(dims)?;
        let inner = cfg.heads * cfg.dim_head;
        let proj = |name: &str, i: i64, o: i64| -> Result<Proj> {
            Ok(if cfg.use_linear_projection {
                Proj::Linear(nn::linear(&path / name, i, o, Default::default()))
            } else {
                Proj::Conv(ConvNd::new(&path / name, dims, i, o, ConvOptions::valid(1))?)
            })
        };
        let blocks = (0..cfg.layers)
            .map(|k| {
                BasicTransformerBlock::new(
                    &path / "transformer_blocks" / k,
                    inner,
                    cfg.heads,
                    cfg.dim_head,
                    cfg.cross_dim,
                    cfg.only_cross_attention,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm: NormLayer::with_eps(
                &path / "norm",
                Norm::Group { groups: cfg.norm_groups },
                channels,
                1e-6,
            )?,
            proj_in: proj("proj_in", channels, inner)?,
            blocks,
            proj_out: proj("proj_out", inner, channels)?,
        })
    }

    /// `[B, C, *S]` with context `[B, M, cross_dim]` → `[B, C, *S]`.
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let size = x.size();
        let h = self.norm.forward_t(x, false)?;
        let to_tokens = |t: &Tensor| t.flatten(2, -1).transpose(1, 2); // [B, L, C]
        let mut tokens = match &self.proj_in {
            Proj::Conv(c) => to_tokens(&c.forward(&h)?),
            Proj::Linear(l) => l.forward(&to_tokens(&h)),
        };
        for b in &self.blocks {
            tokens = b.forward(&tokens, context)?;
        }
        let inner = tokens.size()[2];
        let mut map_size = size.clone();
        map_size[1] = inner;
        let out = match &self.proj_out {
            Proj::Conv(c) => c.forward(&tokens.transpose(1, 2).f_reshape(&map_size)?)?,
            Proj::Linear(l) => l.forward(&tokens).transpose(1, 2).f_reshape(&size)?,
        };
        Ok(out + x)
    }
}

/// Attention along one spatial axis only (e.g. time in `[B, C, T, H, W]`), every other position
/// independent: a layer norm over channels, multi-head self-attention along `axis`, residual.
/// Names: `norm`, `attn.{to_q,to_k,to_v,to_out.0}`.
#[derive(Debug)]
pub struct AxisAttention {
    norm: nn::LayerNorm,
    attn: Attention,
    axis: usize,
    causal: bool,
    positions: bool,
}

impl AxisAttention {
    /// Attention along spatial axis `axis` (0-based, `< dims`) of `channels`-wide maps.
    pub fn new(
        path: nn::Path,
        dims: usize,
        channels: i64,
        axis: usize,
        heads: i64,
        causal: bool,
    ) -> Result<Self> {
        check_dims(dims)?;
        if axis >= dims {
            return Err(Error::config("axis", axis, format!("must be below dims = {dims}")));
        }
        if heads <= 0 || channels % heads != 0 {
            return Err(Error::config("heads", heads, format!("must divide {channels} channels")));
        }
        Ok(Self {
            norm: nn::layer_norm(&path / "norm", vec![channels], Default::default()),
            attn: Attention::new(
                &path / "attn",
                channels,
                &AttentionConfig::new(heads, channels / heads),
            )?,
            axis,
            causal,
            positions: false,
        })
    }

    /// Zeroes the output projection: with its residual, the layer starts as the identity.
    pub fn zero_output(mut self) -> Self {
        self.attn.zero_output_();
        self
    }

    /// Adds a fixed sinusoidal encoding of the position along the axis to the normalised tokens
    /// before attention (as the temporal transformers of AnimateDiff and VideoLDM do), so that
    /// the layer can tell the order of frames apart. No parameters.
    pub fn with_positions(mut self) -> Self {
        self.positions = true;
        self
    }

    /// `[B, C, *S]` → `[B, C, *S]`, mixing positions only along the chosen axis.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let size = x.size();
        let nd = size.len() as i64;
        let a = 2 + self.axis as i64;
        // Move the axis next to channels-last: [B, *others, S_a, C].
        let mut perm: Vec<i64> = vec![0];
        perm.extend((2..nd).filter(|&d| d != a));
        perm.push(a);
        perm.push(1);
        let moved = x.permute(&perm);
        let msize = moved.size();
        let seq = size[a as usize];
        let c = size[1];
        let tokens = moved.f_reshape([-1, seq, c])?; // [B·others, S_a, C]
        let mut normed = self.norm.forward(&tokens);
        if self.positions {
            let idx = Tensor::f_arange(seq, (tch::Kind::Float, x.device()))?;
            let pe = timestep_embedding(&idx, &SinusoidalConfig::new(c))?.to_kind(x.kind()); // [S, C]
            normed = normed.f_add(&pe.unsqueeze(0))?;
        }
        let out = self.attn.attend(&normed, None, None, self.causal)? + &tokens;
        let out = out.f_reshape(&msize)?;
        // Inverse permutation.
        let mut inv = vec![0i64; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p as usize] = i as i64;
        }
        Ok(out.permute(&inv).contiguous())
    }
}

/// Additive attention gate on a skip connection (Oktay et al. 2018, Attention U-Net):
/// `α = σ(ψ(ReLU(W_g·g + W_x·x)))`, output `α · x`. `g` is the decoder feature at the skip's
/// resolution. Names follow the common PyTorch implementation: `W_g.{0,1}`, `W_x.{0,1}`,
/// `psi.{0,1}` (1×…×1 conv, then norm).
#[derive(Debug)]
pub struct AttentionGate {
    w_g: (ConvNd, NormLayer),
    w_x: (ConvNd, NormLayer),
    psi: (ConvNd, NormLayer),
}

impl AttentionGate {
    /// Gate for skips of `f_l` channels with gating signals of `f_g` channels through an
    /// `f_int`-wide intermediate, normalised by `norm`.
    pub fn new(
        path: nn::Path,
        dims: usize,
        f_g: i64,
        f_l: i64,
        f_int: i64,
        norm: Norm,
    ) -> Result<Self> {
        let conv = |p: nn::Path, i, o| ConvNd::new(p, dims, i, o, ConvOptions::valid(1));
        let wg = &path / "W_g";
        let wx = &path / "W_x";
        let psi = &path / "psi";
        let psi_norm = match norm {
            Norm::Group { .. } | Norm::Layer => Norm::Layer,
            n => n,
        };
        Ok(Self {
            w_g: (conv(&wg / 0, f_g, f_int)?, NormLayer::new(&wg / 1, norm, f_int)?),
            w_x: (conv(&wx / 0, f_l, f_int)?, NormLayer::new(&wx / 1, norm, f_int)?),
            psi: (conv(&psi / 0, f_int, 1)?, NormLayer::new(&psi / 1, psi_norm, 1)?),
        })
    }

    /// The attention coefficients `α` `[B, 1, *S]` in (0, 1).
    pub fn coefficients(&self, g: &Tensor, x: &Tensor, train: bool) -> Result<Tensor> {
        let g1 = self.w_g.1.forward_t(&self.w_g.0.forward(g)?, train)?;
        let x1 = self.w_x.1.forward_t(&self.w_x.0.forward(x)?, train)?;
        let p = self.psi.0.forward(&(g1 + x1).relu())?;
        Ok(self.psi.1.forward_t(&p, train)?.sigmoid())
    }

    /// Gated skip `α · x`, same shape as `x`.
    pub fn forward_t(&self, g: &Tensor, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(x * self.coefficients(g, x, train)?)
    }
}
