//! The video U-Net behind the three reproductions: a diffusers-style U-Net over clips
//! `[N, C, T, H, W]` whose temporal behaviour is set by its config (survey Section 4.4).
//!
//! ```text
//!  clip ─ conv_in ─ down_0 ─────────────────────────────────── up_0 ─ conv_out ─ out
//!                     └ ↓ down_1 ────────────────────── up_1 ↑ ┘
//!                            └ ↓ … ─ mid (res, temporal attn, res) ─ … ↑ ┘
//!  every level: ResnetBlock(conv kind, temporal shift) [+ temporal attention]
//!  ↓ halves H, W (and T where `temporal_downsample`); ↑ nearest to the skip's size + conv
//! ```
//!
//! The three temporal designs of the section are configurations of this one network:
//! - **frame-independent image U-Net**: [`ConvKind::PerFrame`] (kernel 1 over time), no shift, no
//!   temporal attention — an image model run on every frame;
//! - **Latent-Shift** (An et al. 2023): the same network with the parameter-free
//!   [`temporal_shift`](unet_core::resnet::temporal_shift) before each convolution of every
//!   residual block, so its parameters are exactly the image U-Net's;
//! - **Lumiere's Space-Time U-Net** (Bar-Tal et al. 2024): (2+1)D convolutions
//!   ([`ConvKind::Factorised`]), down- and up-sampling in time as well as space (a stride-2
//!   step over frames after the 3-tap temporal convolutions; nearest-neighbour repetition up),
//!   temporal attention at the coarsest level, the whole clip in one pass;
//! - **Upscale-A-Video** (Zhou et al. 2024): (2+1)D convolutions and temporal attention, no
//!   temporal down-sampling (local temporal layers), the low-resolution clip as input.
//!
//! Temporal attention layers carry a sinusoidal encoding of the frame index (no parameters),
//! so they know the order of frames.
//!
//! Parameter names follow diffusers (`conv_in`, `time_embedding.linear_{1,2}`,
//! `down_blocks.i.resnets.j`, `down_blocks.i.temporal_attentions.j`,
//! `down_blocks.i.downsamplers.0.conv`, `mid_block.…`, `up_blocks.i.…upsamplers.0.conv`,
//! `conv_norm_out`, `conv_out`); a per-frame convolution's weight is the image weight with a
//! time axis of length 1 (`w.unsqueeze(2)` loads a 2D checkpoint).

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use unet_core::attention::AxisAttention;
use unet_core::embeddings::{timestep_embedding, EmbedAct, SinusoidalConfig, TimestepEmbedding};
use unet_core::layers::resample::interpolate_to;
use unet_core::layers::{ConvGeometry, ConvKind, ConvNd, Norm, NormLayer};
use unet_core::resnet::{ResnetBlock, ResnetBlockConfig};

use crate::{Result, VideoError};

/// Configuration of a [`VideoUNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoUNetConfig {
    /// Input channels (noisy clip, plus conditioning channels).
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Channels per level, finest first.
    pub block_out_channels: Vec<i64>,
    /// Residual blocks per down level (the up levels have one more, as in diffusers).
    pub layers_per_block: i64,
    /// Convolutions of the residual blocks: `PerFrame` (image model) or `Factorised` ((2+1)D).
    pub conv: ConvKind,
    /// Temporal shift `Some(d)` (`C/d` channels each way) in every residual block.
    pub temporal_shift: Option<i64>,
    /// Per down-sampling (`levels − 1` entries): also halve the frame count.
    pub temporal_downsample: Vec<bool>,
    /// Levels (0 = finest) with temporal self-attention after each residual block; the level
    /// `levels − 1` entry also puts one in the mid block.
    pub temporal_attention_levels: Vec<usize>,
    /// Attention heads of the temporal attention layers.
    pub heads: i64,
    /// GroupNorm groups.
    pub norm_num_groups: i64,
    /// A diffusion timestep embedding (`false` for a plain regressor).
    pub time_embedding: bool,
    /// Start the temporal halves of the (2+1)D convolutions as the identity and the temporal
    /// attention layers' output projections at zero, so the network starts as its per-frame
    /// counterpart (how inflated video models start their temporal layers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporal_identity_init: bool,
}

impl VideoUNetConfig {
    /// Number of resolution levels.
    pub fn levels(&self) -> usize {
        self.block_out_channels.len()
    }

