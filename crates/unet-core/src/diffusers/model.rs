//! `UNet2DModel` and `UNet2DConditionModel` of diffusers, written once over the core's
//! rank-generic blocks, with diffusers' state-dict names.

use tch::{nn, Tensor};

use super::config::{BlockKind, DiffusersConfig, Flavor, MidKind};
use crate::attention::{Attention, AttentionConfig, Transformer, TransformerConfig};
use crate::embeddings::{
    timestep_embedding, ClassEmbedding, EmbedAct, SinusoidalConfig, TimestepEmbedding,
};
use crate::layers::resample::interpolate_to;
use crate::layers::{ConvGeometry, ConvNd, ConvOptions, Norm, NormLayer};
use crate::resnet::{ResnetBlock, ResnetBlockConfig};
use crate::skip::FreeU;
use crate::{Error, Result};

#[derive(Debug)]
enum AttnLayer {
    Spatial(Attention),
    Transformer(Transformer),
}

impl AttnLayer {
    fn forward(&self, x: &Tensor, ctx: Option<&Tensor>) -> Result<Tensor> {
        match self {
            AttnLayer::Spatial(a) => a.forward_map(x, None),
            AttnLayer::Transformer(t) => t.forward(x, ctx),
        }
    }
}

#[derive(Debug)]
struct Block {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AttnLayer>,
    resample: Option<ConvNd>,
}

/// Residuals a ControlNet adds: one per skip (in push order) and one for the mid block.
#[derive(Debug)]
pub struct ControlResiduals<'a> {
    /// Added to every skip tensor, in the order they were pushed.
    pub down: &'a [Tensor],
    /// Added to the mid block output.
    pub mid: Option<&'a Tensor>,
}

/// A diffusers U-Net (either class), built from a [`DiffusersConfig`].
#[derive(Debug)]
pub struct DiffusersUNet {
    cfg: DiffusersConfig,
    conv_in: ConvNd,
    time_embedding: TimestepEmbedding,
    class_embedding: Option<ClassEmbedding>,
    down_blocks: Vec<Block>,
    mid_block: Option<Block>,
    up_blocks: Vec<Block>,
    /// `conv_norm_out`, `conv_out` (absent in an encoder-only copy).
    head: Option<(NormLayer, ConvNd)>,
    freeu: Option<FreeU>,
    skips_enabled: bool,
}

impl DiffusersUNet {
    /// Builds every variable under `path` with diffusers' names.
    pub fn new(path: &nn::Path, cfg: &DiffusersConfig) -> Result<Self> {
        Self::build(path, cfg, true)
    }

    /// Only the encoder half (`conv_in`, `time_embedding`, `class_embedding`, `down_blocks`,
    /// `mid_block`), as a ControlNet's trainable copy holds it; [`DiffusersUNet::forward`]
    /// refuses to run it.
    pub(crate) fn new_encoder(path: &nn::Path, cfg: &DiffusersConfig) -> Result<Self> {
        Self::build(path, cfg, false)
    }

