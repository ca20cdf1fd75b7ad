//! Residual blocks (survey Section 3.1.3; He et al. 2016, Ho et al. 2020): `norm → act →
//! conv`, twice, with a 1×…×1 shortcut when the channel count changes, optional dropout, and
//! optional injection of an embedding (time, class) by addition or scale-shift.
//!
//! Names and order of operations are diffusers' `ResnetBlock2D` (`norm1`, `conv1`,
//! `time_emb_proj`, `norm2`, `conv2`, `conv_shortcut`), written for any rank.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

use crate::embeddings::EmbedAct;
use crate::layers::{check_dims, ConvKind, ConvNd, ConvOptions, Norm, NormLayer, SpatialConv};
use crate::{Error, Result};

/// How an embedding enters the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EmbeddingInjection {
    /// `h = conv1(...) + proj(act(emb))` before `norm2` (diffusers "default", DDPM).
    #[default]
    Add,
    /// `h = norm2(h) · (1 + scale) + shift` with `[scale, shift] = proj(act(emb))`
    /// (diffusers "scale_shift", improved DDPM / ADM).
    ScaleShift,
}

/// Configuration of a [`ResnetBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResnetBlockConfig {
    /// Normalisation of both norms. Default `Group { groups: 32 }`.
    pub norm: Norm,
    /// Epsilon of the norms. Default 1e-5 (diffusers' `norm_eps`).
    pub eps: f64,
    /// Non-linearity. Default SiLU.
    pub act: EmbedAct,
    /// Width of the embedding injected into the block; `None` for no embedding.
    pub temb_channels: Option<i64>,
    /// How the embedding is injected.
    pub injection: EmbeddingInjection,
    /// Dropout probability between the two convolutions. Default 0.
    pub dropout: f64,
    /// The output is `(shortcut + h) / output_scale_factor`. Default 1.
    pub output_scale_factor: f64,
    /// Kernel size. Default 3.
    pub kernel_size: i64,
    /// Dense, separable, (2+1)D, per-frame or dilated convolutions. Default dense. A per-frame
    /// block also normalises every frame on its own, so frames never interact.
    pub conv: ConvKind,
    /// Parameter-free temporal shift (Lin 2019 TSM; An 2023 Latent-Shift) of the residual
    /// branch before each convolution: `Some(d)` moves `C/d` channels one step back along the
    /// first spatial axis (time in `[N, C, T, H, W]`) and `C/d` one step forward, zero-filled.
    /// Default `None`.
    #[serde(default)]
    pub temporal_shift: Option<i64>,
}

impl Default for ResnetBlockConfig {
    fn default() -> Self {
        Self {
            norm: Norm::Group { groups: 32 },
            eps: 1e-5,
            act: EmbedAct::SiLU,
            temb_channels: None,
            injection: EmbeddingInjection::Add,
            dropout: 0.0,
            output_scale_factor: 1.0,
            kernel_size: 3,
            conv: ConvKind::Full,
            temporal_shift: None,
        }
    }
}

/// A pre-activation residual block over any spatial rank.
#[derive(Debug)]
pub struct ResnetBlock {
    norm1: NormLayer,
    conv1: SpatialConv,
    time_emb_proj: Option<nn::Linear>,
    norm2: NormLayer,
    conv2: SpatialConv,
    conv_shortcut: Option<ConvNd>,
    cfg: ResnetBlockConfig,
    dims: usize,
}

impl ResnetBlock {
    /// Builds the block under `path` mapping `cin` → `cout` channels over `dims` axes.
    pub fn new(
        path: nn::Path,
        dims: usize,
        cin: i64,
        cout: i64,
        cfg: &ResnetBlockConfig,
    ) -> Result<Self> {
        check_dims(dims)?;
        if !(0.0..1.0).contains(&cfg.dropout) {
            return Err(Error::config("dropout", cfg.dropout, "must lie in [0, 1)"));
        }
        if cfg.output_scale_factor == 0.0 || !cfg.output_scale_factor.is_finite() {
            return Err(Error::config(
                "output_scale_factor",
                cfg.output_scale_factor,
                "must be finite and non-zero",
            ));
        }
        if let Some(d) = cfg.temporal_shift {
            if dims < 3 || d < 2 || 2 * (cin.min(cout) / d) == 0 {
                return Err(Error::config(
                    "temporal_shift",
                    d,
                    format!(
                        "needs dims >= 3 (time and two more axes) and 2 <= d with at least one channel shifted each way \
                         ({cin} → {cout} channels, {dims} axes)"
                    ),
                ));
            }
        }
        let k = cfg.kernel_size;
        let time_emb_proj = match cfg.temb_channels {
            Some(t) if t > 0 => {
                let out = match cfg.injection {
                    EmbeddingInjection::Add => cout,
                    EmbeddingInjection::ScaleShift => 2 * cout,
                };
                Some(nn::linear(&path / "time_emb_proj", t, out, Default::default()))
            }
            Some(t) => return Err(Error::config("temb_channels", t, "must be positive")),
            None => None,
        };
        Ok(Self {
            norm1: NormLayer::with_eps(&path / "norm1", cfg.norm, cin, cfg.eps)?,
            conv1: SpatialConv::new(&path / "conv1", dims, cin, cout, k, cfg.conv, true)?,
            time_emb_proj,
            norm2: NormLayer::with_eps(&path / "norm2", cfg.norm, cout, cfg.eps)?,
            conv2: SpatialConv::new(&path / "conv2", dims, cout, cout, k, cfg.conv, true)?,
            conv_shortcut: if cin != cout {
                Some(ConvNd::new(&path / "conv_shortcut", dims, cin, cout, ConvOptions::valid(1))?)
            } else {
                None
            },
            cfg: *cfg,
            dims,
        })
    }