    /// Checks the config, naming the offending value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, why: String| Err(VideoError::invalid(format!("{what}: {why}")));
        let n = self.levels();
        if n == 0 || self.block_out_channels.iter().any(|&c| c <= 0) {
            return bad(
                "block_out_channels",
                format!("{:?} must be positive", self.block_out_channels),
            );
        }
        if self.in_channels <= 0 || self.out_channels <= 0 || self.layers_per_block <= 0 {
            return bad(
                "channels/layers",
                format!(
                    "in {} out {} layers {} must be positive",
                    self.in_channels, self.out_channels, self.layers_per_block
                ),
            );
        }
        if !matches!(self.conv, ConvKind::PerFrame | ConvKind::Factorised) {
            return bad("conv", format!("{:?}: use PerFrame or Factorised", self.conv));
        }
        if self.temporal_downsample.len() != n - 1 {
            return bad(
                "temporal_downsample",
                format!("{} entries for {} down-samplings", self.temporal_downsample.len(), n - 1),
            );
        }
        if let Some(&l) = self.temporal_attention_levels.iter().find(|&&l| l >= n) {
            return bad("temporal_attention_levels", format!("level {l} ≥ {n} levels"));
        }
        if self.norm_num_groups <= 0 {
            return bad("norm_num_groups", format!("{} must be positive", self.norm_num_groups));
        }
        for &c in &self.block_out_channels {
            if c % self.norm_num_groups != 0 {
                return bad(
                    "norm_num_groups",
                    format!("{} does not divide {c}", self.norm_num_groups),
                );
            }
            if self.heads <= 0 || c % self.heads != 0 {
                return bad("heads", format!("{} does not divide {c}", self.heads));
            }
        }
        Ok(())
    }

    /// The factor by which the frame count must be divisible (2 per temporal down-sampling).
    pub fn frame_multiple(&self) -> i64 {
        1 << self.temporal_downsample.iter().filter(|&&d| d).count()
    }

    /// The frame-independent image U-Net of the given widths: per-frame convolutions only.
    pub fn image(in_ch: i64, out_ch: i64, channels: &[i64], layers: i64, groups: i64) -> Self {
        Self {
            in_channels: in_ch,
            out_channels: out_ch,
            block_out_channels: channels.to_vec(),
            layers_per_block: layers,
            conv: ConvKind::PerFrame,
            temporal_shift: None,
            temporal_downsample: vec![false; channels.len().saturating_sub(1)],
            temporal_attention_levels: Vec::new(),
            heads: 1,
            norm_num_groups: groups,
            time_embedding: true,
            temporal_identity_init: false,
        }
    }

    /// Latent-Shift: the image U-Net plus the temporal shift (1/8 of the channels each way, the
    /// TSM default) in every residual block; the same parameters.
    pub fn latent_shift(
        in_ch: i64,
        out_ch: i64,
        channels: &[i64],
        layers: i64,
        groups: i64,
    ) -> Self {
        Self { temporal_shift: Some(8), ..Self::image(in_ch, out_ch, channels, layers, groups) }
    }

    /// Lumiere's Space-Time U-Net: (2+1)D convolutions, every down-sampling also in time,
    /// temporal attention at the coarsest level.
    pub fn lumiere(in_ch: i64, out_ch: i64, channels: &[i64], layers: i64, groups: i64) -> Self {
        let n = channels.len();
        Self {
            conv: ConvKind::Factorised,
            temporal_downsample: vec![true; n.saturating_sub(1)],
            temporal_attention_levels: vec![n.saturating_sub(1)],
            heads: 4,
            ..Self::image(in_ch, out_ch, channels, layers, groups)
        }
    }

    /// Upscale-A-Video's U-Net with local temporal layers: (2+1)D convolutions, temporal
    /// attention at the two coarsest levels, no temporal down-sampling, no timestep (trained
    /// here as a regressor of the high-resolution clip).
    pub fn upscale_a_video(
        in_ch: i64,
        out_ch: i64,
        channels: &[i64],
        layers: i64,
        groups: i64,
    ) -> Self {
        let n = channels.len();
        Self {
            conv: ConvKind::Factorised,
            temporal_attention_levels: (n.saturating_sub(2)..n).collect(),
            heads: 4,
            time_embedding: false,
            temporal_identity_init: true,
            ..Self::image(in_ch, out_ch, channels, layers, groups)
        }
    }
}

struct Level {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AxisAttention>,
    resample: Option<ConvNd>,
}

/// The video U-Net (see the module documentation).
pub struct VideoUNet {
    cfg: VideoUNetConfig,
    conv_in: ConvNd,
    time_embedding: Option<TimestepEmbedding>,
    down: Vec<Level>,
    mid: (ResnetBlock, Option<AxisAttention>, ResnetBlock),
    up: Vec<Level>,
    conv_norm_out: NormLayer,
    conv_out: ConvNd,
}