    fn build(path: &nn::Path, cfg: &DiffusersConfig, decoder: bool) -> Result<Self> {
        let d = cfg.dims;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let t = cfg.time_embed_dim;
        let cond = cfg.flavor == Flavor::Conditional;
        let same3 = ConvOptions::same(3);
        let res_cfg = |scale: f64| ResnetBlockConfig {
            norm: Norm::Group { groups: cfg.norm_num_groups },
            eps: cfg.norm_eps,
            act: cfg.act,
            temb_channels: Some(t),
            injection: cfg.injection,
            dropout: cfg.dropout,
            output_scale_factor: scale,
            ..Default::default()
        };
        let attn = |p: nn::Path,
                    level: usize,
                    c: i64,
                    rescale: f64,
                    kind: BlockKind,
                    groups: Option<i64>|
         -> Result<AttnLayer> {
            let (heads, dim_head) = cfg.heads(level);
            Ok(match kind {
                BlockKind::CrossAttn => AttnLayer::Transformer(Transformer::new(
                    p,
                    d,
                    c,
                    &TransformerConfig {
                        heads,
                        dim_head,
                        layers: cfg.transformer_layers_per_block[level],
                        cross_dim: Some(cfg.cross_attention_dim[level]),
                        norm_groups: cfg.norm_num_groups,
                        use_linear_projection: cfg.use_linear_projection,
                        only_cross_attention: cfg.only_cross_attention[level],
                    },
                )?),
                _ => AttnLayer::Spatial(Attention::new(
                    p,
                    c,
                    &AttentionConfig {
                        rescale_output_factor: rescale,
                        norm_groups: groups,
                        ..AttentionConfig::spatial(c, dim_head, cfg.norm_num_groups, cfg.norm_eps)
                    },
                )?),
            })
        };

        let conv_in = ConvNd::new(path / "conv_in", d, cfg.in_channels, ch[0], same3)?;
        let time_act = if cond { cfg.act } else { EmbedAct::SiLU };
        let time_embedding = TimestepEmbedding::new(path / "time_embedding", ch[0], t, time_act)?;
        let class_embedding = match cfg.num_class_embeds {
            Some(k) => Some(ClassEmbedding::new(path / "class_embedding", k, t)?),
            None => None,
        };

        let mut down_blocks = Vec::with_capacity(n);
        for (i, &kind) in cfg.down.iter().enumerate() {
            let p = path / "down_blocks" / i;
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..cfg.layers_per_block[i] {
                let rin = if j == 0 { cin } else { ch[i] };
                resnets.push(ResnetBlock::new(&p / "resnets" / j, d, rin, ch[i], &res_cfg(1.0))?);
                if kind != BlockKind::Plain {
                    attentions.push(attn(
                        &p / "attentions" / j,
                        i,
                        ch[i],
                        1.0,
                        kind,
                        Some(cfg.norm_num_groups),
                    )?);
                }
            }
            let resample = if i + 1 < n {
                let pad = cfg.downsample_padding;
                let geo = ConvGeometry {
                    stride: vec![2; d],
                    padding: vec![pad; d],
                    ..ConvGeometry::uniform(d, same3)
                };
                Some(ConvNd::with_geometry(&p / "downsamplers" / 0 / "conv", d, ch[i], ch[i], geo)?)
            } else {
                None
            };
            down_blocks.push(Block { resnets, attentions, resample });
        }

        let c_mid = ch[n - 1];
        let mp = path / "mid_block";
        let msf = cfg.mid_block_scale_factor;
        let mid_block = match cfg.mid {
            MidKind::None => None,
            MidKind::ResnetOnly => Some(Block {
                resnets: vec![ResnetBlock::new(
                    &mp / "resnets" / 0,
                    d,
                    c_mid,
                    c_mid,
                    &res_cfg(msf),
                )?],
                attentions: vec![],
                resample: None,
            }),
            MidKind::Attn { attention } => {
                let groups = cfg.attn_norm_num_groups.or(match cfg.injection {
                    crate::resnet::EmbeddingInjection::Add => Some(cfg.norm_num_groups),
                    crate::resnet::EmbeddingInjection::ScaleShift => None,
                });
                let attentions = if attention {
                    vec![attn(&mp / "attentions" / 0, n - 1, c_mid, msf, BlockKind::Attn, groups)?]
                } else {
                    vec![]
                };
                Some(Block {
                    resnets: vec![
                        ResnetBlock::new(&mp / "resnets" / 0, d, c_mid, c_mid, &res_cfg(msf))?,
                        ResnetBlock::new(&mp / "resnets" / 1, d, c_mid, c_mid, &res_cfg(msf))?,
                    ],
                    attentions,
                    resample: None,
                })
            }
            MidKind::CrossAttn => Some(Block {
                resnets: vec![
                    ResnetBlock::new(&mp / "resnets" / 0, d, c_mid, c_mid, &res_cfg(msf))?,
                    ResnetBlock::new(&mp / "resnets" / 1, d, c_mid, c_mid, &res_cfg(msf))?,
                ],
                attentions: vec![attn(
                    &mp / "attentions" / 0,
                    n - 1,
                    c_mid,
                    1.0,
                    BlockKind::CrossAttn,
                    None,
                )?],
                resample: None,
            }),
        };

        let rev: Vec<i64> = ch.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(n);
        let mut prev = rev[0];
        let up_kinds: &[BlockKind] = if decoder { &cfg.up } else { &[] };
        for (i, &kind) in up_kinds.iter().enumerate() {
            let p = path / "up_blocks" / i;
            let level = n - 1 - i; // the matching down level
            let out = rev[i];
            let input = rev[(i + 1).min(n - 1)];
            let layers = cfg.layers_per_block[level] + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..layers {
                let skip = if j == layers - 1 { input } else { out };
                let rin = if j == 0 { prev } else { out };
                resnets.push(ResnetBlock::new(
                    &p / "resnets" / j,
                    d,
                    rin + skip,
                    out,
                    &res_cfg(1.0),
                )?);
                if kind != BlockKind::Plain {
                    attentions.push(attn(
                        &p / "attentions" / j,
                        level,
                        out,
                        1.0,
                        kind,
                        Some(cfg.norm_num_groups),
                    )?);
                }
            }
            let resample = if i + 1 < n {
                Some(ConvNd::new(&p / "upsamplers" / 0 / "conv", d, out, out, same3)?)
            } else {
                None
            };
            up_blocks.push(Block { resnets, attentions, resample });
            prev = out;
        }

        let head = if decoder {
            Some((
                NormLayer::with_eps(
                    path / "conv_norm_out",
                    Norm::Group { groups: cfg.norm_num_groups },
                    ch[0],
                    cfg.norm_eps,
                )?,
                ConvNd::new(path / "conv_out", d, ch[0], cfg.out_channels, same3)?,
            ))
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            conv_in,
            time_embedding,
            class_embedding,
            down_blocks,
            mid_block,
            up_blocks,
            head,
            freeu: None,
            skips_enabled: true,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DiffusersConfig {
        &self.cfg
    }

    /// Turns the skip connections off (`false`): every skip tensor is replaced by zeros, so the
    /// same architecture and parameter count become a plain encoder-decoder — the survey's
    /// Fig. 6 ablation.
    pub fn set_skips_enabled(&mut self, enabled: bool) {
        self.skips_enabled = enabled;
    }

    /// Enables (or, with `None`, disables) FreeU re-weighting at inference (Si et al. 2023),
    /// applied in the two coarsest up blocks as diffusers' `enable_freeu` does.
    pub fn set_freeu(&mut self, freeu: Option<FreeU>) {
        self.freeu = freeu;
    }

    /// Predicts the noise (or the configured target).
    ///
    /// # Shapes
    /// - `sample`: `[B, in_channels, *S]`; `timesteps`: `[]` or `[B]` (any numeric kind);
    /// - `context`: `[B, M, cross_attention_dim]` for the conditional model;
    /// - `class_labels`: `[B]` int64 when `num_class_embeds` is set;
    /// - returns `[B, out_channels, *S]`.
    pub fn forward(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        context: Option<&Tensor>,
        class_labels: Option<&Tensor>,
    ) -> Result<Tensor> {
        self.forward_with_control(sample, timesteps, context, class_labels, None)
    }

    /// [`DiffusersUNet::forward`] with ControlNet residuals added to the skips and the mid block.
    pub fn forward_with_control(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        context: Option<&Tensor>,
        class_labels: Option<&Tensor>,
        control: Option<ControlResiduals<'_>>,
    ) -> Result<Tensor> {
        let Some((conv_norm_out, conv_out)) = &self.head else {
            return Err(Error::config("DiffusersUNet", "encoder only", "has no decoder to run"));
        };
        // 1. Time (and class) embedding; 2. conv_in and the down path (skips in push order).
        let (sample, emb) = self.embed(sample, timesteps, context, class_labels)?;
        let h = self.conv_in.forward(&sample)?;
        let (h, mut skips) = self.down(h, &emb, context)?;
        // ControlNet: one residual per skip.
        if let Some(c) = &control {
            if c.down.len() != skips.len() {
                return Err(Error::config(
                    "control.down",
                    c.down.len(),
                    format!("expected {} residuals, one per skip", skips.len()),
                ));
            }
            for (s, r) in skips.iter_mut().zip(c.down) {
                *s = s.f_add(r)?;
            }
        }
        // 3. Mid block (+ the ControlNet's mid residual).
        let mut h = self.mid(h, &emb, context)?;
        if let Some(r) = control.as_ref().and_then(|c| c.mid) {
            h = h.f_add(r)?;
        }
        let cfg = &self.cfg;
        let train = false;

        // 4. Up path: pop skips (LIFO), concat [h, skip], resnet(+attention); upsample to the
        //    size of the next skip to consume (handles sizes not divisible by 2^levels).
        for (i, block) in self.up_blocks.iter().enumerate() {
            for (j, r) in block.resnets.iter().enumerate() {
                let mut skip =
                    skips.pop().ok_or_else(|| Error::config("up_blocks", i, "ran out of skips"))?;
                if !self.skips_enabled {
                    skip = skip.zeros_like();
                }
                if let (Some(f), true) = (&self.freeu, i < 2) {
                    let (hh, ss) = f.apply(i, &h, &skip)?;
                    h = hh;
                    skip = ss;
                }
                h = Tensor::f_cat(&[&h, &skip], 1)?;
                h = r.forward_t(&h, Some(&emb), train)?;
                if let Some(a) = block.attentions.get(j) {
                    h = a.forward(&h, context)?;
                }
            }
            if let Some(conv) = &block.resample {
                let target = skips.last().map(|s| s.size()[2..].to_vec()).unwrap_or_default();
                h = conv.forward(&interpolate_to(&h, &target)?)?;
            }
        }

        // 5. Output head.
        let h = conv_norm_out.forward_t(&h, train)?;
        let h = match cfg.flavor {
            Flavor::Conditional => cfg.act.forward(&h),
            Flavor::Unconditional => h.silu(),
        };
        conv_out.forward(&h)
    }

    /// Stage 1: checks the input and computes the time (and class) embedding `[B, T]`;
    /// returns the (centred, when configured) sample with it.
    pub(crate) fn embed(
        &self,
        sample: &Tensor,
        timesteps: &Tensor,
        context: Option<&Tensor>,
        class_labels: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let cfg = &self.cfg;
        let size = sample.size();
        if size.len() != cfg.dims + 2 || size[1] != cfg.in_channels {
            return Err(Error::InputShape {
                shape: size,
                expected: format!("[B, {}, …] with {} spatial axes", cfg.in_channels, cfg.dims),
            });
        }
        let b = size[0];
        if cfg.flavor == Flavor::Conditional && context.is_none() {
            return Err(Error::InputShape {
                shape: size,
                expected: "encoder_hidden_states (context) for UNet2DConditionModel".into(),
            });
        }
        let sample =
            if cfg.center_input_sample { sample * 2.0 - 1.0 } else { sample.shallow_clone() };

        // 1. Time (and class) embedding.
        let t =
            if timesteps.dim() == 0 { timesteps.unsqueeze(0) } else { timesteps.shallow_clone() };
        let t = if t.size()[0] == 1 && b != 1 { t.expand([b], false) } else { t };
        let sin = SinusoidalConfig {
            dim: cfg.block_out_channels[0],
            flip_sin_to_cos: cfg.flip_sin_to_cos,
            freq_shift: cfg.freq_shift,
            max_period: 10_000.0,
        };
        let t_emb = timestep_embedding(&t.to_device(sample.device()), &sin)?.to_kind(sample.kind()); // [B, C0]
        let mut emb = self.time_embedding.forward(&t_emb); // [B, T]
        match (&self.class_embedding, class_labels) {
            (Some(ce), Some(l)) => emb = &emb + ce.forward(l)?.to_kind(sample.kind()),
            (Some(_), None) => {
                return Err(Error::InputShape {
                    shape: vec![b],
                    expected: "class_labels for a class-conditional model".into(),
                })
            }
            _ => {}
        }
        Ok((sample, emb))
    }

    /// `conv_in` (on a sample returned by [`DiffusersUNet::embed`]).
    pub(crate) fn apply_conv_in(&self, sample: &Tensor) -> Result<Tensor> {
        self.conv_in.forward(sample)
    }

    /// Stage 2, the down path from the output `h` of `conv_in`: pushes `h`, every
    /// resnet(+attention) output and every downsampler output. Returns the last feature map
    /// and the skips in push order.
    pub(crate) fn down(
        &self,
        mut h: Tensor,
        emb: &Tensor,
        context: Option<&Tensor>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let cfg = &self.cfg;
        let train = false;
        // 2. Down path: push conv_in, every resnet(+attention) output and every downsampler output.
        let mut skips: Vec<Tensor> = vec![h.shallow_clone()];
        for block in &self.down_blocks {
            for (j, r) in block.resnets.iter().enumerate() {
                h = r.forward_t(&h, Some(emb), train)?;
                if let Some(a) = block.attentions.get(j) {
                    h = a.forward(&h, context)?;
                }
                skips.push(h.shallow_clone());
            }
            if let Some(conv) = &block.resample {
                if cfg.downsample_padding == 0 {
                    let pad: Vec<i64> =
                        std::iter::repeat_n([0i64, 1], cfg.dims).flatten().collect();
                    h = h.f_constant_pad_nd(pad.as_slice())?;
                }
                h = conv.forward(&h)?;
                skips.push(h.shallow_clone());
            }
        }
        Ok((h, skips))
    }

    /// Stage 3, the mid block (identity when there is none).
    pub(crate) fn mid(
        &self,
        mut h: Tensor,
        emb: &Tensor,
        context: Option<&Tensor>,
    ) -> Result<Tensor> {
        let train = false;
        // 3. Mid block.
        if let Some(m) = &self.mid_block {
            h = m.resnets[0].forward_t(&h, Some(emb), train)?;
            for (k, r) in m.resnets.iter().enumerate().skip(1) {
                if let Some(a) = m.attentions.get(k - 1) {
                    h = a.forward(&h, context)?;
                }
                h = r.forward_t(&h, Some(emb), train)?;
            }
        }
        Ok(h)
    }
}

/// Number of skips the down path pushes (the length ControlNet residual lists must have).
pub fn skip_count(cfg: &DiffusersConfig) -> usize {
    let n = cfg.block_out_channels.len();
    1 + cfg.layers_per_block.iter().map(|&l| l as usize).sum::<usize>() + (n - 1)
}