    /// Starts both (2+1)D convolutions' temporal halves as the identity
    /// ([`SpatialConv::init_temporal_identity`]).
    pub fn init_temporal_identity(&mut self) {
        self.conv1.init_temporal_identity();
        self.conv2.init_temporal_identity();
    }

    /// A per-frame block normalises every frame on its own (an image block run on frames).
    fn norm(&self, n: &NormLayer, x: &Tensor, train: bool) -> Result<Tensor> {
        if self.cfg.conv == ConvKind::PerFrame {
            n.forward_per_frame(x, train)
        } else {
            n.forward_t(x, train)
        }
    }

    fn shift(&self, h: Tensor) -> Result<Tensor> {
        match self.cfg.temporal_shift {
            Some(d) => temporal_shift(&h, d),
            None => Ok(h),
        }
    }

    /// # Shapes
    /// - `xs`: `[N, cin, *S]`; `temb`: `[N, temb_channels]` when the block has an embedding.
    /// - returns `[N, cout, *S]`.
    pub fn forward_t(&self, xs: &Tensor, temb: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let act = |t: &Tensor| self.cfg.act.forward(t);
        let h = act(&self.norm(&self.norm1, xs, train)?);
        let mut h = self.conv1.forward(&self.shift(h)?)?; // [N, cout, *S]
        let emb = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(t)) => {
                let mut e = proj.forward(&act(t)); // [N, cout or 2·cout]
                for _ in 0..self.dims {
                    e = e.unsqueeze(-1);
                } // [N, ·, 1, …, 1]
                Some(e)
            }
            (Some(_), None) => {
                return Err(Error::InputShape {
                    shape: xs.size(),
                    expected: "an embedding (temb) for this block".into(),
                })
            }
            (None, _) => None,
        };
        match (self.cfg.injection, emb) {
            (EmbeddingInjection::Add, Some(e)) => {
                h = self.norm(&self.norm2, &(h + e), train)?;
            }
            (EmbeddingInjection::ScaleShift, Some(e)) => {
                let parts = e.f_chunk(2, 1)?;
                h = self.norm(&self.norm2, &h, train)? * (&parts[0] + 1.0) + &parts[1];
            }
            (_, None) => h = self.norm(&self.norm2, &h, train)?,
        }
        let h = act(&h).dropout(self.cfg.dropout, train);
        let h = self.conv2.forward(&self.shift(h)?)?;
        let shortcut = match &self.conv_shortcut {
            Some(c) => c.forward(xs)?,
            None => xs.shallow_clone(),
        };
        let out = shortcut + h;
        Ok(if self.cfg.output_scale_factor == 1.0 {
            out
        } else {
            out / self.cfg.output_scale_factor
        })
    }
}

/// Temporal shift (Lin et al. 2019): of `[N, C, T, *S]`, channels `[0, C/d)` take the value of
/// the next step (`out[t] = x[t+1]`), channels `[C/d, 2C/d)` the previous one
/// (`out[t] = x[t-1]`), zero beyond the ends; the rest are unchanged. No parameters.
pub fn temporal_shift(x: &Tensor, fold_div: i64) -> Result<Tensor> {
    let size = x.size();
    if size.len() < 4 || fold_div < 2 {
        return Err(Error::InputShape {
            shape: size,
            expected: format!("[N, C, T, *S] and fold_div >= 2 (got {fold_div})"),
        });
    }
    let (c, t) = (size[1], size[2]);
    let fold = c / fold_div;
    if fold == 0 || t < 2 {
        return Ok(x.shallow_clone());
    }
    let back = x.narrow(1, 0, fold); // takes x[t+1]
    let fwd = x.narrow(1, fold, fold); // takes x[t-1]
    let rest = x.narrow(1, 2 * fold, c - 2 * fold);
    let zero = |src: &Tensor| src.narrow(2, 0, 1).zeros_like();
    let back = Tensor::f_cat(&[&back.narrow(2, 1, t - 1), &zero(&back)], 2)?;
    let fwd = Tensor::f_cat(&[&zero(&fwd), &fwd.narrow(2, 0, t - 1)], 2)?;
    Ok(Tensor::f_cat(&[&back, &fwd, &rest], 1)?)
}