impl std::fmt::Debug for VideoUNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoUNet").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// A 3×3 convolution over H, W only (kernel 1 over time), stride `(st, s, s)`.
fn frame_conv(path: nn::Path, cin: i64, cout: i64, stride_t: i64, stride: i64) -> Result<ConvNd> {
    let g = ConvGeometry {
        kernel: vec![1, 3, 3],
        stride: vec![stride_t, stride, stride],
        padding: vec![0, 1, 1],
        dilation: vec![1; 3],
        groups: 1,
        bias: true,
        transposed: false,
    };
    Ok(ConvNd::with_geometry(path, 3, cin, cout, g)?)
}

impl VideoUNet {
    /// Builds the network under `path`.
    pub fn new(path: &nn::Path, cfg: &VideoUNetConfig) -> Result<Self> {
        cfg.validate()?;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = 4 * ch[0];
        let rc = ResnetBlockConfig {
            norm: Norm::Group { groups: cfg.norm_num_groups },
            eps: 1e-5,
            act: EmbedAct::SiLU,
            temb_channels: cfg.time_embedding.then_some(temb),
            conv: cfg.conv,
            temporal_shift: cfg.temporal_shift,
            ..Default::default()
        };
        let attn = |p: nn::Path, c: i64| {
            AxisAttention::new(p, 3, c, 0, cfg.heads, false).map(|a| {
                let a = a.with_positions();
                if cfg.temporal_identity_init {
                    a.zero_output()
                } else {
                    a
                }
            })
        };
        let block = |mut r: ResnetBlock| {
            if cfg.temporal_identity_init {
                r.init_temporal_identity();
            }
            r
        };
        let conv_in = frame_conv(path / "conv_in", cfg.in_channels, ch[0], 1, 1)?;
        let time_embedding = if cfg.time_embedding {
            Some(TimestepEmbedding::new(path / "time_embedding", ch[0], temb, EmbedAct::SiLU)?)
        } else {
            None
        };
        let mut down = Vec::new();
        let mut cin = ch[0];
        for (i, &c) in ch.iter().enumerate() {
            let p = path / "down_blocks" / i;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..cfg.layers_per_block {
                resnets.push(block(ResnetBlock::new(&p / "resnets" / j, 3, cin, c, &rc)?));
                if cfg.temporal_attention_levels.contains(&i) {
                    attentions.push(attn(&p / "temporal_attentions" / j, c)?);
                }
                cin = c;
            }
            let resample = if i + 1 < n {
                let st = if cfg.temporal_downsample[i] { 2 } else { 1 };
                Some(frame_conv(&p / "downsamplers" / 0 / "conv", c, c, st, 2)?)
            } else {
                None
            };
            down.push(Level { resnets, attentions, resample });
        }
        let cm = ch[n - 1];
        let mp = path / "mid_block";
        let mid = (
            block(ResnetBlock::new(&mp / "resnets" / 0, 3, cm, cm, &rc)?),
            if cfg.temporal_attention_levels.contains(&(n - 1)) {
                Some(attn(&mp / "temporal_attentions" / 0, cm)?)
            } else {
                None
            },
            block(ResnetBlock::new(&mp / "resnets" / 1, 3, cm, cm, &rc)?),
        );
        // Skip channels in push order: conv_in, every resnet, every downsampler.
        let mut skip_ch = vec![ch[0]];
        for (i, &c) in ch.iter().enumerate() {
            skip_ch.extend(std::iter::repeat_n(c, cfg.layers_per_block as usize));
            if i + 1 < n {
                skip_ch.push(c);
            }
        }
        let mut up = Vec::new();
        let mut cprev = cm;
        for (k, level) in (0..n).rev().enumerate() {
            let c = ch[level];
            let p = path / "up_blocks" / k;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..=cfg.layers_per_block {
                let s = skip_ch
                    .pop()
                    .ok_or_else(|| VideoError::invalid("video U-Net: skip bookkeeping"))?;
                resnets.push(block(ResnetBlock::new(&p / "resnets" / j, 3, cprev + s, c, &rc)?));
                if cfg.temporal_attention_levels.contains(&level) {
                    attentions.push(attn(&p / "temporal_attentions" / j, c)?);
                }
                cprev = c;
            }
            let resample = if level > 0 {
                Some(frame_conv(&p / "upsamplers" / 0 / "conv", c, c, 1, 1)?)
            } else {
                None
            };
            up.push(Level { resnets, attentions, resample });
        }
        Ok(Self {
            cfg: cfg.clone(),
            conv_in,
            time_embedding,
            down,
            mid,
            up,
            conv_norm_out: NormLayer::with_eps(
                path / "conv_norm_out",
                Norm::Group { groups: cfg.norm_num_groups },
                ch[0],
                1e-5,
            )?,
            conv_out: frame_conv(path / "conv_out", ch[0], cfg.out_channels, 1, 1)?,
        })
    }

    /// The config.
    pub fn config(&self) -> &VideoUNetConfig {
        &self.cfg
    }

    /// # Shapes
    /// - `x`: `[N, in_channels, T, H, W]`, `T` a multiple of [`VideoUNetConfig::frame_multiple`];
    /// - `t`: `[N]` or `[]` diffusion steps when the config has a time embedding;
    /// - returns `[N, out_channels, T, H, W]`.
    pub fn forward(&self, x: &Tensor, t: Option<&Tensor>) -> Result<Tensor> {
        let size = x.size();
        let m = self.cfg.frame_multiple();
        if size.len() != 5 || size[1] != self.cfg.in_channels || size[2] % m != 0 {
            return Err(VideoError::invalid(format!(
                "video U-Net: input {size:?}, expected [N, {}, T, H, W] with T a multiple of {m}",
                self.cfg.in_channels
            )));
        }
        let emb = match (&self.time_embedding, t) {
            (Some(te), Some(t)) => {
                let t = if t.dim() == 0 {
                    t.unsqueeze(0).expand([size[0]], false)
                } else {
                    t.shallow_clone()
                };
                let sin = SinusoidalConfig::new(self.cfg.block_out_channels[0]);
                Some(te.forward(
                    &timestep_embedding(&t.to_device(x.device()), &sin)?.to_kind(x.kind()),
                ))
            }
            (Some(_), None) => {
                return Err(VideoError::invalid("video U-Net: this model needs timesteps"))
            }
            (None, _) => None,
        };
        let emb = emb.as_ref();
        let train = false;

        // Encoder: conv_in, then per level residual blocks (+ temporal attention), ↓.
        let mut h = self.conv_in.forward(x)?;
        let mut skips = vec![h.shallow_clone()];
        for level in &self.down {
            for (j, r) in level.resnets.iter().enumerate() {
                h = r.forward_t(&h, emb, train)?;
                if let Some(a) = level.attentions.get(j) {
                    h = a.forward(&h)?;
                }
                skips.push(h.shallow_clone());
            }
            if let Some(d) = &level.resample {
                h = d.forward(&h)?;
                skips.push(h.shallow_clone());
            }
        }
        // Bottleneck.
        h = self.mid.0.forward_t(&h, emb, train)?;
        if let Some(a) = &self.mid.1 {
            h = a.forward(&h)?;
        }
        h = self.mid.2.forward_t(&h, emb, train)?;
        // Decoder: concat the skips (LIFO), residual blocks (+ temporal attention), ↑ to the
        // next skip's size (space, and time where the encoder halved it).
        for level in &self.up {
            for (j, r) in level.resnets.iter().enumerate() {
                let s = skips
                    .pop()
                    .ok_or_else(|| VideoError::invalid("video U-Net: ran out of skips"))?;
                h = r.forward_t(&Tensor::f_cat(&[&h, &s], 1)?, emb, train)?;
                if let Some(a) = level.attentions.get(j) {
                    h = a.forward(&h)?;
                }
            }
            if let Some(u) = &level.resample {
                let target = skips.last().map(|s| s.size()[2..].to_vec()).unwrap_or_default();
                h = u.forward(&interpolate_to(&h, &target)?)?;
            }
        }
        let h = if self.cfg.conv == ConvKind::PerFrame {
            self.conv_norm_out.forward_per_frame(&h, train)?
        } else {
            self.conv_norm_out.forward_t(&h, train)?
        };
        let h = h.silu();
        Ok(self.conv_out.forward(&h)?)
    }
}

/// `[N, C, T, H, W]` → `[N·T, C, H, W]` (frames as a batch).
pub fn frames_as_batch(x: &Tensor) -> Result<Tensor> {
    let s = x.size();
    if s.len() != 5 {
        return Err(VideoError::invalid(format!("expected [N, C, T, H, W], got {s:?}")));
    }
    Ok(x.permute([0, 2, 1, 3, 4]).reshape([s[0] * s[2], s[1], s[3], s[4]]))
}

/// `[N·T, C, H, W]` → `[N, C, T, H, W]`.
pub fn batch_as_frames(x: &Tensor, t: i64) -> Result<Tensor> {
    let s = x.size();
    if s.len() != 4 || t <= 0 || s[0] % t != 0 {
        return Err(VideoError::invalid(format!("cannot fold {s:?} into clips of {t} frames")));
    }
    Ok(x.reshape([s[0] / t, t, s[1], s[2], s[3]]).permute([0, 2, 1, 3, 4]).contiguous())
}
